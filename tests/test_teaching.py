"""The teacher's workflow: student notebooks without solutions, solution notebooks that pass, and
a round trip generate -> a student solves one exercise -> grade -> CSV."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import NOTEBOOKS, ROOT
from elasticity_lab import teaching

IDS = [nb.stem for nb in NOTEBOOKS]


def _nb(path: Path) -> dict:
    return json.loads(path.read_text())


def _exercise_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c.get("metadata", {}).get("elasticity_lab", {}).get("exercise")]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=IDS)
def test_student_notebook_has_stubs_and_no_solutions(notebook: Path) -> None:
    source = _nb(notebook)
    student = teaching.student_notebook(source)
    text = json.dumps(student["cells"])
    assert "show_solution" not in text and "solutions" not in text
    stubs = sum("raise NotImplementedError" in "".join(c["source"]) for c in source["cells"] if c["cell_type"] == "code")
    assert len(_exercise_cells(student)) == stubs == len(student["metadata"]["elasticity_lab"]["exercises"])
    assert len(student["cells"]) == len(source["cells"]) - stubs, "only the solution cells are dropped"
    assert not any(c.get("outputs") for c in student["cells"] if c["cell_type"] == "code")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=IDS)
def test_solution_notebook_passes_every_check(notebook: Path) -> None:
    """The filled-in exercise cells, run in order in one namespace (numpy and pandas imported as the chapters do), print ✅."""
    import numpy as np
    import pandas as pd

    solution = teaching.solution_notebook(_nb(notebook))
    cells = _exercise_cells(solution)
    assert cells
    namespace = {"np": np, "pd": pd}
    for cell in cells:
        source = "".join(cell["source"])
        assert "raise NotImplementedError" not in source and "solutions" not in source
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(source, cell["metadata"]["elasticity_lab"]["exercise"], "exec"), namespace)
        assert out.getvalue().startswith("✅"), out.getvalue()


def test_a_chapter_without_exercises_is_refused() -> None:
    with pytest.raises(ValueError, match="no exercises"):
        teaching.student_notebook({"cells": [{"cell_type": "code", "source": "x = 1", "metadata": {}}], "metadata": {}})


def test_grade_names_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not a folder"):
        teaching.grade(tmp_path / "nope")
    with pytest.raises(ValueError, match="scale"):
        teaching.grade(tmp_path, scale="huge")


@pytest.mark.notebook
def test_round_trip_generate_solve_one_grade(tmp_path: Path) -> None:
    """Chapter 1 via the command line: a student solves exercise 1.1 only; the CSV says 1 passed, 2 not attempted."""
    chapter = ROOT / "notebooks" / "01_compression.ipynb"
    run = [sys.executable, "-m", "elasticity_lab", "teach"]
    subprocess.run([*run, "student", str(chapter), "--out", str(tmp_path / "student")], check=True, cwd=tmp_path)
    nb = _nb(tmp_path / "student" / chapter.name)
    cell = next(c for c in _exercise_cells(nb) if c["metadata"]["elasticity_lab"]["exercise"] == "ch01.check_code_lengths")
    cell["source"] = "".join(cell["source"]).replace("raise NotImplementedError", "return -np.log2(p)").splitlines(keepends=True)
    submitted = tmp_path / "submissions" / "alice" / chapter.name
    submitted.parent.mkdir(parents=True)
    submitted.write_text(json.dumps(nb))
    proc = subprocess.run([*run, "grade", str(tmp_path / "submissions"), "--csv", str(tmp_path / "grades.csv")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1 passed, 0 failed, 2 not attempted" in proc.stdout
    rows = list(csv.DictReader((tmp_path / "grades.csv").open(encoding="utf-8")))
    assert [(r["student"], r["exercise"], r["status"]) for r in rows] == [
        ("alice", "Exercise 1.1 (code lengths)", "passed"),
        ("alice", "Exercise 1.2 (cross-entropy)", "not attempted"),
        ("alice", "Exercise 1.3 (bits per token)", "not attempted"),
    ]
    assert rows[0]["hint_shown"].startswith("✅") and rows[1]["hint_shown"].startswith("⏳")
