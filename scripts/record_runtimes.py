"""Record how long each chapter takes, and ship the numbers: the only way to update ``elasticity_lab/assets/runtimes.json``.

Every chapter opens with a run-time table that ``elasticity_lab.notebook.runtime_table`` renders from that file;
nobody types a time into a chapter. The numbers come from the two commands that execute every chapter from an
empty results cache:

- ``make book``: ``scripts/warm_cache.py`` executes each uncached chapter with papermill at the ``reader`` scale
  (several at once, one per core) and writes ``_build/runtimes-reader.json``;
- ``make test``: ``tests/test_notebooks.py`` (``tests/conftest.py``) executes each chapter with papermill at the
  ``smoke`` scale, in a fresh results cache, and writes ``_build/runtimes-smoke.json``.

Each record holds the chapter's wall-clock and CPU seconds (user + system of the papermill process and its
kernel), the CPU count, the number of chapters run at once, the date, the commit, and whether the results cache
was empty when the run began. To refresh the shipped file after changing the chapters::

    rm -rf _build ~/.cache/elasticity_lab      # or point ELASTICITY_CACHE at an empty folder
    make book && make test
    python scripts/record_runtimes.py          # merges _build/runtimes-*.json into the shipped file
    python scripts/record_runtimes.py --check  # exit 1 unless every chapter has smoke and reader numbers

A record from a warm cache is refused (it would understate the time) unless ``--allow-warm-cache`` is given.
``--from-log LOG --scale reader --commit C --date D`` reads the lines ``warm_cache: NN_x.ipynb done in S s``
of a saved ``make book`` log instead (no CPU time there), for a build whose records were not kept.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "elasticity_lab" / "assets" / "runtimes.json"
SCALES = ("smoke", "reader", "full")
RUNNERS = {"reader": "make book (scripts/warm_cache.py)", "smoke": "make test (tests/test_notebooks.py)",
           "full": "scripts/warm_cache.py at the full scale"}
_LOG_LINE = re.compile(r"warm_cache: (\d\d)_[\w-]+\.ipynb done in (\d+(?:\.\d+)?) s")


def records_path(scale: str, build_dir: Path | None = None) -> Path:
    """Where a run at ``scale`` writes its per-chapter records: ``_build/runtimes-<scale>.json``."""
    return (build_dir or ROOT / "_build") / f"runtimes-{scale}.json"


def _cpu_seconds() -> float:
    """User + system seconds of this process and of its children that have ended (a papermill kernel, once shut down)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@contextmanager
def measure() -> Iterator[dict[str, float]]:
    """``with measure() as m: ...`` leaves ``m["wall_s"]`` and ``m["cpu_s"]`` of the block."""
    out: dict[str, float] = {}
    wall, cpu = time.perf_counter(), _cpu_seconds()
    try:
        yield out
    finally:
        out["wall_s"], out["cpu_s"] = time.perf_counter() - wall, _cpu_seconds() - cpu


def commit(root: Path = ROOT) -> str:
    """The short commit of ``root``, with ``+changes`` when the tree has uncommitted changes; "unknown" outside git."""
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def cache_is_empty(path: Path) -> bool:
    """True when the results cache folder holds no results yet (missing, or only hidden files and its config)."""
    if not path.exists():
        return True
    return not [p for p in path.iterdir() if not p.name.startswith(".") and p.name != "config.json"]


def make_record(chapter: str, scale: str, wall_s: float, cpu_s: float | None, *, jobs: int, empty_cache: bool,
                runner: str | None = None, root: Path = ROOT, date: str | None = None, commit_id: str | None = None,
                cpus: int | None = None, load: float | None = None) -> dict[str, Any]:
    """One chapter's measurement, as stored in ``_build/runtimes-<scale>.json`` and in the shipped file
    (``load``: the machine's 1-minute load average when the chapter ended; read now if not given)."""
    if scale not in SCALES:
        raise ValueError(f"scale={scale!r} is not allowed; use one of {', '.join(SCALES)}.")
    return {"chapter": chapter, "scale": scale, "wall_s": round(float(wall_s), 1),
            "cpu_s": None if cpu_s is None else round(float(cpu_s), 1), "cpus": cpus or os.cpu_count() or 1, "jobs": jobs,
            "date": date or datetime.now(timezone.utc).strftime("%Y-%m-%d"), "commit": commit_id or commit(root),
            "empty_cache": bool(empty_cache), "runner": runner or RUNNERS[scale],
            "load": round(os.getloadavg()[0], 1) if load is None and hasattr(os, "getloadavg") else load}


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def append_record(record: dict[str, Any], build_dir: Path | None = None) -> Path:
    """Add (or replace) one chapter's record in ``_build/runtimes-<scale>.json``."""
    path = records_path(record["scale"], build_dir)
    data = json.loads(path.read_text("utf-8")) if path.exists() else {}
    data[record["chapter"]] = record
    _write_json(path, data)
    return path


def records_from_log(log: Path, scale: str, *, commit_id: str, date: str, cpus: int, jobs: int) -> list[dict[str, Any]]:
    """Records from the ``warm_cache: NN_x.ipynb done in S s`` lines of a saved ``make book`` log (wall-clock only)."""
    found = {m.group(1): float(m.group(2)) for m in _LOG_LINE.finditer(log.read_text("utf-8", errors="replace"))}
    if not found:
        raise ValueError(f"--from-log={str(log)!r} holds no line 'warm_cache: NN_name.ipynb done in S s'.")
    records = [make_record(ch, scale, s, None, jobs=jobs, empty_cache=True, date=date, commit_id=commit_id, cpus=cpus)
               for ch, s in sorted(found.items())]
    return [{**r, "load": None} for r in records]  # the log does not say what the load was


def merge(records: list[dict[str, Any]], shipped: dict[str, Any], *, allow_warm_cache: bool = False) -> dict[str, Any]:
    """The shipped table (chapter → scale → record) with ``records`` in place of what it held for them."""
    out = {"about": ("Each chapter's run time, per scale, measured from an empty results cache. Written by "
                     "scripts/record_runtimes.py from the records of `make book` and `make test`: do not edit by hand."),
           "chapters": {ch: dict(v) for ch, v in shipped.get("chapters", {}).items()}}
    for r in records:
        if not r.get("empty_cache") and not allow_warm_cache:
            raise ValueError(f"the {r['scale']} record of chapter {r['chapter']} was measured from a warm cache, which "
                             "understates the time; rerun from an empty cache or pass --allow-warm-cache.")
        out["chapters"].setdefault(r["chapter"], {})[r["scale"]] = {k: v for k, v in r.items() if k not in ("chapter", "scale")}
    out["chapters"] = dict(sorted(out["chapters"].items()))
    return out


def missing(shipped: dict[str, Any], chapters: list[str], scales: tuple[str, ...] = ("smoke", "reader")) -> list[str]:
    """``"07/reader"`` for every chapter and scale the shipped table lacks."""
    held = shipped.get("chapters", {})
    return [f"{ch}/{s}" for ch in chapters for s in scales if not held.get(ch, {}).get(s)]


def chapters(root: Path = ROOT) -> list[str]:
    return [nb.name[:2] for nb in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="sources", nargs="*", type=Path,
                        help="record files to merge (default: _build/runtimes-<scale>.json for every scale that has one)")
    parser.add_argument("--from-log", type=Path, help="a saved `make book` log: read warm_cache's per-chapter lines instead")
    parser.add_argument("--scale", default="reader", help="with --from-log: the scale that build ran at (default reader)")
    parser.add_argument("--commit", help="with --from-log: the commit the build ran at")
    parser.add_argument("--date", help="with --from-log: the build's date, YYYY-MM-DD")
    parser.add_argument("--cpus", type=int, default=2, help="with --from-log: the build machine's CPU count (default 2)")
    parser.add_argument("--jobs", type=int, default=2, help="with --from-log: chapters warm_cache ran at once (default 2)")
    parser.add_argument("--load", type=float, help="the load average measured beside the run, for records that do not hold one")
    parser.add_argument("--allow-warm-cache", action="store_true", help="accept records not measured from an empty cache")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 unless every chapter has smoke and reader")
    parser.add_argument("--out", type=Path, default=SHIPPED, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    shipped = json.loads(args.out.read_text("utf-8")) if args.out.exists() else {}
    if args.check:
        gaps = missing(shipped, chapters())
        print("runtimes.json: " + (f"missing {', '.join(gaps)}" if gaps else "every chapter has smoke and reader times"))
        return 1 if gaps else 0
    if args.from_log:
        if args.scale not in SCALES:
            parser.error(f"--scale={args.scale!r} is not allowed; use one of {', '.join(SCALES)}.")
        if not args.commit or not re.fullmatch(r"\d{4}-\d\d-\d\d", args.date or ""):
            parser.error("--from-log needs --commit and --date YYYY-MM-DD: the log does not say which build it was.")
        records = records_from_log(args.from_log, args.scale, commit_id=args.commit, date=args.date, cpus=args.cpus, jobs=args.jobs)
    else:
        sources = args.sources if args.sources is not None else [p for s in SCALES if (p := records_path(s)).exists()]
        if not sources:
            parser.error("no _build/runtimes-<scale>.json: run `make book` and `make test` from an empty cache first.")
        records = [r for path in sources for r in json.loads(path.read_text("utf-8")).values()]
    if args.load is not None:
        records = [r if r.get("load") is not None else {**r, "load": args.load} for r in records]
    updated = merge(records, shipped, allow_warm_cache=args.allow_warm_cache)
    _write_json(args.out, updated)
    for r in records:
        cpu = f", {r['cpu_s']:.0f} s CPU" if r.get("cpu_s") is not None else ""
        print(f"{r['chapter']} {r['scale']}: {r['wall_s']:.0f} s{cpu} ({r['date']}, {r['commit']}, {r['cpus']} cores)")
    gaps = missing(updated, chapters())
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}"
          + (f"; still missing {', '.join(gaps)}" if gaps else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
