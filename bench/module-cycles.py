#!/usr/bin/env python3
"""Import cycles between the modules of each crate of the workspace.

Every `crate::a::b` and `super::c` path in a crate's non-test sources is an edge from the file's
module to the longest known module the path names. Edges between a module and its own ancestors
or descendants (a parent declaring a child, a child using its parent's items) do not count.
Prints the strongly connected groups of two or more modules, per crate, and exits 1 if any.

Usage: bench/module-cycles.py [WORKSPACE_DIR]
"""

import os
import re
import sys

PATH = re.compile(r"\b((?:crate|super|self)(?:::(?:super|[A-Za-z_][A-Za-z0-9_]*))+)")
USE_GROUP = re.compile(r"\buse\s+((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*)\}", re.S)


def modules(src):
    """Module path (tuple) of every .rs file under a crate's src/, tests excluded."""
    out = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs") or f == "tests.rs":
                continue
            rel = os.path.relpath(os.path.join(root, f), src)[:-3].split(os.sep)
            if rel[-1] in ("mod", "lib", "main"):
                rel = rel[:-1]
            if "tests" in rel or "bin" in rel[:1]:
                continue
            out[tuple(rel)] = os.path.join(root, f)
    return out


def strip_tests(text):
    """The source without `#[cfg(test)] mod x { ... }` blocks."""
    while True:
        m = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)
        if not m:
            return text
        depth, i = 1, m.end()
        while depth and i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        text = text[: m.start()] + text[i:]


def resolve(module, path, known):
    parts = path.split("::")
    if parts[0] == "crate":
        base, rest = [], parts[1:]
    else:
        base, rest = list(module), parts
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super" and base:
                base.pop()
            rest = rest[1:]
    full = base + rest
    for n in range(len(full), -1, -1):
        if tuple(full[:n]) in known:
            return tuple(full[:n])
    return None


def related(a, b):
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def sccs(nodes, edges):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    sys.setrecursionlimit(10000)
    for v in nodes:
        if v not in index:
            visit(v)
    return out


def main():
    top = sys.argv[1] if len(sys.argv) > 1 else "."
    found = False
    crates = [d for d in sorted(os.listdir(top)) if os.path.isfile(os.path.join(top, d, "Cargo.toml"))]
    for crate in ["."] + crates:
        src = os.path.join(top, crate, "src")
        if not os.path.isdir(src):
            continue
        known = modules(src)
        edges = {}
        for module, file in known.items():
            text = strip_tests(open(file, encoding="utf-8").read())
            text = re.sub(r"//[^\n]*", "", text)
            paths = PATH.findall(text)
            for prefix, group in USE_GROUP.findall(text):
                for item in re.split(r"[,\s]+", group):
                    item = item.strip().split(" as ")[0]
                    if item and item not in ("self", "*") and not item.startswith("{"):
                        paths.append(prefix + "::" + item.split("::")[0])
            for p in paths:
                target = resolve(list(module), p, known)
                if target is not None and not related(module, target):
                    edges.setdefault(module, set()).add(target)
        groups = sccs(sorted(known), edges)
        name = "(root)" if crate == "." else crate
        print(f"{name}: {len(known)} modules, {sum(len(e) for e in edges.values())} edges, {len(groups)} cycles")
        for g in groups:
            found = True
            print("  cycle: " + " <-> ".join("::".join(m) or "crate" for m in g))
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
