#!/usr/bin/env python3
"""Generates docs/api.md, the API reference, from include/sipreg.h (the
cbindgen doc comments) and the Python package's docstrings (read with ast:
no library needs to load).

    python3 docs/gen-api.py           # rewrite docs/api.md
    python3 docs/gen-api.py --check   # exit 1 if docs/api.md is not current (CI)
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from typing import List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]
HEADER = ROOT / "include" / "sipreg.h"
PKG = ROOT / "bindings" / "python" / "sipreg"
OUT = ROOT / "docs" / "api.md"


def _comment_text(block: str) -> str:
    lines = []
    for line in block.splitlines():
        line = line.strip()
        if line in ("/**", "*/"):
            continue
        line = re.sub(r"^\*( |$)", "", line)
        lines.append(line)
    return "\n".join(lines).strip()


_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def inline_headings(doc: str) -> str:
    """Turns Markdown headings inside a doc comment (rustdoc's ``# Safety``) into
    bold lead-ins of the paragraph that follows, so that they stay inside their
    item's entry instead of becoming headings of the whole reference."""
    out: List[str] = []
    lines = doc.splitlines()
    fence = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            fence = not fence
        m = None if fence else _HEADING.match(line)
        if m is None:
            out.append(line)
            i += 1
            continue
        lead = f"**{m.group(2)}:**"
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if nxt.strip() and not nxt.lstrip().startswith(("```", "#", "-", "*")):
            out.append(f"{lead} {nxt}")
            i += 2
        else:
            out.append(lead)
            i += 1
    return "\n".join(out)


def stray_headings(text: str) -> List[str]:
    """Top-level (``# ``) headings outside code fences other than the title."""
    found: List[str] = []
    fence = False
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fence = not fence
        elif not fence and n > 1 and re.match(r"^# ", line):
            found.append(f"line {n}: {line}")
    return found


def c_items() -> Tuple[List[Tuple[str, str, str]], List[Tuple[str, str, str]]]:
    """(types, functions) as (name, declaration, doc) in header order."""
    text = HEADER.read_text()
    types: List[Tuple[str, str, str]] = []
    funcs: List[Tuple[str, str, str]] = []
    pattern = re.compile(r"/\*\*(?P<doc>.*?)\*/\s*(?P<decl>(?:typedef|enum|struct|const|void|bool|int|uint|size_t)[^;{]*(?:\{.*?\}[^;]*)?;)", re.S)
    for m in pattern.finditer(text):
        doc = inline_headings(_comment_text("/**" + m.group("doc") + "*/"))
        decl = m.group("decl").strip()
        if decl.startswith("typedef"):
            name_m = re.search(r"(sipreg_\w+)\s*(?:\)\s*\(|;|$)", decl.split("{")[0] if "(" in decl.split("{")[0] else decl)
            name = name_m.group(1) if name_m else decl.split()[-1].rstrip(";")
            if "{" in decl:
                body = decl[decl.index("{") + 1 : decl.rindex("}")]
                members = []
                for mm in re.finditer(r"/\*\*(.*?)\*/\s*([^;,]+)[;,]", body, re.S):
                    members.append((mm.group(2).strip(), _comment_text("/**" + mm.group(1) + "*/")))
                kind = "enum" if decl.startswith("typedef enum") else "struct"
                decl = f"typedef {kind} {name} {{ … }} {name};"
                doc += "\n\n" + "\n".join(f"- `{n}`: {d.replace(chr(10), ' ')}" for n, d in members)
            types.append((name, " ".join(decl.split()), doc))
        else:
            name_m = re.search(r"(sipreg_\w+)\(", decl)
            if name_m:
                funcs.append((name_m.group(1), " ".join(decl.split()), doc))
    return types, funcs


def _first_para(doc: Optional[str]) -> str:
    if not doc:
        return ""
    return inline_headings(ast.literal_eval(repr(doc)).strip())


def py_items(module: str = "__init__") -> List[Tuple[str, str, str, List[Tuple[str, str, str]]]]:
    """Public names of ``__all__`` of ``module`` (the package, or a submodule
    such as ``aio`` whose own definitions come first): (name, signature, doc, members)."""
    init = ast.parse((PKG / f"{module}.py").read_text())
    public: List[str] = []
    for node in init.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets):
            public = [ast.literal_eval(e) for e in node.value.elts]  # type: ignore[attr-defined]
    defs = {}
    sources = {}
    files = sorted(PKG.glob("*.py"))
    if module != "__init__":
        files = [PKG / f"{module}.py"] + [f for f in files if f.stem != module]
    for f in files:
        text = f.read_text()
        for node in ast.parse(text).body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
                defs.setdefault(node.name, node)
                sources[node.name] = text.splitlines()

    def comment_above(name: str, lineno: int) -> str:
        """The ``#:`` comment lines right above line ``lineno`` (Sphinx style)."""
        lines = sources[name]
        out: List[str] = []
        i = lineno - 2
        while i >= 0 and lines[i].strip().startswith("#:"):
            out.insert(0, lines[i].strip()[2:].strip())
            i -= 1
        return " ".join(out)

    out = []
    for name in public:
        node = defs.get(name)
        if node is None:
            continue
        members: List[Tuple[str, str, str]] = []
        if isinstance(node, ast.ClassDef):
            sig = f"class {name}"
            init_fn = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
            if init_fn is not None:
                sig = f"{name}({ast.unparse(init_fn.args).replace('self, ', '').replace('self', '')})"
            for n in node.body:
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and not n.name.startswith("_"):
                    prop = any(getattr(d, "id", "") == "property" for d in n.decorator_list)
                    msig = f".{n.name}" if prop else f".{n.name}({ast.unparse(n.args).replace('self, ', '').replace('self', '')})"
                    if isinstance(n, ast.AsyncFunctionDef):
                        msig = "async " + msig
                    if n.returns is not None:
                        msig += f" -> {ast.unparse(n.returns)}"
                    members.append((n.name, msig, _first_para(ast.get_docstring(n))))
                elif isinstance(n, ast.Assign) and isinstance(node, ast.ClassDef) and node.bases and any(
                    getattr(b, "attr", getattr(b, "id", "")) in ("IntEnum", "Enum") for b in node.bases
                ):
                    for t in n.targets:
                        if isinstance(t, ast.Name):
                            members.append((t.id, f".{t.id} = {ast.unparse(n.value)}", comment_above(name, n.lineno)))
                elif isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name):
                    members.append(
                        (n.target.id, f".{n.target.id}: {ast.unparse(n.annotation)}", comment_above(name, n.lineno))
                    )
        else:
            sig = f"{name}({ast.unparse(node.args)})"
            if node.returns is not None:
                sig += f" -> {ast.unparse(node.returns)}"
        out.append((name, sig, _first_para(ast.get_docstring(node)), members))
    return out


def render() -> str:
    types, funcs = c_items()
    lines = [
        "# API reference",
        "",
        "Generated by `docs/gen-api.py` from `include/sipreg.h` and the docstrings of",
        "`bindings/python/sipreg`; do not edit (CI checks it is current). The guide",
        "is in [README.md](README.md).",
        "",
        "## C (`#include <sipreg.h>`, `pkg-config --cflags --libs sipreg`)",
        "",
        "### Types",
        "",
    ]
    for name, decl, doc in types:
        lines += [f"#### `{name}`", "", "```c", decl, "```", "", doc, ""]
    lines += ["### Functions", ""]
    for name, decl, doc in funcs:
        lines += [f"#### `{name}`", "", "```c", decl, "```", "", doc, ""]
    lines += ["## Python (`import sipreg`)", ""]
    for name, sig, doc, members in py_items():
        lines += [f"### `sipreg.{name}`", "", "```python", sig, "```", "", doc, ""]
        for _m, msig, mdoc in members:
            body = "\n  ".join(line.strip() for line in mdoc.splitlines())
            lines += [f"- `{msig}`" + (f": {body}" if mdoc else "")]
        if members:
            lines.append("")
    lines += ["## Python asyncio (`from sipreg import aio`)", ""]
    for name, sig, doc, members in py_items("aio"):
        lines += [f"### `sipreg.aio.{name}`", "", "```python", sig, "```", "", doc, ""]
        for _m, msig, mdoc in members:
            body = "\n  ".join(line.strip() for line in mdoc.splitlines())
            lines += [f"- `{msig}`" + (f": {body}" if mdoc else "")]
        if members:
            lines.append("")
    text = "\n".join(line.rstrip() for line in "\n".join(lines).split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).rstrip() + "\n"


def main() -> int:
    text = render()
    stray = stray_headings(text)
    if stray:
        print("docs/api.md would have top-level headings besides its title:", *stray, sep="\n  ", file=sys.stderr)
        return 1
    if "--check" in sys.argv[1:]:
        if not OUT.is_file() or OUT.read_text() != text:
            print("docs/api.md is not current: run python3 docs/gen-api.py and commit it", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
