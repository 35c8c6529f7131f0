"""Execute chapters N times headless with nbclient and report stalls (missed kernel replies).

A stall is a gap of more than ``--gap`` seconds between a code cell's ``shell.execute_reply``
(stamped by the kernel when it replied) and the next code cell's ``iopub.execute_input`` (stamped
by the kernel when it started that cell): the client had the reply but did not notice it, and
waited up to the cell timeout. The last cell has no next cell: for it the harness compares the
reply's stamp with the moment the client handled it. Both clocks are this machine's.

    python scripts/exec_stalls.py notebooks/04_springs.ipynb --runs 30 --timeout 20
    python scripts/exec_stalls.py notebooks/0[13]_*.ipynb --runs 100 --without-fix   # the stall, for comparison

One line per run (``run K chapter: S s; ...``), then ``summary chapter: runs R, stalls X (runs with a stall Y)``.
The scale is ``--scale`` (default smoke); results are cached in ``ELASTICITY_CACHE`` as usual, so
only the first run computes. Exit status 1 if any run stalled or failed.
See ``elasticity_lab/core/headless.py`` for the cause and the fix this measures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _stamp(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _label(index: int, cell) -> str:
    first = next((line for line in cell.source.splitlines() if line.strip() and not line.startswith("#")), "")
    return f"code cell {index} ({first.strip()[:48]!r})"


def stalls_in(nb, seen: dict[int, dt.datetime], gap: float) -> list[str]:
    """The stalls of one executed notebook: gaps between a reply and the next cell's start."""
    found = []
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.metadata.get("execution")]
    for k, (index, cell) in enumerate(code):
        reply = _stamp(cell.metadata["execution"].get("shell.execute_reply"))
        if reply is None:
            continue
        if k + 1 < len(code):
            start = _stamp(code[k + 1][1].metadata["execution"].get("iopub.execute_input"))
            if start is not None and (start - reply).total_seconds() > gap:
                found.append(f"{(start - reply).total_seconds():.1f} s after {_label(k, cell)}")
        elif index in seen and (seen[index] - reply).total_seconds() > gap:
            found.append(f"{(seen[index] - reply).total_seconds():.1f} s after {_label(k, cell)} (last cell)")
    return found


def slowest_cells(nb, count: int) -> list[str]:
    """The ``count`` longest code cells, execute_input to execute_reply (to size the book's timeout)."""
    times = []
    code = [c for c in nb.cells if c.cell_type == "code"]
    for k, cell in enumerate(code):
        ex = cell.metadata.get("execution") or {}
        start, reply = _stamp(ex.get("iopub.execute_input")), _stamp(ex.get("shell.execute_reply"))
        if start and reply:
            times.append(((reply - start).total_seconds(), _label(k, cell)))
    return [f"{seconds:.1f} s {label}" for seconds, label in sorted(times, reverse=True)[:count]]


def run_once(path: Path, timeout: int, gap: float, slowest: int = 0) -> tuple[float, list[str], str | None]:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    seen: dict[int, dt.datetime] = {}

    def on_cell_executed(cell, cell_index, execute_reply):
        seen[cell_index] = dt.datetime.now(dt.timezone.utc)

    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", record_timing=True,
        on_cell_executed=on_cell_executed, resources={"metadata": {"path": str(path.parent)}},
    )
    began = time.perf_counter()
    error = None
    try:
        client.execute()
    except Exception as err:  # noqa: BLE001 - reported per run; a timeout names its cell
        error = f"{type(err).__name__}: {str(err).strip().splitlines()[-1] if str(err).strip() else ''}"
    seconds = time.perf_counter() - began
    if slowest:
        print(f"  slowest cells of {path.stem}: " + "; ".join(slowest_cells(nb, slowest)), flush=True)
    return seconds, stalls_in(nb, seen, gap), error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path, help="chapters to execute, e.g. notebooks/04_springs.ipynb")
    parser.add_argument("--runs", type=int, default=10, help="executions per chapter (default 10)")
    parser.add_argument("--timeout", type=int, default=20, help="cell timeout in seconds (default 20)")
    parser.add_argument("--gap", type=float, default=3.0, help="seconds between a reply and the next cell that count as a stall (default 3)")
    parser.add_argument("--scale", default="smoke", help="ELASTICITY_SCALE for the chapters (default smoke)")
    parser.add_argument("--slowest", type=int, default=0, metavar="K", help="also print the K slowest cells of each run")
    parser.add_argument("--without-fix", action="store_true", help="execute without elasticity_lab.core.headless.install(), to show the stall")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")
    if args.slowest < 0:
        parser.error(f"--slowest must be 0 or more, got {args.slowest}")
    if args.timeout < 1:
        parser.error(f"--timeout must be at least 1 second, got {args.timeout}")
    for path in args.notebooks:
        if not path.is_file():
            parser.error(f"notebook {str(path)!r} does not exist")

    os.environ["ELASTICITY_SCALE"] = args.scale
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.path.insert(0, str(ROOT))
    from elasticity_lab.core import headless

    if args.without_fix:
        headless.uninstall()
    else:
        headless.install()
    print(f"# scale {args.scale}, cell timeout {args.timeout} s, gap > {args.gap} s, "
          f"fix {'off' if args.without_fix else 'on'}", flush=True)

    bad = False
    for path in args.notebooks:
        stalled_runs = stalls = failures = 0
        for run in range(1, args.runs + 1):
            try:
                seconds, found, error = run_once(path, args.timeout, args.gap, args.slowest)
            except Exception:  # noqa: BLE001 - the kernel did not start, etc.
                seconds, found, error = 0.0, [], traceback.format_exc().strip().splitlines()[-1]
            stalls += len(found)
            stalled_runs += bool(found)
            failures += error is not None
            detail = "; ".join(found) or "no stall"
            if error:
                detail += f"; FAILED {error}"
            print(f"run {run} {path.stem}: {seconds:.1f} s; {detail}", flush=True)
        bad |= bool(stalls or failures)
        print(f"summary {path.stem}: runs {args.runs}, stalls {stalls} (runs with a stall {stalled_runs}), "
              f"failed runs {failures}", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
