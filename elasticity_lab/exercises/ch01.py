"""Checks for chapter 1, "Language modelling is compression"."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from elasticity_lab.info.compression import AdaptiveNGram, MarkovSource, cross_entropy_bits, model_code_length_bits
from elasticity_lab.exercises import ExerciseResult, run_check


def _close(got: object, want: float, what: str) -> None:
    assert isinstance(got, (int, float, np.floating)), f"{what}: expected a number, got {got!r}"
    assert math.isclose(float(got), want, rel_tol=1e-6, abs_tol=1e-9), f"{what}: expected {want:.6f}, got {float(got):.6f}"


def check_code_lengths(fn: Callable[[np.ndarray], np.ndarray]) -> ExerciseResult:
    """Exercise 1.1: ideal code lengths -log2 p in bits."""

    def cases(f: Callable[[np.ndarray], np.ndarray]) -> None:
        for p in ([0.5, 0.25, 0.25], [1.0], [0.9, 0.05, 0.04, 0.01]):
            got = np.asarray(f(np.array(p)), dtype=float)
            want = -np.log2(p)
            assert got.shape == want.shape, f"for p={p} expected {want.size} code lengths, got shape {got.shape}"
            assert np.allclose(got, want), (
                f"for p={p} expected {np.round(want, 4).tolist()}, got {np.round(got, 4).tolist()}"
                + (" (natural log? use log base 2 for bits)" if np.allclose(got, -np.log(p)) else "")
                + (" (rounded up to whole bits? the ideal length is not rounded)"
                   if np.allclose(got, np.ceil(-np.log2(p) - 1e-12)) else "")
            )

    return run_check("Exercise 1.1 (code lengths)", fn, cases)


def check_cross_entropy(fn: Callable[[np.ndarray, np.ndarray], float]) -> ExerciseResult:
    """Exercise 1.2: cross-entropy H(p, q) in bits, infinite where q misses p's support."""

    def cases(f: Callable[[np.ndarray, np.ndarray], float]) -> None:
        rng = np.random.default_rng(1)
        for _ in range(3):
            p, q = rng.dirichlet(np.ones(5)), rng.dirichlet(np.ones(5))
            got, want = f(p, q), cross_entropy_bits(p, q)
            nats = isinstance(got, (int, float, np.floating)) and math.isclose(float(got), want * math.log(2), rel_tol=1e-6)
            _close(got, want, f"H(p, q) for p={np.round(p, 3).tolist()}, q={np.round(q, 3).tolist()}"
                   + (" (natural log? use log base 2 for bits)" if nats else ""))
        p = np.array([0.5, 0.5, 0.0])
        _close(f(p, np.array([0.5, 0.0, 0.5]) + 0), math.inf, "q gives 0 to a symbol that p emits: the cost must be infinite")
        _close(f(p, np.array([0.5, 0.5, 0.0])), 1.0, "p=q=[0.5, 0.5, 0] (terms with p=0 contribute nothing)")

    return run_check("Exercise 1.2 (cross-entropy)", fn, cases)


def check_bits_per_token(fn: Callable[[list[int], Callable], float]) -> ExerciseResult:
    """Exercise 1.3: a model's average code length per token on a sequence."""

    def cases(f: Callable[[list[int], Callable], float]) -> None:
        src = MarkovSource(8, 0.5, seed=3)
        toks = src.sample(200, seed=4)
        for name, model in (("the true source", src), ("an adaptive order-1 model", AdaptiveNGram(8, 1))):
            total = model_code_length_bits(toks, model)
            got = f(toks, model)
            hint = " (that is the total over the sequence: divide by its length)" if (
                isinstance(got, (int, float, np.floating)) and math.isclose(float(got), total, rel_tol=1e-6)) else ""
            _close(got, total / len(toks), f"bits per token under {name}{hint}")

    return run_check("Exercise 1.3 (bits per token)", fn, cases)
