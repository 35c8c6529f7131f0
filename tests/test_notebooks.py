"""Every chapter runs at the smoke scale (papermill), and its pinned outputs reproduce (nbval)."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import _COST, ATTEMPTS, CELL_TIMEOUT, JOBS, NOTEBOOKS, ROOT, executed_notebook

pytestmark = pytest.mark.notebook
IDS = [nb.stem for nb in NOTEBOOKS]


def _cells(path):
    return json.loads(path.read_text())["cells"]


def test_there_are_chapters() -> None:
    assert NOTEBOOKS, "no notebooks/NN_*.ipynb found"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=IDS)
def test_committed_notebook_is_clean(notebook) -> None:
    """Committed chapters carry no outputs and follow the frame (parameters cell, exercises)."""
    cells = _cells(notebook)
    assert not [c for c in cells if c.get("outputs")], f"{notebook.name} has outputs: run `make clean-notebooks`"
    tags = [set(c.get("metadata", {}).get("tags", [])) for c in cells]
    assert sum("parameters" in t for t in tags) == 1, "exactly one cell must be tagged `parameters`"
    params = "".join(next(c for c, t in zip(cells, tags) if "parameters" in t)["source"])
    assert "scale" in params and "seed" in params, "the parameters cell must define `scale` and `seed`"
    sources = ["".join(c["source"]) for c in cells]
    assert any("NBVAL_CHECK_OUTPUT" in s for s in sources), "mark at least one cell `# NBVAL_CHECK_OUTPUT`"
    stubs = sum("raise NotImplementedError" in s for s in sources)
    assert stubs >= 2, f"{notebook.name} needs at least two exercises (stubs raising NotImplementedError)"
    assert sum("show_solution(" in s for s, t in zip(sources, tags) if "hide-cell" in t) >= stubs, (
        "every exercise needs a hidden (`hide-cell`) solution cell"
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=IDS)
def test_chapter_runs_at_smoke_scale(notebook) -> None:
    out = executed_notebook(notebook)
    cells = _cells(out)
    errors = [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{notebook.name} raised: {errors[0].get('ename')}: {errors[0].get('evalue')}"
    text = "".join("".join(o.get("text", "")) for c in cells for o in c.get("outputs", []))
    assert "scale = 'smoke'" in text, "the chapter did not report running at the smoke scale"
    # unsolved stubs report "not attempted", reference solutions pass their checks
    assert text.count("⏳") >= 2 and "❌" not in text, "exercise checks misbehaved on the stubs or solutions"
    solutions = sum("show_solution(" in "".join(c.get("source", "")) for c in cells if c["cell_type"] == "code")
    assert text.count("✅") >= solutions, "every exercise's reference solution must pass its check"


def _nbval(out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", f"--nbval-cell-timeout={CELL_TIMEOUT}", "-p", "no:cacheprovider",
         "-q", str(out), "--rootdir", str(out.parent), "-c", "/dev/null"],
        capture_output=True, text=True, cwd=ROOT / "notebooks", timeout=1800,
    )


_nbval_runs: dict[str, Future] = {}


def _first_nbval(notebook: Path) -> subprocess.CompletedProcess:
    """nbval's first run of ``notebook``. The first call starts every executed chapter's run, ``JOBS`` at once (each is
    a separate pytest process with its own kernel, as the serial runs were), and the tests collect them in turn."""
    if not _nbval_runs:
        ready = []
        for nb in NOTEBOOKS:
            try:
                ready.append((nb, executed_notebook(nb)))
            except Exception:  # noqa: BLE001 - that chapter's own tests report it
                pass
        pool = ThreadPoolExecutor(max_workers=JOBS)
        for nb, out in sorted(ready, key=lambda pair: -_COST.get(pair[0].name[:2], 1)):
            _nbval_runs[nb.name] = pool.submit(_nbval, out)
        pool.shutdown(wait=False)
    future = _nbval_runs.get(notebook.name)
    return future.result() if future is not None else _nbval(executed_notebook(notebook))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=IDS)
def test_pinned_outputs_reproduce(notebook) -> None:
    """nbval (lax mode) re-executes the smoke copy and compares the `# NBVAL_CHECK_OUTPUT` cells."""
    out = executed_notebook(notebook)
    proc = _first_nbval(notebook)
    for _ in range(ATTEMPTS - 1):  # a second run only after a cell timed out (see conftest.CELL_TIMEOUT), or after
        # the kernel failed to start: kernels started at once can draw the same free port (ZMQError: Address already
        # in use; seen once in ~1,000 runs with four executions at a time), which says nothing about the chapter
        if proc.returncode == 0 or not any(s in proc.stdout + proc.stderr for s in ("Timeout", "Address already in use", "Kernel died")):
            break
        print(f"\n[test_notebooks] nbval: {notebook.name} timed out or its kernel did not start; running it once more",
              file=sys.__stderr__, flush=True)
        proc = _nbval(out)
    assert proc.returncode == 0, f"nbval found drifting outputs in {notebook.name}:\n{proc.stdout[-5000:]}"
