"""How fast is the array token tree? Prints the build time of 10^6 sequences x 32 binary tokens and the
speed-up over a naive dict-of-dicts trie measured in the same run, on the same sequences.

The naive trie is timed on the first ``--naive-n`` sequences (default 200 000: a few seconds) and the
array tree on the same subset, so the ratio compares like with like; pass ``--naive-n 1000000`` to time
the naive trie on everything (about a minute). No assertions: this script reports, the reader judges.

    .venv/bin/python benchmarks/tokentree_speed.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from elasticity_lab.info.tokentree import build_token_tree


def naive_trie(rows: np.ndarray) -> dict:
    """A dict-of-dicts trie with a count per node: the obvious pure-Python way."""
    root: dict = {"n": 0, "c": {}}
    for row in rows.tolist():
        node = root
        node["n"] += 1
        for tok in row:
            children = node["c"]
            child = children.get(tok)
            if child is None:
                child = children[tok] = {"n": 0, "c": {}}
            child["n"] += 1
            node = child
    return root


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--length", type=int, default=32)
    ap.add_argument("--vocab", type=int, default=2)
    ap.add_argument("--naive-n", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    rows = rng.integers(0, args.vocab, size=(args.n, args.length)).astype(np.int32)
    t_full = best_of(lambda: build_token_tree(rows, vocab_size=args.vocab), args.repeat)
    tree = build_token_tree(rows, vocab_size=args.vocab)
    n_nodes = sum(tree.n_nodes(level) for level in range(1, tree.max_depth + 1))
    print(f"array tree, {args.n:,} x {args.length} tokens (vocab {args.vocab}): {t_full:.2f} s "
          f"(best of {args.repeat}), {n_nodes:,} nodes")

    sub = rows[: args.naive_n]
    t_arr = best_of(lambda: build_token_tree(sub, vocab_size=args.vocab), args.repeat)
    t_naive = best_of(lambda: naive_trie(sub), 1)
    print(f"same {len(sub):,} sequences: array {t_arr:.3f} s, naive dict trie {t_naive:.2f} s, "
          f"speed-up {t_naive / t_arr:.1f}x")
    est_naive_full = t_naive * args.n / len(sub)
    print(f"naive trie extrapolated to {args.n:,} sequences: ~{est_naive_full:.0f} s "
          f"(speed-up ~{est_naive_full / t_full:.1f}x vs the measured array build)")


if __name__ == "__main__":
    main()
