"""Command line: ``python -m elasticity_lab <command>`` for headless runs and precomputing results.

Each command's work lives in its library module; this file only parses arguments, so that
``--help`` is fast and an invalid value fails before anything is imported or trained.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

MAX_SEEDS = 100


def _finite(obj: Any) -> Any:
    """``obj`` with every non-finite float as ``None``: JSON has no NaN or Infinity (``json.dumps`` would write them)."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _json_text(obj: Any) -> str:
    """Valid JSON only: numpy numbers become floats, NaN and infinities ``null`` (never ``NaN``/``Infinity``)."""
    plain = json.loads(json.dumps(obj, default=float))  # numpy scalars and the like as floats first
    return json.dumps(_finite(plain), indent=2, sort_keys=True, allow_nan=False)


def _print_json(obj: Any) -> None:
    sys.stdout.write(_json_text(obj) + "\n")


def _cmd_theory(args: argparse.Namespace) -> int:
    from elasticity_lab.core.config import check_seed
    from elasticity_lab.info import theory

    check_seed("--seed", args.seed)
    summary = theory.theorem_summary(k=args.k, l=args.l, depth=args.depth, seed=args.seed, perturbation=args.perturbation)
    if args.json:
        _print_json(summary)
    else:
        for key, value in summary.items():
            print(f"{key:>28}: {value}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    import importlib
    from pathlib import Path

    from elasticity_lab.core import ranks
    from elasticity_lab.core.cache import atomic_write_text
    from elasticity_lab.core.config import SCALE_ENV_VAR, SCALES, check_choice, check_int, check_output_path, resolve_scale

    # an explicit --scale wins; $ELASTICITY_SCALE is the default (for notebooks and book builds)
    scale = resolve_scale(args.scale) if args.scale is None else args.scale
    if args.seeds is not None:
        check_int("--seeds", args.seeds, 1, MAX_SEEDS)
    if args.json:  # checked before the run, not after it
        check_output_path("--json", args.json)
    module = importlib.import_module(f"elasticity_lab.experiments.{args.experiment}")
    check_choice("--scale", scale, getattr(module, "CLI_SCALES", SCALES))  # `paper` only where the experiment has it
    ranks.setup()  # under `accelerate launch`: join the ranks before any model is placed on a card
    before = os.environ.get(SCALE_ENV_VAR)
    os.environ[SCALE_ENV_VAR] = scale  # so that a resolve_scale inside the run sees the flag too
    try:
        result = module.cli_result(scale=scale, n_seeds=args.seeds)
    finally:
        if before is None:
            os.environ.pop(SCALE_ENV_VAR, None)
        else:
            os.environ[SCALE_ENV_VAR] = before
    if not ranks.is_main():  # every rank computed the same result; one writes it
        ranks.shutdown()
        return 0
    text = _json_text(result)
    if args.json:
        atomic_write_text(Path(args.json), text + "\n")
        print(f"wrote {args.json}")
    else:
        print(text)
    ranks.shutdown()
    return 0


def _cmd_cache(args: argparse.Namespace) -> int:
    from elasticity_lab.core import cache

    if args.action == "info":
        if args.kinds:
            raise ValueError(f"kinds={args.kinds!r} is not allowed with `cache info`; it describes every kind (kinds go with `cache clear`).")
        info = cache.cache_info()
        where = "$" + cache.CACHE_ENV_VAR if info["from"] != "default" else f"default; set ${cache.CACHE_ENV_VAR} to move it"
        print(f"cache: {info['path']} ({where})")
        print(f"size: {cache.human_bytes(info['bytes'])} in {info['files']} files")
        print(f"entries: {info['entries']}")
        for kind, k in info["kinds"].items():
            stale = f", {k['stale']} made by other code (unused now)" if k["stale"] else ""
            print(f"  {kind}: {k['entries']} ({cache.human_bytes(k['bytes'])}{stale})")
        return 0
    present = sorted(cache.cache_info()["kinds"])
    for kind in args.kinds:  # a typo must not look like a cleared cache
        if kind not in present:
            raise ValueError(f"kinds contains {kind!r}, which is not allowed; the cache holds "
                             f"{'the kinds ' + ', '.join(present) if present else 'no entries'}.")
    result = cache.clear_cache(args.kinds or None)
    removed = ", ".join(f"{n} {kind}" for kind, n in result["removed"].items()) or "nothing"
    print(f"removed {removed} ({cache.human_bytes(result['bytes'])}) from {result['path']}")
    if result["files_left"]:
        print(f"left {result['files_left']} files that are not cache entries")
    return 0


def _cmd_bases(args: argparse.Namespace) -> int:
    from elasticity_lab.lm import remake

    return remake.main(args.bases_args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m elasticity_lab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("theory", help="check Theorem 4.2 on the exact model for one (k, l, depth)")
    p.add_argument("--k", type=float, default=1000.0, help="|D_p| / |D_a| (> 0)")
    p.add_argument("--l", type=float, default=1e-3, help="|D_t| / |D_a| (>= 0)")
    p.add_argument("--depth", type=int, default=8, help="depth d of the pruned token tree (>= 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random leaf distributions")
    p.add_argument("--perturbation", choices=("random", "like_pretraining"), default="random",
                   help="the perturbation data: an independent random distribution, or the pre-training one")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_theory)

    from elasticity_lab.core.config import SCALES
    from elasticity_lab.experiments import EXPERIMENTS

    p = sub.add_parser("run", help="run one of the paper's experiments headless (results are cached)")
    p.add_argument("experiment", choices=EXPERIMENTS, help="which experiment")
    p.add_argument("--scale", choices=(*SCALES, "paper"), default=None,
                   help="smoke | reader | full (| paper: the paper's own grid, realmodels only); given here it wins over "
                        "$ELASTICITY_SCALE, which is only the default (for notebooks and book builds); without either: reader")
    p.add_argument("--seeds", type=int, default=None, help=f"number of seeds, 1 to {MAX_SEEDS} (default: the scale's)")
    p.add_argument("--json", metavar="OUT", default=None,
                   help="write the table and summary to this JSON file; its folder must exist (checked before the run)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("cache", help="where the cache of results is, its size and entries (info), or empty it (clear)")
    p.add_argument("action", choices=("info", "clear"), help="info: print where, size and entries per kind; clear: remove every entry")
    p.add_argument("kinds", nargs="*", help="with clear: only these kinds (e.g. pretrain, rebound, resistance)")
    p.set_defaults(func=_cmd_cache)

    p = sub.add_parser("bases", help="list or remake the shipped pre-trained bases (see `bases --help`)", add_help=False)
    p.add_argument("bases_args", nargs=argparse.REMAINDER, help="arguments of `python -m elasticity_lab.lm.bases`")
    p.set_defaults(func=_cmd_bases)

    from elasticity_lab.teaching import add_parser as add_teach_parser

    add_teach_parser(sub)  # teach student | solutions | grade
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bases"]:  # its own parser, options included (argparse.REMAINDER drops leading ones)
        from elasticity_lab.lm import remake

        return remake.main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as err:
        parser.exit(2, f"error: {err}\n")
