#!/usr/bin/env python3
"""Lists the public API of a crate from its rustdoc JSON, one item per line, sorted.

    scripts/public_api.py target/doc/kafka_producer.json > kafka-producer/public-api.txt

Walks from the crate root through public modules and re-exports (so an item appears
under the path users name it by), and prints for each item its kind and path, with:
functions and methods their signature; structs their public fields; enums their
variants; traits their items; and every trait a type implements, except the auto
traits and blanket implementations rustdoc adds by itself. Used by
scripts/public-api.sh.
"""
import json
import sys

AUTO_TRAITS = {"Send", "Sync", "Unpin", "UnwindSafe", "RefUnwindSafe", "Freeze"}


class Api:
    def __init__(self, doc):
        self.index = {str(k): v for k, v in doc["index"].items()}
        self.paths = {str(k): v for k, v in doc["paths"].items()}
        self.root = str(doc["root"])
        self.lines = set()
        self.visiting = set()

    # ---------------------------------------------------------------- types

    def args(self, args):
        if not args:
            return ""
        if "angle_bracketed" in args:
            ab = args["angle_bracketed"]
            parts = []
            for a in ab["args"]:
                if "type" in a:
                    parts.append(self.ty(a["type"]))
                elif "lifetime" in a:
                    parts.append(a["lifetime"])
                elif "const" in a:
                    parts.append(str(a["const"].get("expr", "_")))
                else:
                    parts.append("_")
            for c in ab.get("constraints", []):
                binding = c.get("binding", {})
                if "equality" in binding:
                    eq = binding["equality"]
                    rhs = self.ty(eq["type"]) if "type" in eq else str(eq.get("constant"))
                    parts.append(f"{c['name']} = {rhs}")
                else:
                    parts.append(f"{c['name']}: {self.bounds(binding.get('constraint', []))}")
            return "<" + ", ".join(parts) + ">" if parts else ""
        if "parenthesized" in args:
            p = args["parenthesized"]
            out = "(" + ", ".join(self.ty(t) for t in p["inputs"]) + ")"
            if p.get("output"):
                out += " -> " + self.ty(p["output"])
            return out
        return ""

    def path(self, p):
        return p["path"] + self.args(p.get("args"))

    def bounds(self, bounds):
        out = []
        for b in bounds:
            if "trait_bound" in b:
                tb = b["trait_bound"]
                prefix = "?" if tb.get("modifier") == "maybe" else ""
                out.append(prefix + self.path(tb["trait"]))
            elif "outlives" in b:
                out.append(b["outlives"])
            elif "use" in b:
                out.append("use<..>")
        return " + ".join(out)

    def ty(self, t):
        if t is None:
            return "()"
        (kind, v), = t.items()
        if kind == "resolved_path":
            return self.path(v)
        if kind == "generic":
            return v
        if kind == "primitive":
            return v
        if kind == "tuple":
            return "(" + ", ".join(self.ty(x) for x in v) + ")"
        if kind == "slice":
            return "[" + self.ty(v) + "]"
        if kind == "array":
            return f"[{self.ty(v['type'])}; {v['len']}]"
        if kind == "borrowed_ref":
            lt = (v.get("lifetime") or "") + " " if v.get("lifetime") else ""
            mut = "mut " if v.get("is_mutable") else ""
            return f"&{lt}{mut}{self.ty(v['type'])}"
        if kind == "raw_pointer":
            return ("*mut " if v.get("is_mutable") else "*const ") + self.ty(v["type"])
        if kind == "impl_trait":
            return "impl " + self.bounds(v)
        if kind == "dyn_trait":
            traits = [self.path(p["trait"]) for p in v["traits"]]
            if v.get("lifetime"):
                traits.append(v["lifetime"])
            return "dyn " + " + ".join(traits)
        if kind == "qualified_path":
            trait = self.path(v["trait"]) if v.get("trait") else "_"
            return f"<{self.ty(v['self_type'])} as {trait}>::{v['name']}"
        if kind == "function_pointer":
            sig = v["sig"]
            ins = ", ".join(self.ty(x[1]) for x in sig["inputs"])
            return f"fn({ins}) -> {self.ty(sig.get('output'))}"
        if kind == "infer":
            return "_"
        return kind

    def generics(self, g):
        params = []
        for p in g.get("params", []):
            k = p["kind"]
            if "type" in k and k["type"].get("is_synthetic"):
                continue
            if "lifetime" in k:
                params.append(p["name"])
            elif "type" in k:
                b = self.bounds(k["type"].get("bounds", []))
                params.append(p["name"] + (": " + b if b else ""))
            elif "const" in k:
                params.append(f"const {p['name']}: {self.ty(k['const']['type'])}")
        out = "<" + ", ".join(params) + ">" if params else ""
        preds = []
        for w in g.get("where_predicates", []):
            if "bound_predicate" in w:
                bp = w["bound_predicate"]
                preds.append(f"{self.ty(bp['type'])}: {self.bounds(bp['bounds'])}")
        if preds:
            out += " where " + ", ".join(preds)
        return out

    def sig(self, name, f):
        h = f["header"]
        quals = "".join(
            q for q, on in (("const ", h["is_const"]), ("async ", h["is_async"]),
                            ("unsafe ", h["is_unsafe"])) if on
        )
        ins = []
        for arg, t in f["sig"]["inputs"]:
            ins.append(self.ty(t) if arg == "self" else f"{arg}: {self.ty(t)}")
        out = f["sig"].get("output")
        ret = f" -> {self.ty(out)}" if out else ""
        return f"{quals}fn {name}{self.generics(f['generics'])}({', '.join(ins)}){ret}"

    # ---------------------------------------------------------------- walk

    def add(self, line):
        self.lines.add(line)

    def walk(self, item_id, path):
        item = self.index.get(item_id)
        if item is None:
            return
        key = (item_id, path)
        if key in self.visiting:
            return
        self.visiting.add(key)
        (kind, inner), = item["inner"].items()
        if kind == "module":
            if item_id != self.root:
                self.add(f"pub mod {path}")
            for child in inner["items"]:
                self.child(str(child), path)
        elif kind == "use":
            target = str(inner["id"]) if inner.get("id") is not None else None
            if target in self.index:
                if inner["is_glob"]:
                    t = self.index[target]
                    if "module" in t["inner"]:
                        for child in t["inner"]["module"]["items"]:
                            self.child(str(child), path)
                else:
                    self.walk(target, f"{path}::{inner['name']}")
            else:
                glob = "::*" if inner["is_glob"] else ""
                self.add(f"pub use {path}::{inner['name']}{glob} = {inner['source']}")
        elif kind == "struct":
            self.add(f"pub struct {path}{self.generics(inner['generics'])}")
            k = inner["kind"]
            fields = []
            if "plain" in k:
                fields = k["plain"]["fields"]
                if k["plain"].get("has_stripped_fields"):
                    self.add(f"pub struct {path} (has private fields)")
            elif "tuple" in k:
                for i, f in enumerate(k["tuple"]):
                    if f is not None:
                        self.add(f"pub struct field {path}.{i}: {self.ty(self.index[str(f)]['inner']['struct_field'])}")
            for f in fields:
                fi = self.index[str(f)]
                self.add(f"pub struct field {path}.{fi['name']}: {self.ty(fi['inner']['struct_field'])}")
            self.impls(inner["impls"], path, item_id)
        elif kind == "enum":
            self.add(f"pub enum {path}{self.generics(inner['generics'])}")
            for v in inner["variants"]:
                vi = self.index[str(v)]
                vk = vi["inner"]["variant"]["kind"]
                shape = ""
                if isinstance(vk, dict) and "tuple" in vk:
                    shape = "(" + ", ".join(
                        self.ty(self.index[str(f)]["inner"]["struct_field"]) if f is not None else "_"
                        for f in vk["tuple"]) + ")"
                elif isinstance(vk, dict) and "struct" in vk:
                    shape = " { " + ", ".join(
                        f"{self.index[str(f)]['name']}: {self.ty(self.index[str(f)]['inner']['struct_field'])}"
                        for f in vk["struct"]["fields"]) + " }"
                self.add(f"pub enum variant {path}::{vi['name']}{shape}")
            self.impls(inner["impls"], path, item_id)
        elif kind == "union":
            self.add(f"pub union {path}")
            self.impls(inner["impls"], path, item_id)
        elif kind == "trait":
            unsafe = "unsafe " if inner.get("is_unsafe") else ""
            sup = self.bounds(inner.get("bounds", []))
            self.add(f"pub {unsafe}trait {path}{self.generics(inner['generics'])}" + (f": {sup}" if sup else ""))
            for t in inner["items"]:
                self.assoc(str(t), path, "trait")
        elif kind == "function":
            self.add(f"pub {self.sig(path, inner)}")
        elif kind == "constant":
            self.add(f"pub const {path}: {self.ty(inner['type'])}")
        elif kind == "static":
            self.add(f"pub static {path}: {self.ty(inner['type'])}")
        elif kind == "type_alias":
            self.add(f"pub type {path}{self.generics(inner['generics'])} = {self.ty(inner['type'])}")
        elif kind in ("macro", "proc_macro"):
            self.add(f"pub macro {path}!")
        else:
            self.add(f"pub {kind} {path}")

    def child(self, child_id, path):
        item = self.index.get(child_id)
        if item is None or item.get("visibility") != "public":
            return
        if "impl" in item["inner"]:
            return
        name = item.get("name")
        if "use" in item["inner"]:
            self.walk(child_id, path)
        elif name:
            self.walk(child_id, f"{path}::{name}")

    def assoc(self, item_id, path, where):
        item = self.index[item_id]
        (kind, inner), = item["inner"].items()
        name = item["name"]
        if kind == "function":
            where = "trait" if where == "trait" else "method"
            default = " (provided)" if where == "trait" and inner.get("has_body") else ""
            self.add(f"pub {where} {self.sig(f'{path}::{name}', inner)}{default}")
        elif kind == "assoc_type":
            self.add(f"pub {where} type {path}::{name}")
        elif kind == "assoc_const":
            self.add(f"pub {where} const {path}::{name}: {self.ty(inner['type'])}")

    def impls(self, impl_ids, path, item_id):
        for i in impl_ids:
            imp = self.index.get(str(i))
            if imp is None:
                continue
            inner = imp["inner"]["impl"]
            if inner.get("is_synthetic") or inner.get("blanket_impl") is not None:
                continue
            trait = inner.get("trait")
            if trait is None:
                for item in inner["items"]:
                    it = self.index.get(str(item))
                    if it is not None and it.get("visibility") == "public":
                        self.assoc(str(item), path, "impl")
            else:
                if trait["path"] in AUTO_TRAITS:
                    continue
                neg = "!" if inner.get("is_negative") else ""
                target = inner["for"]
                own = "resolved_path" in target and str(target["resolved_path"].get("id")) == item_id
                ty = path + self.args(target["resolved_path"].get("args")) if own else self.ty(target)
                self.add(f"impl{self.generics(inner['generics'])} {neg}{self.path(trait)} for {ty}")


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        doc = json.load(f)
    api = Api(doc)
    name = api.index[api.root]["name"]
    api.walk(api.root, name)
    # The rendering depends on rustdoc's JSON format: a new one shows here first.
    print(f"# {name}: rustdoc JSON format_version {doc['format_version']}")
    for line in sorted(api.lines):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
