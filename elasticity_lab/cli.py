"""Command line: ``python -m elasticity_lab <command>`` for headless runs and precomputing results.

Each command's work lives in its library module; this file only parses arguments, so that
``--help`` is fast and an invalid value fails before anything is imported or trained.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any


def _print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, sort_keys=True, default=float)
    sys.stdout.write("\n")


def _cmd_theory(args: argparse.Namespace) -> int:
    from elasticity_lab import theory

    summary = theory.theorem_summary(k=args.k, l=args.l, depth=args.depth, seed=args.seed)
    if args.json:
        _print_json(summary)
    else:
        for key, value in summary.items():
            print(f"{key:>28}: {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m elasticity_lab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("theory", help="check Theorem 4.2 on the exact model for one (k, l, depth)")
    p.add_argument("--k", type=float, default=1000.0, help="|D_p| / |D_a| (> 0)")
    p.add_argument("--l", type=float, default=1e-3, help="|D_t| / |D_a| (>= 0)")
    p.add_argument("--depth", type=int, default=8, help="depth d of the pruned token tree (>= 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random leaf distributions")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_theory)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as err:
        parser.exit(2, f"error: {err}\n")
