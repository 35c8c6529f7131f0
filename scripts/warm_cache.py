"""Compute the chapters' results on every CPU core before `make book` builds the book.

Jupyter Book executes the chapters one after another in one process, and the library trains its
tiny models on one thread, so on a 2-core machine half of the machine waits. This script executes
the chapters that the book's execution cache (jupyter-cache, ``_build/.jupyter_cache``) does not
hold yet with papermill, several at once (one per core, longest first), into a temporary folder.
Their results land in the library's results cache (``ELASTICITY_CACHE``); the book build then
executes each chapter again for its outputs, and every experiment cell reads its result from that
cache in seconds. Nothing here changes a result: a cached result is keyed on its config and on the
library's source, whoever computed it.

    python scripts/warm_cache.py            # what `make book` runs
    python scripts/warm_cache.py --jobs 1   # one at a time

A chapter that fails here is reported in one line and left to the book build, which reports it
with its traceback. Each chapter computed here has its wall-clock and CPU seconds, the scale, the
commit and whether the results cache was empty at the start recorded in
``_build/runtimes-<scale>.json``; ``scripts/record_runtimes.py`` ships them to the chapters'
run-time tables.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import record_runtimes

ROOT = Path(__file__).resolve().parent.parent

# Rough reader-scale cost of each chapter relative to the others (minutes on one core), only to
# start the longest first; a chapter missing here counts as 1.
COST = {"07": 5, "09": 4, "08": 4, "06": 3, "10": 1.5, "05": 0.5}


def _uncached(notebooks: list[Path]) -> list[Path]:
    """The chapters whose current code the book's execution cache does not hold."""
    try:
        import nbformat
        from jupyter_cache import get_cache
    except ImportError:
        return notebooks
    cache_dir = ROOT / "_build" / ".jupyter_cache"
    if not cache_dir.exists():
        return notebooks
    cache = get_cache(cache_dir)
    missing = []
    for nb in notebooks:
        try:
            cache.match_cache_notebook(nbformat.read(nb, as_version=4))
        except KeyError:
            missing.append(nb)
    return missing


def _execute(notebook: str, out_dir: str) -> tuple[str, float, float, str | None]:
    import papermill

    from elasticity_lab.core import headless

    headless.install()
    with record_runtimes.measure() as took:  # the kernel's CPU counts: it is a child of this worker, reaped at shutdown
        try:
            papermill.execute_notebook(notebook, str(Path(out_dir) / Path(notebook).name), cwd=str(Path(notebook).parent),
                                       kernel_name="python3", progress_bar=False, log_output=False, execution_timeout=1260)
            error = None
        except Exception as exc:  # reported in one line; the book build gives the traceback
            error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
    return notebook, took["wall_s"], took["cpu_s"], error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="chapters executed at once (default: the CPU count)")
    parser.add_argument("chapters", nargs="*", help="chapter numbers to consider, e.g. 06 07 (default: all)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs={args.jobs} is not allowed; give 1 or more.")
    notebooks = [nb for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) if not args.chapters or nb.name[:2] in args.chapters]
    todo = sorted(_uncached(notebooks), key=lambda nb: -COST.get(nb.name[:2], 1))
    if not todo or args.jobs == 1:
        print(f"warm_cache: {'nothing to compute' if not todo else 'one job: the book build computes as it goes'}")
        return 0
    os.environ.setdefault("TQDM_DISABLE", "1")
    from elasticity_lab.core.cache import cache_dir
    from elasticity_lab.core.config import resolve_scale

    scale = resolve_scale("reader")  # the chapters' parameters cells say reader; $ELASTICITY_SCALE overrides both
    empty = record_runtimes.cache_is_empty(cache_dir())
    print(f"warm_cache: computing {len(todo)} chapter(s) on {args.jobs} cores: {', '.join(nb.name[:2] for nb in todo)}", flush=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="elasticity-warm-") as out, ProcessPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(_execute, str(nb), out) for nb in todo]
        for future in as_completed(futures):
            notebook, seconds, cpu, error = future.result()
            status = f"failed ({error}); the book build will report it" if error else "done"
            print(f"warm_cache: {Path(notebook).name} {status} in {seconds:.0f} s ({cpu:.0f} s of CPU)", flush=True)
            if not error:
                record_runtimes.append_record(record_runtimes.make_record(
                    Path(notebook).name[:2], scale, seconds, cpu, jobs=min(args.jobs, len(todo)), empty_cache=empty))
    print(f"warm_cache: {time.perf_counter() - start:.0f} s in all", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
