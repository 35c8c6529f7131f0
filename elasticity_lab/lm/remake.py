"""Remaking the bases the book ships: pre-train one again from scratch and compare it with the shipped one.

A remade base is the same *to a tolerance*, not bit for bit: floating-point sums in training depend on
the CPU (vector width, the kernels torch picks) and the thread count, so weights remade on another
machine differ in the last bits and the differences grow over training steps. ``--check`` compares the
held-out bits per token and the final loss (and, for short runs, the loss at every step and the
weights) within :data:`REMAKE_TOLERANCES`, and says whether the checksums happen to match too, as they
do on the machine that made them::

    python -m elasticity_lab bases remake                       # all bases, into the package's assets folder
    python -m elasticity_lab bases remake micro-smoke --check   # remake one and compare with the shipped one
    python -m elasticity_lab bases list                         # the manifest
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from elasticity_lab import __version__
from elasticity_lab.core.cache import CACHE_ENV_VAR, atomic_write_text, config_hash, load_table, load_tensors
from elasticity_lab.lm.bases import BOOK_BASES, base_spec
from elasticity_lab.lm.pretraining import pretrain, run_key
from elasticity_lab.lm.shipped import ASSETS_DIR, MANIFEST, read_manifest, shipped_dir, weight_checksums


REMAKE_TOLERANCES: dict[str, float] = {"heldout_bits_per_token": 0.05, "final_loss": 0.02, "loss": 1e-3, "weights": 5e-3}
"""How far a base remade on another machine may be from the shipped one (largest absolute differences):
the held-out bits per token at any checkpoint, the mean training loss over the last tenth of the steps
(nats) and, for runs of at most :data:`STEPWISE_STEPS` steps only, the training loss at any step and
any weight of any checkpoint. Measured (README, "What is reproducible") on another CPU than the one that
made the shipped weights: ``micro-smoke`` (64 steps) differed by 1.4e-5 held-out bits, 1.2e-5 nats of
loss at any step and 3.6e-5 in any weight; ``micro`` (1536 steps) by 0.020 held-out bits (0.005 at
the last checkpoint) and 0.0035 nats of final loss, while its weights had drifted apart completely
after ~200 steps (differences in the last bits grow with every step), so weights and per-step losses
say nothing for long runs."""

STEPWISE_STEPS = 100
"""Runs up to this many steps are also compared step by step and weight by weight (``micro-smoke``: 64)."""


def checked_tolerances(steps: int) -> dict[str, float]:
    """The tolerances that apply to a run of ``steps`` steps."""
    keys = ("heldout_bits_per_token", "final_loss") + (("loss", "weights") if steps <= STEPWISE_STEPS else ())
    return {k: REMAKE_TOLERANCES[k] for k in keys}


def compare_runs(a: Path, b: Path) -> dict[str, Any]:
    """Largest absolute differences between two runs: held-out bits per token, final loss, per-step loss, weights."""
    inf = float("inf")
    ca, cb = load_table(a / "curve.json", verify=False), load_table(b / "curve.json", verify=False)
    if len(ca) != len(cb):
        return {"steps": max(len(ca), len(cb)), "heldout_bits_per_token": inf, "final_loss": inf, "loss": inf, "weights": inf}
    tail = max(1, len(ca) // 10)
    result = {"steps": len(ca),
              "heldout_bits_per_token": float((ca["heldout_bits_per_token"] - cb["heldout_bits_per_token"]).abs().max()),
              "final_loss": abs(float(ca["loss"].iloc[-tail:].mean() - cb["loss"].iloc[-tail:].mean())),
              "loss": float((ca["loss"] - cb["loss"]).abs().max()), "weights": 0.0}
    for f in sorted(p.relative_to(a) for p in a.rglob("model.safetensors")):
        ta, tb = load_tensors(a / f, verify=False), load_tensors(b / f, verify=False)
        if set(ta) != set(tb):
            result["weights"] = inf
            break
        result["weights"] = max(result["weights"], max(float((ta[k].double() - tb[k].double()).abs().max()) for k in ta))
    return result


def remake(name: str, *, check: bool = False, progress: bool = True, threads: int | None = None) -> dict[str, Any]:
    """Pre-train a book base from scratch in a temporary cache (never reading shipped weights).

    ``check=False``: copy the run into the assets folder and record it in the manifest.
    ``check=True``: only compare it with the shipped base; returns the largest differences
    (:func:`compare_runs`), ``within`` (those that apply within :data:`REMAKE_TOLERANCES`) and
    ``bitwise`` (the checksums equal the manifest's: expected only on the machine that made them).
    ``threads`` runs the training on that many CPU threads instead of the config's (with
    ``check=True`` only: the numbers then differ like another machine's).
    """
    import torch

    world, preset, config = base_spec(name)
    key = run_key(world, preset, config)
    run_config = config
    if threads is not None:
        if not check:
            raise ValueError(f"threads={threads!r} is only allowed with check=True; shipped bases are made with the config's threads={config.threads}.")
        run_config = dataclasses.replace(config, threads=threads)
    old = os.environ.get(CACHE_ENV_VAR)
    with tempfile.TemporaryDirectory(prefix="elasticity_remake_") as tmp:
        os.environ[CACHE_ENV_VAR] = tmp
        try:
            run = pretrain(world, preset, run_config, progress=progress, use_shipped=False)
        finally:
            if old is None:
                os.environ.pop(CACHE_ENV_VAR, None)
            else:
                os.environ[CACHE_ENV_VAR] = old
        sums = weight_checksums(run.path)
        entry = {"hash": config_hash(key), "preset": preset, "scale": BOOK_BASES[name]["scale"], "key": key,
                 "library_version": __version__, "torch_version": torch.__version__, "threads": config.threads, "seconds": round(run.seconds, 1),
                 "files": sums}
        if check:
            expected = read_manifest().get(name, {}).get("files", {})
            shipped = shipped_dir(key)
            if shipped is None:
                raise ValueError(f"name={name!r} has no shipped weights to compare with; run `python -m elasticity_lab bases remake {name}` first.")
            diff = compare_runs(shipped, run.path)
            tolerances = checked_tolerances(diff["steps"])
            within = all(diff[k] <= tol for k, tol in tolerances.items())
            return {"name": name, "bitwise": sums == expected, "within": within, "differences": diff,
                    "tolerances": tolerances, "files": sums, "expected": expected, "threads": run_config.threads}
        dest = ASSETS_DIR / entry["hash"]
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(run.path, dest, ignore=shutil.ignore_patterns("resume*", ".*.tmp", "*.sha256", ".lock"))
    manifest = read_manifest()
    manifest[name] = entry
    atomic_write_text(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
    return entry


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m elasticity_lab bases", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("remake", help="pre-train the shipped bases again (all, or the ones named)")
    p.add_argument("names", nargs="*", help=f"bases to remake (default all): {', '.join(BOOK_BASES)}")
    p.add_argument("--check", action="store_true", help="compare with the shipped base (within tolerances) instead of overwriting")
    p.add_argument("--threads", type=int, default=None, help="with --check: train on this many CPU threads instead of the config's")
    sub.add_parser("list", help="print the manifest")
    args = parser.parse_args(argv)
    if args.command == "list":
        print(json.dumps({k: {x: v[x] for x in ("hash", "preset", "scale", "seconds")} for k, v in read_manifest().items()}, indent=2))
        return 0
    names = args.names or list(BOOK_BASES)
    for name in names:
        if name not in BOOK_BASES:
            parser.exit(2, f"error: name={name!r} is not allowed; choose one of {', '.join(map(repr, BOOK_BASES))}.\n")
    if args.threads is not None and (not args.check or args.threads < 1):
        parser.exit(2, f"error: --threads={args.threads!r} is not allowed; it must be >= 1 and goes with --check.\n")
    ok = True
    for name in names:
        result = remake(name, check=args.check, threads=args.threads)
        if args.check:
            ok &= result["within"]
            d, t = result["differences"], result["tolerances"]
            print(f"{name}: {'within' if result['within'] else 'OUTSIDE'} the tolerances of the shipped base "
                  f"({', '.join(f'{k} {d[k]:.2g} ≤ {t[k]:g}' for k in t)}); "
                  f"checksums {'equal (bit for bit)' if result['bitwise'] else 'differ (expected on another machine)'}")
        else:
            print(f"{name}: remade in {result['seconds']} s → {result['hash']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
