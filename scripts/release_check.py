#!/usr/bin/env python3
"""Static release checks of the workspace, from `cargo metadata` and `cargo package --list`.

    scripts/release_check.py manifest   every published crate has the metadata crates.io
                                        shows (description, license, keywords, categories,
                                        readme, rust-version, repository), and its README
                                        exists
    scripts/release_check.py msrv       no normal (non-dev) dependency of a published
                                        crate, with every feature on, declares a
                                        rust-version newer than the workspace's
    scripts/release_check.py files      `cargo package --list` of each published crate
                                        holds its manifest, README and its library's (or programs') root, and
                                        nothing from tests, benches, examples, fuzz,
                                        captures, Python or build output; and every
                                        file the sources include (include_str!,
                                        include_bytes!, include!) is in the package

Run by scripts/test.sh; each prints what is wrong and exits 1.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = ["description", "license", "keywords", "categories", "readme", "rust_version", "repository"]
# Paths (relative to the crate) that must never be published.
FORBIDDEN_PREFIXES = ("tests/", "benches/", "examples/", "fuzz/", "target/", "scripts/")
INCLUDE = re.compile(r'include(?:_str|_bytes)?!\(\s*"([^"]+)"\s*\)')
FORBIDDEN_SUFFIXES = (".kcap", ".py", ".pyc", ".orig.rs", ".profraw", ".log")


def metadata(*args):
    out = subprocess.run(
        ["cargo", "metadata", "-q", "--format-version", "1", "--locked", *args],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)


def published(meta):
    members = set(meta["workspace_members"])
    return [p for p in meta["packages"] if p["id"] in members and p.get("publish") != []]


def version_tuple(v):
    parts = [int(x) for x in v.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def check_manifest():
    errors = []
    for p in published(metadata("--no-deps")):
        for field in REQUIRED:
            if not p.get(field):
                errors.append(f"{p['name']}: `{field.replace('_', '-')}` is missing in Cargo.toml")
        readme = p.get("readme")
        if readme and not (Path(p["manifest_path"]).parent / readme).is_file():
            errors.append(f"{p['name']}: readme {readme} does not exist")
        if len(p.get("keywords") or []) > 5:
            errors.append(f"{p['name']}: crates.io allows at most 5 keywords")
    return errors


def check_msrv():
    meta = metadata("--all-features")
    by_id = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    errors = []
    for crate in published(meta):
        msrv = crate["rust_version"]
        seen, todo = set(), [crate["id"]]
        while todo:
            node = nodes[todo.pop()]
            for dep in node["deps"]:
                normal = any(k["kind"] in (None, "build") for k in dep["dep_kinds"])
                if normal and dep["pkg"] not in seen:
                    seen.add(dep["pkg"])
                    todo.append(dep["pkg"])
        for dep_id in sorted(seen):
            dep = by_id[dep_id]
            rv = dep.get("rust_version")
            if rv and version_tuple(rv) > version_tuple(msrv):
                errors.append(
                    f"{crate['name']} declares rust-version {msrv}, but its dependency "
                    f"{dep['name']} {dep['version']} needs {rv} (Cargo.lock): raise the "
                    f"workspace's rust-version or lock an older {dep['name']}"
                )
    return errors


def check_files():
    errors = []
    for p in published(metadata("--no-deps")):
        listing = subprocess.run(
            ["cargo", "package", "-q", "--list", "--allow-dirty", "-p", p["name"]],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout.split()
        # A library's root, or (kafka-cli) the root of each of its programs.
        roots = [t["src_path"] for t in p["targets"] if set(t["kind"]) & {"lib", "bin"}]
        crate_root = Path(p["manifest_path"]).parent
        needed_roots = [str(Path(r).relative_to(crate_root)) for r in roots]
        for needed in ("Cargo.toml", "README.md", *needed_roots):
            if needed not in listing:
                errors.append(f"{p['name']}: the package lacks {needed}")
        for path in listing:
            if path.startswith(FORBIDDEN_PREFIXES) or path.endswith(FORBIDDEN_SUFFIXES) \
                    or "__pycache__" in path:
                errors.append(f"{p['name']}: the package would publish {path}")
        crate_dir = Path(p["manifest_path"]).parent
        for source in sorted((crate_dir / "src").rglob("*.rs")):
            text = source.read_text()
            for m in INCLUDE.finditer(text):
                target = os.path.normpath(source.parent / m.group(1))
                rel = os.path.relpath(target, crate_dir)
                line = text.count("\n", 0, m.start()) + 1
                if rel not in listing:
                    errors.append(
                        f"{p['name']}: {source.relative_to(ROOT)}:{line} includes {m.group(1)}, "
                        f"which is not in the package (add it to `include` in Cargo.toml)"
                    )
        print(f"   {p['name']}: {len(listing)} files")
    return errors


def main():
    checks = {"manifest": check_manifest, "msrv": check_msrv, "files": check_files}
    if len(sys.argv) != 2 or sys.argv[1] not in checks:
        print(__doc__, file=sys.stderr)
        return 2
    errors = checks[sys.argv[1]]()
    for e in errors:
        print(f"   {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
