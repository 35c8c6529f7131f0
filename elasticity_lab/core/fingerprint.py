"""The fingerprint of the library code a computation depends on: part of every cache key.

Why: a result computed by older code must not be reused after the code changed, but a change to a
figure module must not invalidate a pre-training run. The fingerprint of a module is a hash of the
source (comments and docstrings stripped, with :mod:`ast`) of every module of ``elasticity_lab`` it
imports, transitively, including imports inside functions and the parent packages' ``__init__``.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import elasticity_lab

PACKAGE = "elasticity_lab"
PACKAGE_ROOT = Path(elasticity_lab.__file__).resolve().parent


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _module_path(name: str, package: str, root: Path) -> Path | None:
    """The source file of module ``name`` if it belongs to ``package`` (a ``.py`` or a sub-package's ``__init__.py``)."""
    parts = name.split(".")
    if parts[0] != package:
        return None
    base = root.joinpath(*parts[1:])
    if parts[1:] and base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    init = base / "__init__.py"
    return init if init.is_file() else None


def _imported_names(tree: ast.AST, name: str, is_package: bool) -> set[str]:
    """Every module name ``tree`` may import (function-level imports included), relative ones resolved."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = name.split(".") if is_package else name.split(".")[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return found


def package_fingerprint(start: str, package: str, root: Path, start_file: Path | None = None) -> tuple[str, list[str]]:
    """``(sha256, modules)`` of the modules of ``package`` (under ``root``) that ``start`` imports, transitively.

    ``start`` is a module name; a module outside the package is read from ``start_file``. The
    hash covers each module's syntax tree without comments, docstrings or line numbers, and the
    parent packages' ``__init__.py`` (they run on import).
    """
    parts = start.split(".")
    todo = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]  # the module and its parent packages
    seen: dict[str, Path] = {}
    outside = start_file if _module_path(start, package, root) is None else None
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = outside if (name == start and outside is not None) else _module_path(name, package, root)
        if path is None:
            continue
        seen[name] = path
        is_package = path.name == "__init__.py" and path != outside
        tree = ast.parse(path.read_text("utf-8"), filename=str(path))
        for dep in _imported_names(tree, name, is_package):
            parts = dep.split(".")
            todo += [".".join(parts[:i]) for i in range(1, len(parts) + 1)]  # a module and its parent packages
    h = hashlib.sha256()
    for name in sorted(seen):
        tree = _strip_docstrings(ast.parse(seen[name].read_text("utf-8")))
        h.update(name.encode() + b"\0" + ast.dump(tree, include_attributes=False).encode() + b"\0")
    return h.hexdigest(), sorted(n for n in seen if n.startswith(package))


@functools.cache
def _fingerprint(module: str) -> tuple[str, tuple[str, ...]]:
    mod = sys.modules.get(module)
    file = getattr(mod, "__file__", None)
    start_file = Path(file) if file and str(file).endswith(".py") else None
    if _module_path(module, PACKAGE, PACKAGE_ROOT) is None and start_file is None:
        module = PACKAGE + ".__everything__"  # no source to read (a notebook's __main__): the whole package counts
        files = sorted(PACKAGE_ROOT.rglob("*.py"))
        h = hashlib.sha256()
        for f in files:
            h.update(f.relative_to(PACKAGE_ROOT).as_posix().encode() + b"\0"
                     + ast.dump(_strip_docstrings(ast.parse(f.read_text("utf-8"))), include_attributes=False).encode())
        return h.hexdigest(), tuple(f.relative_to(PACKAGE_ROOT).as_posix() for f in files)
    digest, modules = package_fingerprint(module, PACKAGE, PACKAGE_ROOT, start_file)
    return digest, tuple(modules)


def code_fingerprint(module: str) -> str:
    """SHA-256 of the library source that module ``module`` depends on (computed once per process).

    ``module`` is a module name such as ``"elasticity_lab.lm.pretraining"``; a module outside the
    library (a test, a script) counts with its own file; one without a file, the whole library.
    """
    return _fingerprint(module)[0]


def code_modules(module: str) -> tuple[str, ...]:
    """The library modules that :func:`code_fingerprint` of ``module`` covers."""
    return _fingerprint(module)[1]


def caller_module(depth: int = 2) -> str:
    return str(sys._getframe(depth).f_globals.get("__name__", "__main__"))


def module_of(fn: Callable[..., Any]) -> str | None:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return getattr(fn, "__module__", None)


