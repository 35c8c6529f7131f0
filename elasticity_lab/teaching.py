"""A teacher's workflow: student notebooks, solution notebooks, and grading a class's submissions.

- :func:`student_notebook` turns a chapter into the copy students get: the collapsed solution cells
  are gone and no cell imports ``solutions``, so it runs top to bottom with the library installed
  without ``elasticity_lab/exercises/solutions.py``. Each exercise cell is tagged in its metadata.
- :func:`solution_notebook` fills every exercise stub with the body of its reference solution.
- :func:`grade` executes a folder of submitted student notebooks at the ``smoke`` scale, then re-runs
  every exercise's check on the student's function in the same kernel (the printed ✅ in a
  submission is never trusted) and returns one row per student and exercise.

``python -m elasticity_lab teach student|solutions|grade`` runs them from a shell. An exercise in a
chapter is a code cell holding a stub (``raise NotImplementedError``) and a call
``chNN.check_x(stub)``, followed by a cell tagged ``hide-cell`` with
``show_solution(solutions.y, chNN.check_x)`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import argparse
import ast
import copy
import csv
import inspect
import json
import os
import re
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["Exercise", "GradeRow", "find_exercises", "grade", "solution_notebook", "student_notebook", "write_csv"]

STATUSES = ("passed", "failed", "not attempted")
GRADES_MARKER = "ELASTICITY_LAB_GRADES "
_CHECK_CALL = re.compile(r"^\s*(ch\d\d\w?)\.(check_\w+)\(\s*(\w+)\s*(?:,[^\n]*)?\)\s*$", re.M)
_SOLUTION_CALL = re.compile(r"show_solution\(\s*solutions\.(\w+)\s*,\s*(?:partial\(\s*)?(ch\d\d\w?)\.(check_\w+)\b")
_EXERCISES_IMPORT = re.compile(r"^(\s*)from elasticity_lab\.exercises import ([^\n(]+)$", re.M)
_SOLUTION_NAMES = {"solutions", "show_solution"}


@dataclass(frozen=True)
class Exercise:
    """One exercise of a chapter: ``module.check(function)`` is its check; ``solution`` names the reference."""

    module: str  # "ch01"
    check: str  # "check_code_lengths"
    function: str  # the stub's name in the notebook, "code_lengths"
    solution: str | None  # the reference's name in elasticity_lab.exercises.solutions

    @property
    def id(self) -> str:
        return f"{self.module}.{self.check}"


@dataclass(frozen=True)
class GradeRow:
    student: str
    notebook: str
    exercise: str  # the check's own name, e.g. "Exercise 1.1 (code lengths)"
    check: str  # "ch01.check_code_lengths"
    status: str  # one of STATUSES
    hint_shown: str  # the line the check printed to the student (the reason, for a wrong answer)


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _set_source(cell: dict, text: str) -> None:
    cell["source"] = text.splitlines(keepends=True)


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _load(path: str | Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _dump(nb: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _is_solution_cell(cell: dict) -> bool:
    return cell["cell_type"] == "code" and "show_solution(" in _source(cell)


def find_exercises(nb: dict) -> list[Exercise]:
    """The chapter's exercises, in order: stub cells with a check call, matched to their solution cells."""
    solutions = {}
    for cell in nb["cells"]:
        for sol, module, check in _SOLUTION_CALL.findall(_source(cell)) if cell["cell_type"] == "code" else ():
            solutions[f"{module}.{check}"] = sol
    found = []
    for cell in nb["cells"]:
        text = _source(cell)
        if cell["cell_type"] != "code" or "raise NotImplementedError" not in text or _is_solution_cell(cell):
            continue
        for module, check, function in _CHECK_CALL.findall(text):
            found.append(Exercise(module, check, function, solutions.get(f"{module}.{check}")))
    return found


def _without_solution_imports(text: str) -> str:
    """Drop ``solutions`` and ``show_solution`` from ``from elasticity_lab.exercises import ...`` lines."""

    def fix(match: re.Match) -> str:
        names = [n.strip() for n in match.group(2).split("#")[0].split(",") if n.strip()]
        kept = [n for n in names if n.split(" as ")[0].strip() not in _SOLUTION_NAMES]
        return f"{match.group(1)}from elasticity_lab.exercises import {', '.join(kept)}" if kept else "\x00"

    text = _EXERCISES_IMPORT.sub(fix, text)
    return "".join(line for line in text.splitlines(keepends=True) if line.rstrip("\n") != "\x00")


def _mentions_solutions(text: str) -> bool:
    return bool(re.search(r"\bshow_solution\b|\bsolutions\b\s*(\.|import)|exercises\.solutions|import\s+solutions\b", text))


def _prepare(nb: dict, role: str) -> tuple[dict, list[Exercise]]:
    exercises = find_exercises(nb)
    if not exercises:
        raise ValueError("notebook has no exercises (a code cell with `raise NotImplementedError` and a `chNN.check_x(...)` call)")
    out = copy.deepcopy(nb)
    out["cells"] = [c for c in out["cells"] if not _is_solution_cell(c)]
    for cell in out["cells"]:
        if cell["cell_type"] == "code":
            _set_source(cell, _without_solution_imports(_source(cell)))
            cell["outputs"], cell["execution_count"] = [], None
    by_function = {ex.function: ex for ex in exercises}
    tagged: set[str] = set()
    for cell in out["cells"]:
        calls = _CHECK_CALL.findall(_source(cell)) if cell["cell_type"] == "code" else []
        if calls and calls[0][2] in by_function and calls[0][2] not in tagged:  # the stub's cell, not later uses
            tagged.add(calls[0][2])
            cell.setdefault("metadata", {})["elasticity_lab"] = {"exercise": by_function[calls[0][2]].id}
    out.setdefault("metadata", {})["elasticity_lab"] = {"role": role, "exercises": [asdict(e) | {"id": e.id} for e in exercises]}
    return out, exercises


def student_notebook(nb: dict) -> dict:
    """The students' copy of a chapter: exercise stubs kept, solution cells dropped, nothing imports ``solutions``."""
    out, _ = _prepare(nb, "student")
    left = [i for i, c in enumerate(out["cells"]) if c["cell_type"] == "code" and _mentions_solutions(_source(c))]
    if left:
        raise ValueError(f"cells {left} of the student notebook still refer to the solutions; move them into the hidden solution cells")
    return out


def _solution_imports() -> dict[str, str]:
    """Module-level imports of solutions.py: the name they bind -> the import statement."""
    from elasticity_lab.exercises import solutions

    tree = ast.parse(inspect.getsource(solutions))
    imports = {}
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)) and not (isinstance(node, ast.ImportFrom) and node.module == "__future__"):
            for alias in node.names:
                imports[alias.asname or alias.name.split(".")[0]] = ast.unparse(
                    type(node)(**{**{k: getattr(node, k) for k in node._fields}, "names": [alias]}))
    return imports


def _solution_body(name: str, indent: str) -> tuple[list[str], list[str]]:
    """The body of solutions.<name>, re-indented to ``indent``, and the imports it needs."""
    from elasticity_lab.exercises import solutions

    fn = getattr(solutions, name)
    if fn.__module__ != solutions.__name__:
        # the exercise teaches a library function: its solution is that function, called with the stub's arguments
        params = ", ".join(inspect.signature(fn).parameters)
        return ([f"{indent}from {fn.__module__} import {fn.__name__}", f"{indent}return {fn.__name__}({params})"], [])
    src = textwrap.dedent(inspect.getsource(fn))
    node = ast.parse(src).body[0]
    lines = src.splitlines()[node.body[0].lineno - 1:]
    body = textwrap.dedent("\n".join(lines)).splitlines()
    imports = _solution_imports()
    used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    needed = [imports[n] for n in sorted(used) if n in imports]
    return [indent + line if line.strip() else "" for line in body], needed


def solution_notebook(nb: dict) -> dict:
    """The chapter with every exercise stub filled in with its reference solution (checks then print ✅)."""
    out, exercises = _prepare(nb, "solutions")
    by_function = {ex.function: ex for ex in exercises}
    for cell in out["cells"]:
        ex_id = cell.get("metadata", {}).get("elasticity_lab", {}).get("exercise")
        if not ex_id:
            continue
        ex = next(e for e in by_function.values() if e.id == ex_id)
        if ex.solution is None:
            raise ValueError(f"exercise {ex.id} has no solution cell (show_solution(solutions.<name>, {ex.id}))")
        lines = _source(cell).splitlines()
        start = next(i for i, line in enumerate(lines) if re.match(rf"\s*def {ex.function}\(", line))
        stub = next(i for i in range(start, len(lines)) if lines[i].strip().startswith("raise NotImplementedError"))
        indent = re.match(r"\s*", lines[stub]).group(0)
        body, imports = _solution_body(ex.solution, indent)
        imports = [imp for imp in imports if imp not in lines]
        new = [*imports, *([""] if imports else []), *lines[:stub], *body, *lines[stub + 1:]]
        _set_source(cell, "\n".join(new))
    return out


def _write_many(notebooks: Iterable[str | Path], out_dir: str | Path, make: Any) -> list[Path]:
    written = []
    for path in notebooks:
        path = Path(path)
        target = Path(out_dir) / path.name
        _dump(make(_load(path)), target)
        written.append(target)
    return written


def write_student_notebooks(notebooks: Iterable[str | Path], out_dir: str | Path) -> list[Path]:
    return _write_many(notebooks, out_dir, student_notebook)


def write_solution_notebooks(notebooks: Iterable[str | Path], out_dir: str | Path) -> list[Path]:
    return _write_many(notebooks, out_dir, solution_notebook)


def _grader_cell(exercises: Sequence[Exercise]) -> str:
    pairs = [(ex.module, ex.check, ex.function) for ex in exercises]
    return textwrap.dedent(f"""\
        import contextlib as _cl, importlib as _il, io as _io, json as _js
        _grades = {{}}
        for _module, _check, _function in {pairs!r}:
            _buffer = _io.StringIO()
            if _function not in globals():
                _grades[_module + "." + _check] = "❌ the function `" + _function + "` is not defined (did its cell raise an error?)"
                continue
            with _cl.redirect_stdout(_buffer):
                _verdict = getattr(_il.import_module("elasticity_lab.exercises." + _module), _check)(globals()[_function])
            _grades[_module + "." + _check] = str(_verdict)
        print({GRADES_MARKER!r} + _js.dumps(_grades, ensure_ascii=False))
        """)


def _status(verdict: str) -> str:
    return "passed" if verdict.startswith("✅") else "not attempted" if verdict.startswith("⏳") else "failed"


def _exercise_name(verdict: str, fallback: str) -> str:
    match = re.match(r"^[✅❌⏳]\s*(.+?):\s", verdict)
    return match.group(1) if match else fallback


def _student_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root)
    return rel.parts[0] if len(rel.parts) > 1 else path.stem


def grade_notebook(path: str | Path, *, scale: str = "smoke", timeout: int = 600, kernel_name: str = "python3") -> list[dict]:
    """Execute one submitted notebook and re-run its exercises' checks; one dict per exercise."""
    import nbformat
    from nbclient import NotebookClient

    from elasticity_lab.core.config import check_positive

    check_positive("timeout", timeout)
    path = Path(path)
    nb = _load(path)
    meta = nb.get("metadata", {}).get("elasticity_lab", {})
    exercises = [Exercise(e["module"], e["check"], e["function"], e.get("solution")) for e in meta.get("exercises", [])]
    exercises = exercises or find_exercises(nb)
    if not exercises:
        raise ValueError(f"{path} has no exercises: was it made with `python -m elasticity_lab teach student`?")
    nb["cells"].append({"cell_type": "code", "id": "elasticity-lab-grader", "metadata": {}, "execution_count": None, "outputs": [],
                        "source": _grader_cell(exercises)})
    notebook = nbformat.reads(json.dumps(nb), as_version=4)
    previous = os.environ.get("ELASTICITY_SCALE")
    os.environ["ELASTICITY_SCALE"] = scale  # the chapter's setup() reads it; the kernel inherits it
    problem = ""
    try:
        NotebookClient(notebook, timeout=timeout, kernel_name=kernel_name, allow_errors=True,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    except Exception as err:  # noqa: BLE001 - a dead kernel or a hung cell fails this student's exercises only
        problem = f"the notebook did not finish: {type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
    finally:
        if previous is None:
            os.environ.pop("ELASTICITY_SCALE", None)
        else:
            os.environ["ELASTICITY_SCALE"] = previous
    verdicts: dict[str, str] = {}
    for out in notebook.cells[-1].get("outputs", []):
        for line in "".join(out.get("text", "")).splitlines():
            if line.startswith(GRADES_MARKER):
                verdicts = json.loads(line[len(GRADES_MARKER):])
    rows = []
    for ex in exercises:
        verdict = verdicts.get(ex.id)
        name = _exercise_name(verdict, ex.id) if verdict else ex.id
        verdict = verdict or f"❌ {problem or 'the grading cell did not run'}"
        rows.append({"exercise": name, "check": ex.id, "status": _status(verdict),
                     "hint_shown": verdict})
    return rows


def grade(folder: str | Path, *, scale: str = "smoke", timeout: int = 600, kernel_name: str = "python3") -> list[GradeRow]:
    """Grade every ``*.ipynb`` under ``folder``: ``folder/<student>/<chapter>.ipynb`` or ``folder/<student>.ipynb``."""
    from elasticity_lab.core.config import SCALES, check_choice

    check_choice("scale", scale, SCALES)
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"folder={str(folder)!r} is not a folder of submitted notebooks")
    paths = sorted(p for p in root.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if not paths:
        raise ValueError(f"folder={str(folder)!r} holds no .ipynb files")
    rows = []
    for path in paths:
        student = _student_name(path, root)
        for row in grade_notebook(path, scale=scale, timeout=timeout, kernel_name=kernel_name):
            rows.append(GradeRow(student=student, notebook=path.relative_to(root).as_posix(), **row))
    return rows


def write_csv(rows: Sequence[GradeRow], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(GradeRow.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    return path


# ---------------------------------------------------------------------------------------------
# command line: python -m elasticity_lab teach student|solutions|grade


def _default_notebooks(paths: Sequence[str]) -> list[Path]:
    if paths:
        for p in paths:
            if not Path(p).is_file():
                raise ValueError(f"notebooks contains {p!r}, which is not allowed; no such file.")
        return [Path(p) for p in paths]
    found = sorted(Path("notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not found:
        raise ValueError("no notebooks given and none found in ./notebooks: pass the chapters' .ipynb files")
    return found


def _cmd_teach(args: argparse.Namespace) -> int:
    from elasticity_lab.core.config import SCALES, check_choice, check_int, check_output_path

    if args.teach_command == "grade":  # every argument checked before any notebook runs
        check_choice("--scale", args.scale, SCALES)
        check_int("--timeout", args.timeout, 1)
        check_output_path("--csv", args.csv)
        rows = grade(args.folder, scale=args.scale, timeout=args.timeout)
        write_csv(rows, args.csv)
        counts = {s: sum(r.status == s for r in rows) for s in STATUSES}
        print(f"wrote {args.csv}: {len({r.student for r in rows})} students, "
              + ", ".join(f"{n} {s}" for s, n in counts.items()))
        return 0
    write = write_student_notebooks if args.teach_command == "student" else write_solution_notebooks
    written = write(_default_notebooks(args.notebooks), args.out)
    print(f"wrote {len(written)} {args.teach_command} notebooks to {args.out}")
    return 0


def add_parser(sub: Any) -> None:
    """Register ``teach`` on the CLI's subparsers."""
    p = sub.add_parser("teach", help="student and solution notebooks; grade a folder of submissions to CSV")
    teach = p.add_subparsers(dest="teach_command", required=True)
    for name, what in (("student", "exercise stubs, no solutions, nothing importing them"),
                       ("solutions", "every exercise filled in with its reference solution")):
        q = teach.add_parser(name, help=f"write {name} notebooks: {what}")
        q.add_argument("notebooks", nargs="*", help="chapter notebooks (default: notebooks/NN_*.ipynb)")
        q.add_argument("--out", default=f"{name}_notebooks", help=f"output folder (default: {name}_notebooks)")
    q = teach.add_parser("grade", help="execute submitted notebooks at a scale and write one CSV row per student and exercise")
    q.add_argument("folder", help="submissions: FOLDER/<student>/<chapter>.ipynb or FOLDER/<student>.ipynb")
    q.add_argument("--csv", default="grades.csv", help="the CSV to write (default: grades.csv)")
    q.add_argument("--scale", default="smoke", help="scale to execute the chapters at (default: smoke)")
    q.add_argument("--timeout", type=int, default=600, help="seconds one cell may take (default: 600)")
    p.set_defaults(func=_cmd_teach)
