#!/usr/bin/env python3
"""Checks the self-contained code snippets of the guide and the READMEs, so a
renamed function or attribute cannot linger in the docs:

- ```python blocks that ``import sipreg``: ``mypy --strict`` against bindings/python;
- ```c blocks with a ``main``: compiled (syntax and types) against include/sipreg.h;
- ```cpp blocks that include ``sipreg.hpp``: compiled the same way (statements
  outside a function are wrapped in one).

    python3 tests/doc-snippets.py        # run from anywhere; exit 1 on any failure
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Tuple

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "bindings" / "python" / "README.md"] + sorted(
    p for p in (ROOT / "docs").glob("*.md") if p.name != "api.md"  # api.md: declarations only
)
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)


def snippets() -> List[Tuple[str, str, str]]:
    """(language, "file:line", code) of every fenced block of the docs."""
    out = []
    for doc in DOCS:
        text = doc.read_text()
        for m in BLOCK.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            out.append((m.group(1), f"{doc.relative_to(ROOT)}:{line}", m.group(2)))
    return out


def wrap_cpp(code: str) -> str:
    """Puts the statements of a fragment into ``main`` (includes stay outside)."""
    if re.search(r"\bmain\s*\(", code):
        return code
    lines = code.splitlines()
    includes = [x for x in lines if x.startswith("#")]
    body = [x for x in lines if not x.startswith("#")]
    return "\n".join(includes + ["int main() {"] + body + ["return 0;", "}"]) + "\n"


def main() -> int:
    failures: List[str] = []
    counts = {"python": 0, "c": 0, "cpp": 0}
    with tempfile.TemporaryDirectory(prefix="sipreg-doc-snippets.") as tmp:
        py_files: List[Tuple[Path, str]] = []
        for n, (lang, where, code) in enumerate(snippets()):
            if lang == "python" and re.search(r"^import sipreg$", code, re.M):
                f = Path(tmp) / f"snippet_{n}.py"
                f.write_text(code)
                py_files.append((f, where))
            elif lang == "c" and re.search(r"\bint main\s*\(", code):
                f = Path(tmp) / f"snippet_{n}.c"
                f.write_text(code)
                cmd = ["cc", "-fsyntax-only", "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'include'}", str(f)]
                counts["c"] += 1
                p = subprocess.run(cmd, capture_output=True, text=True)
                if p.returncode != 0:
                    failures.append(f"{where} (C):\n{p.stderr}")
            elif lang == "cpp" and "sipreg.hpp" in code:
                f = Path(tmp) / f"snippet_{n}.cpp"
                f.write_text(wrap_cpp(code))
                cmd = ["c++", "-fsyntax-only", "-std=c++17", "-Wall", "-Wextra", "-Werror",
                       f"-I{ROOT / 'include'}", f"-I{ROOT / 'examples-cpp'}", str(f)]
                counts["cpp"] += 1
                p = subprocess.run(cmd, capture_output=True, text=True)
                if p.returncode != 0:
                    failures.append(f"{where} (C++):\n{p.stderr}")
        counts["python"] = len(py_files)
        if py_files:
            env = dict(os.environ, MYPYPATH=str(ROOT / "bindings" / "python"))
            cmd = [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", os.devnull]
            p = subprocess.run(cmd + [str(f) for f, _ in py_files], capture_output=True, text=True, env=env)
            if p.returncode != 0:
                text = p.stdout + p.stderr
                for f, where in py_files:
                    text = text.replace(str(f), where + " (snippet)")
                failures.append(f"Python (mypy --strict):\n{text}")
    print("doc snippets checked: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    if not all(counts.values()):
        failures.append(f"a language had no snippet to check (the markers moved?): {counts}")
    for msg in failures:
        print(msg, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
