"""The package's imports run one way (core < ops < data, models, losses < metrics, report, explain < engine < tasks
< recipes < serve, lessons < cli) and no modules import each other at import time (a cycle)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "vislab"
LEVEL = {"core": 0, "ops": 1, "data": 2, "models": 2, "losses": 2, "metrics": 3, "report": 3, "explain": 3,
         "engine": 4, "tasks": 5, "recipes": 6, "serve": 7, "lessons": 7, "cli": 8}


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """``(imported module, line, at import time)`` for every vislab import in ``path`` (relative ones resolved)."""
    tree = ast.parse(path.read_text())
    top_level = set()  # import-time statements: at module level, also inside a module-level if / try
    for node in tree.body:
        top_level |= {id(sub) for sub in (ast.walk(node) if isinstance(node, ast.If | ast.Try) else [node])}
    me = _module(path).split(".")
    package = me if path.name == "__init__.py" else me[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for n in names:
            if n.split(".")[0] == "vislab":
                out.append((n, node.lineno, id(node) in top_level))
    return out


def _files() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def test_no_wrong_way_import_between_layers():
    bad = []
    for f in _files():
        me = _module(f).split(".")
        if len(me) < 2 or me[1] not in LEVEL:
            continue
        for name, line, _ in _imports(f):
            parts = name.split(".")
            if len(parts) > 1 and parts[1] in LEVEL and parts[1] != me[1] and LEVEL[parts[1]] >= LEVEL[me[1]]:
                bad.append(f"{f.relative_to(SRC)}:{line}: {me[1]} -> {parts[1]} ({name})")
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def test_no_import_cycle():
    modules = {_module(f): f for f in _files()}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for m, f in modules.items():
        for name, _, at_import in _imports(f):
            if not at_import:
                continue  # imported inside a function: runs later, cannot form an import-time cycle
            while name and name not in modules:  # `from pkg.mod import name` -> pkg.mod
                name = name.rpartition(".")[0]
            if name and name != m and not m.startswith(name + "."):  # a module importing its own package is fine
                graph[m].add(name)
    cycles, state = [], {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = "open"
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                cycles.append(" -> ".join(stack[stack.index(n):] + [n]))
            elif n not in state:
                visit(n, stack + [n])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_walker_sees_wrong_way_imports_and_cycles(tmp_path, monkeypatch):
    """The two checks above find what they look for (on a made-up package)."""
    pkg = tmp_path / "vislab"
    for rel, text in {"core/a.py": "from vislab.engine import b\n", "engine/__init__.py": "", "core/__init__.py": "",
                      "engine/b.py": "import vislab.engine.c\n", "engine/c.py": "from vislab.engine import b\n"}.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    monkeypatch.setattr(sys.modules[__name__], "SRC", pkg)

    with pytest.raises(AssertionError, match="core -> engine"):
        test_no_wrong_way_import_between_layers()
    with pytest.raises(AssertionError, match="vislab.engine.b -> vislab.engine.c -> vislab.engine.b"):
        test_no_import_cycle()
