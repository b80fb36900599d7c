#!/usr/bin/env python3
"""Static check of the Docker Compose files in docker/ (Docker cannot run in CI).

For each docker/*.yml: it parses as YAML (PyYAML, with anchors and merge keys, as
Compose reads them); it has services, each with an image; every published port is a
valid `[ip:]host:container` mapping, unique across the file; each service with a
published port advertises 127.0.0.1:<that host port> to clients (else host clients
would be sent addresses they cannot reach); and the bootstrap list the tables of
docker/README.md and README.md give for the file is exactly those addresses.

    python3 scripts/compose_check.py        (run by scripts/test.sh)
"""
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"


def host_ports(service, where, errors):
    ports = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            host, container = entry.get("published"), entry.get("target")
        else:
            parts = str(entry).split(":")
            if len(parts) not in (2, 3):
                errors.append(f"{where}: port {entry!r} is not [ip:]host:container")
                continue
            host, container = parts[-2], parts[-1]
        try:
            host, container = int(host), int(str(container).split("/")[0])
        except (TypeError, ValueError):
            errors.append(f"{where}: port {entry!r} is not numeric")
            continue
        if not (0 < host < 65536 and 0 < container < 65536):
            errors.append(f"{where}: port {entry!r} is out of range")
            continue
        ports.append(host)
    return ports


def readme_bootstraps(path):
    """{compose file name: [host:port, ...]} from the README table rows naming one."""
    found = {}
    row = re.compile(r"^\|\s*`(docker-compose\.[\w.]+\.yml)`\s*\|.*\|\s*`([^`]+)`\s*\|\s*$")
    for line in path.read_text().splitlines():
        m = row.match(line)
        if m:
            found[m.group(1)] = sorted(m.group(2).split(","))
    return found


def prose_bootstraps(path):
    """The addresses the workspace README gives for each file, by its own wording."""
    text = path.read_text()
    return sorted(set(re.findall(r"127\.0\.0\.1:\d+", text)))


def main():
    errors = []
    files = sorted(DOCKER.glob("*.yml"))
    if not files:
        errors.append("no compose files in docker/")
    table = readme_bootstraps(DOCKER / "README.md")
    every_address = set()
    for path in files:
        name = path.name
        try:
            doc = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            errors.append(f"{name}: not valid YAML: {e}")
            continue
        services = (doc or {}).get("services")
        if not isinstance(services, dict) or not services:
            errors.append(f"{name}: no services")
            continue
        addresses = []
        for svc_name, svc in services.items():
            where = f"{name}: service {svc_name}"
            if not isinstance(svc, dict) or not svc.get("image"):
                errors.append(f"{where}: no image")
                continue
            ports = host_ports(svc, where, errors)
            advertised = str((svc.get("environment") or {}).get("KAFKA_ADVERTISED_LISTENERS", ""))
            for port in ports:
                if port in [int(a.split(":")[1]) for a in addresses]:
                    errors.append(f"{where}: host port {port} is published twice")
                addresses.append(f"127.0.0.1:{port}")
                if f"127.0.0.1:{port}" not in advertised:
                    errors.append(
                        f"{where}: publishes {port} but advertises {advertised!r}, "
                        f"not 127.0.0.1:{port}"
                    )
        addresses.sort()
        every_address.update(addresses)
        if name not in table:
            errors.append(f"docker/README.md: its table has no row for {name}")
        elif table[name] != addresses:
            errors.append(
                f"docker/README.md says {name} listens on {','.join(table[name])}, "
                f"but it publishes {','.join(addresses)}"
            )
        print(f"   {name}: services {', '.join(services)}; bootstrap {','.join(addresses)}")
    for readme in (ROOT / "README.md", DOCKER / "README.md"):
        for address in prose_bootstraps(readme):
            if address not in every_address:
                errors.append(
                    f"{readme.relative_to(ROOT)} names {address}, which no compose file publishes"
                )
    for e in errors:
        print(f"   {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
