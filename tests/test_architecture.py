"""The package layout is the architecture: layers import only layers before them.

The flow is ``files -> sessions -> model -> inference -> analyses -> report``:

=========== ============================================================
layer       may import
=========== ============================================================
utils       (nothing of sharedrep)
data        utils
sim         utils, data
core        utils
inference   utils, core
study       utils, data, core, inference
app         everything
=========== ============================================================

The top-level ``sharedrep/__init__.py`` only re-exports the public API. Imports inside
functions count: a lazy import is still a dependency. There must be no import cycle
between modules either.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sharedrep

PACKAGE = Path(sharedrep.__file__).resolve().parent

ALLOWED = {
    "utils": set(),
    "data": {"utils"},
    "sim": {"utils", "data"},
    "core": {"utils"},
    "inference": {"utils", "core"},
    "study": {"utils", "data", "core", "inference"},
    "app": {"utils", "data", "sim", "core", "inference", "study"},
}
BASE = {"_version"}  # leaf modules importable by any layer


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The sharedrep modules ``name`` imports (``from pkg import module`` resolved)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "sharedrep")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "sharedrep":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    return found


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def test_every_module_is_in_a_layer(graph):
    stray = [m for m in graph if m != "sharedrep" and _layer(m) not in {*ALLOWED, *BASE}]
    stray = [m for m in stray if m != "sharedrep.__main__"]
    assert not stray, f"modules outside the layers {sorted(ALLOWED)}: {stray}"


def test_layers_import_only_layers_before_them(graph):
    upward = []
    for module, deps in graph.items():
        layer = _layer(module)
        if layer not in ALLOWED:
            continue
        for dep in deps:
            dep_layer = _layer(dep)
            if dep_layer in BASE or dep_layer == layer:
                continue
            if dep_layer not in ALLOWED[layer]:
                upward.append(f"{module} -> {dep}")
    assert not upward, "imports against the flow:\n" + "\n".join(sorted(upward))


def test_no_import_cycles(graph):
    # Tarjan's strongly connected components over module -> module edges; a package's
    # __init__ re-exporting its own submodules is not a cycle of the design.
    edges = {
        m: {d for d in deps if d in graph and not m.startswith(d + ".")}
        for m, deps in graph.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_public_api_is_reexported():
    for name in sharedrep.__all__:
        assert hasattr(sharedrep, name), name


def _size_tool():
    """``tools/check_size.py`` loaded from the repository (it is not part of the package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "tools" / "check_size.py"
    if not path.is_file():
        pytest.skip("tools/check_size.py is not in this checkout")
    spec = importlib.util.spec_from_file_location("check_size", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_functions_are_short_and_simple():
    """No function body over 80 lines (unless marked) and no unlisted radon E/F block."""
    pytest.importorskip("radon")
    tool = _size_tool()
    found = tool.findings([PACKAGE])
    assert not found, (
        "split these into named steps, or justify them (docs/architecture.md, "
        "'# long-function:'):\n" + "\n".join(found)
    )


def test_listed_exceptions_still_exist():
    """Every block excused in docs/architecture.md is still an E/F block (no stale entries)."""
    pytest.importorskip("radon")
    tool = _size_tool()
    excused = tool.justified_blocks()
    actual = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        for line in tool.bad_grades(path):  # "<path>:<line> <name>: <grade> (<complexity>)"
            actual.add(tool.block_id(path, line.rsplit(" ", 3)[-3].rstrip(":")))
    stale = sorted(block for block in excused if block not in actual)
    assert not stale, f"docs/architecture.md excuses blocks that are no longer E/F: {stale}"
