"""The house rules of ARCHITECTURE.md, checked on the code's own imports (read with ast, nothing imported).

- Layers import only downward: core ← info ← microworld ← lm ← experiments ← plots, widgets, exercises,
  teaching, notebook ← cli. Imports inside functions count too: a lazy import is still a dependency.
- No import cycles between modules, at any layer.
- No module over MAX_LINES lines: a module holds one idea.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "elasticity_lab"
MAX_LINES = 600

# Layer of each top-level part of the package; a module may import only from its own layer or lower ones.
LAYERS: dict[str, int] = {
    "__init__": 0, "core": 0,
    "info": 1,
    "microworld": 2,
    "lm": 3,
    "experiments": 4,
    "plots": 5, "widgets": 5, "exercises": 5, "teaching": 5, "notebook": 5,
    "cli": 6, "__main__": 6,
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The package module that an import of ``name`` loads (the longest known prefix)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str) -> set[str]:
    """Package modules that ``module`` imports anywhere in its body (module level or inside functions)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text("utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for name in names:
            if name.startswith("elasticity_lab"):
                target = _resolve(name)
                # `from elasticity_lab.lm import bases` names the sub-module, not only the package
                if target and target != module:
                    found.add(target)
    # a package's face (__init__) naming a parent package is not an import of its own sub-modules' layer
    return {t for t in found if not module.startswith(t + ".") or t == "elasticity_lab"}


def layer_of(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    if top not in LAYERS:
        raise AssertionError(f"{module} is in no layer; add its part {top!r} to LAYERS here and to ARCHITECTURE.md.")
    return LAYERS[top]


GRAPH = {m: imports_of(m) for m in MODULES}


def test_every_module_is_in_a_layer():
    for module in MODULES:
        layer_of(module)


def test_imports_run_only_downward():
    upward = [f"{m} (layer {layer_of(m)}) imports {t} (layer {layer_of(t)})"
              for m, targets in GRAPH.items() for t in sorted(targets)
              if t != "elasticity_lab" and layer_of(t) > layer_of(m)]
    assert not upward, "upward imports:\n" + "\n".join(upward)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    graph = {m: {t for t in ts if t != "elasticity_lab"} for m, ts in GRAPH.items()}
    assert _cycles(graph) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_size(module):
    lines = len(MODULES[module].read_text("utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines (limit {MAX_LINES}): split it by idea"


def test_the_checker_finds_what_it_is_for():
    """The rules can fail: a made-up upward import and a made-up cycle are caught."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    assert layer_of("elasticity_lab.core.config") < layer_of("elasticity_lab.lm.bases")
