"""Report functions longer than 80 lines (body, docstring excluded) and radon grades E/F.

Usage: python tools/check_size.py [paths...]   (default: src/sharedrep)

A function may exceed 80 lines only with a comment line ``# long-function: <reason>``
directly above its ``def`` (or its first decorator). A radon E/F block is excused only when
the table under ``## Justified exceptions`` in ``docs/architecture.md`` lists it as
```path::name``` with its reason. Exit status 1 when anything is found.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

MAX_BODY = 80
MARKER = "# long-function:"
ROOT = Path(__file__).resolve().parents[1]
EXCEPTIONS_DOC = ROOT / "docs" / "architecture.md"


def justified_blocks(doc: Path = EXCEPTIONS_DOC) -> set[str]:
    """The ``path::name`` entries of the justified-exceptions table of ``doc``."""
    if not doc.is_file():
        return set()
    text = doc.read_text(encoding="utf-8")
    section = text.split("## Justified exceptions", 1)[-1].split("\n## ", 1)[0]
    return set(re.findall(r"^\|\s*`([^`]+::[^`]+)`\s*\|", section, re.M))


def block_id(path: Path, name: str) -> str:
    """``src/sharedrep/x.py::name`` (path relative to the repository when possible)."""
    try:
        rel = path.resolve().relative_to(ROOT)
    except ValueError:
        rel = path
    return f"{rel.as_posix()}::{name}"


def body_length(node: ast.AST) -> int:
    body = node.body
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(getattr(body[0], "value", None), ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        body = body[1:]
    if not body:
        return 0
    return node.end_lineno - body[0].lineno + 1


def justified(lines: list[str], node: ast.AST) -> bool:
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    above = lines[first - 2].strip() if first >= 2 else ""
    return above.startswith(MARKER)


def long_functions(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    out = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            n = body_length(node)
            if n > MAX_BODY and not justified(lines, node):
                out.append(f"{path}:{node.lineno} {node.name}: {n} lines")
    return out


def bad_grades(path: Path, excused: set[str] = frozenset()) -> list[str]:
    from radon.complexity import cc_rank, cc_visit

    out = []
    for block in cc_visit(path.read_text(encoding="utf-8")):
        rank = cc_rank(block.complexity)
        if rank in ("E", "F"):
            name = (
                f"{block.classname}.{block.name}"
                if getattr(block, "classname", None)
                else block.name
            )
            out.append(f"{path}:{block.lineno} {name}: {rank} ({block.complexity})")
    return out


def findings(paths: list[Path]) -> list[str]:
    """Every long function and every unexcused radon E/F block under ``paths``."""
    excused = justified_blocks()
    files = [f for p in paths for f in (sorted(p.rglob("*.py")) if p.is_dir() else [p])]
    return [line for f in files for line in (*long_functions(f), *bad_grades(f, excused))]


def main(argv: list[str]) -> int:
    found = findings([Path(a) for a in argv] or [ROOT / "src" / "sharedrep"])
    print("\n".join(found) if found else "OK: no long function, no radon E/F block")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
