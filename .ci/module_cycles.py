#!/usr/bin/env python3
"""Fails when modules of one crate import each other in a cycle.

For every crate root under crates/*/src (lib.rs, main.rs), this builds the
graph of its modules and checks that no module imports one that imports it
back (DESIGN.md section 1: "A leaf module holds what two modules both need").

Modules: the crate's file modules and folder modules, found by following
`mod x;` declarations from the root (src/a.rs or src/a/mod.rs is `a`,
src/a/b.rs is `a::b`; an inline `mod x { ... }` is `x` too). Anything under
`#[cfg(test)]` (the `mod tests { ... }` blocks, test-only `mod x;` files,
imports and functions) is left out, and tests/ and benches/ are never read.

Edges: module A depends on module B when A names an item of B by
- a `use` path starting with `crate::`, `super::` or `self::`, or with the
  name of a module or import in scope (2018 paths: `use child::X` in a
  folder's mod.rs, `use header::X` after `use super::header`);
- such a path in code (`crate::scan::check_size(..)`, `super::png_name(..)`).
A path is followed segment by segment: into submodules, and through the
`use` declarations (re-exports and private imports) of the module it passes,
so `use super::Affine2` in augment/views.rs, where augment/mod.rs says
`pub use affine::Affine2`, is an edge to `augment::affine`, and
`crate::Protocol` in uld-eval is an edge to `protocol`. B is the module the
named item is defined in. Comments and string literals are ignored.

The rule (what counts as a cycle): a module and its own submodules are one
unit seen from outside, so edges between a module and its ancestor (a parent
mod.rs declaring, re-exporting or using its children; a child using its
parent's items) never make a cycle. Every other edge A -> B is lifted to the
level where the two paths part: below their deepest common ancestor P it is
the edge P::a -> P::b between the two children of P that contain A and B
(for `sample::geometry -> augment::affine` that is `sample -> augment`).
The check is that, for every module P (the crate root included), the lifted
graph on P's children has no cycle: no two top-level modules and no two
siblings in a folder depend on each other, directly or through others.

Output: each cycle as a module path chain, with the `use` or path behind each
of its edges (file:line). Exit status 1 when there is any cycle, else 0.

Usage: python3 .ci/module_cycles.py [crate folder ...]   (default: crates/*)
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_CYCLES_PER_GROUP = 50

Mod = tuple[str, ...]  # a module path below the crate root; () is the root


# ---------------------------------------------------------------- lexing


def strip_comments_and_strings(src: str) -> str:
    """`src` with comments and the contents of string and char literals
    replaced by spaces (newlines kept, so line numbers stay right)."""
    out: list[str] = []
    i, n = 0, len(src)

    def blank(text: str) -> str:
        return "".join(c if c == "\n" else " " for c in text)

    while i < n:
        c = src[i]
        nxt = src[i + 1] if i + 1 < n else ""
        prev = src[i - 1] if i > 0 else ""
        if c == "/" and nxt == "/":
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(blank(src[i:j]))
            i = j
        elif c == "/" and nxt == "*":
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(src[i:j]))
            i = j
        elif (
            c in "rb"
            and not (prev.isalnum() or prev == "_")
            and (m := re.match(r"b?r(#*)\"", src[i:]))
        ):
            hashes = m.group(1)
            start = i + m.end()
            end = src.find('"' + hashes, start)
            end = n if end < 0 else end + 1 + len(hashes)
            out.append(src[i : i + m.end()] + blank(src[start:end]))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            out.append('"' + blank(src[i + 1 : j]) + '"')
            i = j + 1
        elif c == "'":
            # a char literal ('a', '\n', '\u{1F600}') or a lifetime ('a)
            if nxt == "\\":
                j = i + 2
                while j < n and src[j] != "'":
                    j += 2 if src[j] == "\\" else 1
                out.append("'" + blank(src[i + 1 : j]) + "'")
                i = j + 1
            elif i + 2 < n and src[i + 2] == "'":
                out.append("' '")
                i += 3
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def matching_brace(text: str, open_at: int) -> int:
    """The index just past the `}` closing the `{` at `open_at`."""
    depth = 0
    for j in range(open_at, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j + 1
    return len(text)


def item_end(text: str, start: int) -> int:
    """The end of the item starting at `start`: its `;` or its body's `}`."""
    for j in range(start, len(text)):
        if text[j] == ";":
            return j + 1
        if text[j] == "{":
            return matching_brace(text, j)
    return len(text)


ATTR = re.compile(r"#\s*\[")
CFG_TEST = re.compile(r"#\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]")


def attribute_end(text: str, start: int) -> int:
    """The index just past the attribute `#[...]` starting at `start`."""
    depth = 0
    for j in range(text.index("[", start), len(text)):
        if text[j] == "[":
            depth += 1
        elif text[j] == "]":
            depth -= 1
            if depth == 0:
                return j + 1
    return len(text)


def strip_cfg_test(text: str) -> str:
    """`text` with every `#[cfg(test)]` item (and its attributes) blanked."""
    while m := CFG_TEST.search(text):
        j = m.end()
        while True:  # further attributes of the same item
            k = len(text[j:]) - len(text[j:].lstrip())
            if ATTR.match(text, j + k):
                j = attribute_end(text, j + k)
            else:
                break
        end = item_end(text, j)
        text = text[: m.start()] + re.sub(r"[^\n]", " ", text[m.start() : end]) + text[end:]
    return text


# ---------------------------------------------------------------- use trees


USE_TOKEN = re.compile(r"\s*(::|[{},*]|[A-Za-z_]\w*)")


def expand_use_tree(tree: str) -> list[tuple[list[str], str | None]]:
    """`a::{b, c::{self, D as E}, *}` as (path, name bound) pairs:
    (['a','b'], 'b'), (['a','c'], 'c'), (['a','c','D'], 'E'), (['a','*'], None)."""
    tokens, pos = [], 0
    while pos < len(tree):
        m = USE_TOKEN.match(tree, pos)
        if not m:
            if tree[pos:].strip():
                pos += 1  # something unexpected: skip it
                continue
            break
        tokens.append(m.group(1))
        pos = m.end()
    out: list[tuple[list[str], str | None]] = []

    def emit(segs: list[str], alias: str | None) -> None:
        bound = segs[:-1] if segs and segs[-1] == "self" else segs
        if bound:
            out.append((bound, alias or bound[-1]))

    def tree_at(i: int, prefix: list[str]) -> int:
        """Parses one use tree from token i; returns the index after it."""
        segs = list(prefix)
        while i < len(tokens):
            t = tokens[i]
            if t == "::":
                i += 1
            elif t == "{":
                i += 1
                while i < len(tokens) and tokens[i] != "}":
                    i = i + 1 if tokens[i] == "," else tree_at(i, segs)
                return i + 1
            elif t == "*":
                out.append((segs + ["*"], None))
                return i + 1
            elif t in (",", "}"):
                break
            else:
                segs.append(t)
                i += 1
                if i < len(tokens) and tokens[i] == "as":
                    emit(segs, tokens[i + 1] if i + 1 < len(tokens) else "_")
                    return i + 2
        emit(segs, None)
        return i

    tree_at(0, [])
    return out


# ---------------------------------------------------------------- modules


@dataclass
class Ref:
    segs: list[str]
    line: int
    text: str


@dataclass
class Module:
    path: Mod
    file: Path
    text: str = ""  # stripped source of this module only
    children: set[str] = field(default_factory=set)
    imports: dict[str, list[str]] = field(default_factory=dict)  # name -> path
    globs: list[list[str]] = field(default_factory=list)
    refs: list[Ref] = field(default_factory=list)


USE = re.compile(r"(?<![\w:])use\s+([^;]*);")
MOD_DECL = re.compile(r"(?<![\w:])mod\s+([A-Za-z_]\w*)\s*([;{])")
CODE_PATH = re.compile(r"(?<![\w:$])([A-Za-z_]\w*(?:\s*::\s*[A-Za-z_]\w*)+)")


class Crate:
    def __init__(self, name: str, root_file: Path):
        self.name = name
        self.src = root_file.parent
        self.modules: dict[Mod, Module] = {}
        self._load((), root_file, None)

    # -- discovery

    def _load(self, path: Mod, file: Path, inline: str | None) -> None:
        if inline is None:
            try:
                raw = file.read_text(encoding="utf-8")
            except OSError:
                return
            text = strip_cfg_test(strip_comments_and_strings(raw))
        else:
            text = inline
        module = Module(path, file)
        self.modules[path] = module
        # inline submodules: cut out of this module's text, loaded on their own
        own = list(text)
        for m in MOD_DECL.finditer(text):
            name, kind = m.group(1), m.group(2)
            if kind == "{":
                end = matching_brace(text, m.end() - 1)
                body = text[m.end() : end - 1]
                # keep the lines, so the child's line numbers are the file's
                prefix = re.sub(r"[^\n]", " ", text[: m.end()])
                for j in range(m.start(), end):
                    if own[j] != "\n":
                        own[j] = " "
                module.children.add(name)
                self._load(path + (name,), file, prefix + body)
            else:
                module.children.add(name)
                child = self._child_file(path, file, name, inline is not None)
                if child is not None:
                    self._load(path + (name,), child, None)
        module.text = "".join(own)

    def _child_file(self, path: Mod, file: Path, name: str, inline: bool) -> Path | None:
        if not path:
            base = self.src
        elif file.name == "mod.rs" and not inline:
            base = file.parent
        else:
            base = self.src.joinpath(*path)
        for cand in (base / f"{name}.rs", base / name / "mod.rs"):
            if cand.is_file():
                return cand
        return None

    # -- references

    def collect(self) -> None:
        for module in self.modules.values():
            text = module.text
            use_spans = []
            for m in USE.finditer(text):
                use_spans.append((m.start(), m.end()))
                line = text.count("\n", 0, m.start()) + 1
                for segs, name in expand_use_tree(m.group(1)):
                    if name is None:
                        module.globs.append(segs[:-1])
                        segs = segs[:-1]
                    elif name != "_":
                        module.imports[name] = segs
                    module.refs.append(Ref(segs, line, "use " + "::".join(segs)))
            for m in CODE_PATH.finditer(text):
                if any(a <= m.start() < b for a, b in use_spans):
                    continue
                segs = re.sub(r"\s+", "", m.group(1)).split("::")
                line = text.count("\n", 0, m.start()) + 1
                module.refs.append(Ref(segs, line, "::".join(segs)))

    # -- resolution

    def resolve(self, at: Mod, segs: list[str], seen: frozenset = frozenset()):
        """(module, names the module itself) for the path `segs` written in
        module `at`: the module holding the item it names, and whether the
        path ends on that module. None for paths into other crates."""
        if not segs:
            return at, True
        module = self.modules.get(at)
        first, rest = segs[0], segs[1:]
        if first == "crate":
            cur = ()
        elif first == "self":
            cur = at
        elif first == "super":
            cur = at
            while segs and segs[0] == "super":
                if not cur:
                    return None
                cur, segs = cur[:-1], segs[1:]
            rest = segs
        elif module and first in module.children:
            cur = at + (first,)
        elif module and first in module.imports and (at, first) not in seen:
            got = self.resolve(at, module.imports[first], seen | {(at, first)})
            if got is None:
                return None
            cur, is_mod = got
            if not is_mod:  # `Enum::Variant`, `Type::method`: the item's module
                return cur, False
        else:
            return None
        return self.walk(cur, rest, seen)

    def walk(self, cur: Mod, segs: list[str], seen: frozenset):
        for i, s in enumerate(segs):
            module = self.modules.get(cur)
            if module is None:
                return cur, False
            if s in module.children:
                cur = cur + (s,)
                continue
            if s in module.imports and (cur, s) not in seen:
                got = self.resolve(cur, module.imports[s], seen | {(cur, s)})
                if got is None:
                    return cur, False
                target, is_mod = got
                if is_mod:
                    cur = target
                    continue
                return target, False
            for glob in module.globs:
                got = self.resolve(cur, glob, seen | {(cur, "*")})
                if got and got[1] and self._defines(got[0], s):
                    return self.walk(got[0], segs[i:], seen | {(cur, "*")})
            return cur, False
        return cur, True

    def _defines(self, path: Mod, name: str) -> bool:
        module = self.modules.get(path)
        if module is None:
            return False
        return (
            name in module.children
            or name in module.imports
            or re.search(
                rf"\b(fn|struct|enum|trait|type|const|static|union|macro_rules!)\s+{re.escape(name)}\b",
                module.text,
            )
            is not None
        )

    # -- the check

    def lifted_edges(self):
        """{parent: {(a, b): [(from module, ref), ...]}} for edges between
        different children a, b of parent (see the rule at the top)."""
        groups: dict[Mod, dict[tuple[str, str], list[tuple[Mod, Ref]]]] = {}
        for path, module in self.modules.items():
            for ref in module.refs:
                got = self.resolve(path, ref.segs)
                if got is None:
                    continue
                target = got[0]
                k = 0
                while k < min(len(path), len(target)) and path[k] == target[k]:
                    k += 1
                if k == len(path) or k == len(target):
                    continue  # the same module, or an ancestor/descendant
                parent = path[:k]
                key = (path[k], target[k])
                groups.setdefault(parent, {}).setdefault(key, []).append((path, ref))
        return groups

    def cycles(self):
        out = []
        for parent, edges in sorted(self.lifted_edges().items()):
            graph: dict[str, set[str]] = {}
            for a, b in edges:
                graph.setdefault(a, set()).add(b)
                graph.setdefault(b, set())
            for cycle in simple_cycles(graph):
                out.append((parent, cycle, edges))
        return out


def simple_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The elementary cycles of `graph`, each once, starting at its least
    node (at most MAX_CYCLES_PER_GROUP of them)."""
    found: list[list[str]] = []
    nodes = sorted(graph)
    for start in nodes:
        stack = [(start, [start])]
        while stack and len(found) < MAX_CYCLES_PER_GROUP:
            node, chain = stack.pop()
            for nxt in sorted(graph[node], reverse=True):
                if nxt == start:
                    found.append(chain + [start])
                elif nxt > start and nxt not in chain:
                    stack.append((nxt, chain + [nxt]))
    found.sort(key=lambda c: (len(c), c))
    return found


def show(path: Mod) -> str:
    return "::".join(path) if path else "crate"


def main(argv: list[str]) -> int:
    graph = "--graph" in argv  # also print every lifted edge (for debugging)
    dirs = [Path(a) for a in argv if a != "--graph"] or sorted((ROOT / "crates").glob("*"))
    total = 0
    for crate_dir in dirs:
        crate_dir = crate_dir.resolve()
        for root_name in ("lib.rs", "main.rs"):
            root_file = crate_dir / "src" / root_name
            if not root_file.is_file():
                continue
            label = crate_dir.name + ("" if root_name == "lib.rs" else " (bin)")
            crate = Crate(label, root_file)
            crate.collect()
            if graph:
                for parent, edges in sorted(crate.lifted_edges().items()):
                    for a, b in sorted(edges):
                        print(f"{label}: edge {show(parent + (a,))} -> {show(parent + (b,))}")
            for parent, cycle, edges in crate.cycles():
                total += 1
                chain = " -> ".join(show(parent + (m,)) for m in cycle)
                print(f"{label}: cycle {chain}")
                for a, b in zip(cycle, cycle[1:]):
                    print(f"    {show(parent + (a,))} -> {show(parent + (b,))}:")
                    for line in evidence(crate, edges[(a, b)]):
                        print(f"        {line}")
    if total:
        print(f"{total} module cycle(s): move what both sides need into a leaf module")
        return 1
    print("no module cycles")
    return 0


def evidence(crate: Crate, refs: list[tuple[Mod, Ref]], most: int = 4) -> list[str]:
    """Where an edge comes from: its `use` declarations first, then paths."""
    lines = []
    for src, ref in sorted(refs, key=lambda r: (not r[1].text.startswith("use "), r[1].line)):
        file = crate.modules[src].file
        shown = file.relative_to(ROOT) if file.is_relative_to(ROOT) else file
        line = f"{shown}:{ref.line}: {ref.text}"
        if line not in lines:
            lines.append(line)
    if len(lines) > most:
        lines = lines[:most] + [f"... and {len(lines) - most} more"]
    return lines


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
