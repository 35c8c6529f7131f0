"""Checks for chapter 3, "The elasticity theorem, computed"."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from elasticity_lab.exercises import ExerciseResult, run_check


def _mixture_xent(p_i: np.ndarray, p: np.ndarray, a: np.ndarray, t: np.ndarray, k: float, l: float) -> float:
    q = (k * p + a + l * t) / (k + 1 + l)
    return float(-(p_i * np.log2(q)).sum())


def check_rate_slope(fn: Callable[..., float]) -> ExerciseResult:
    """Exercise 3.1: d/dl of H(P_i, q(l)) in bits, q = (k P_p + P_a + l P_t)/(k+1+l)."""

    def cases(f: Callable[..., float]) -> None:
        rng = np.random.default_rng(3)
        for k, l in ((10.0, 0.0), (100.0, 0.01), (5.0, 2.0)):
            p, a, t = rng.dirichlet(np.ones(8) * 2, size=3)
            for name, p_i in (("P_a", a), ("P_p", p)):
                h = 1e-6
                want = (_mixture_xent(p_i, p, a, t, k, l + h) - _mixture_xent(p_i, p, a, t, k, max(l - h, 0.0))) / (
                    h + min(h, l))
                got = float(f(p_i, p, a, t, k, l))
                assert math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-9), (
                    f"slope of H({name}, q) at k={k}, l={l}: expected {want:.6g} bits, got {got:.6g}"
                    + (" (natural log? divide by ln 2)" if math.isclose(got, want * math.log(2), rel_tol=1e-3) else "")
                )

    return run_check("Exercise 3.1 (slope of a compression rate)", fn, cases)


def check_ratio_from_balance(fn: Callable[[float, float, float, float], float]) -> ExerciseResult:
    """Exercise 3.2: the slope ratio from the force balance k·dγ_p + dγ_a + l·dγ_t = 0."""

    def cases(f: Callable[[float, float, float, float], float]) -> None:
        for k, l, gp, gt in ((1000.0, 0.0, 2e-7, -8e-4), (1000.0, 0.01, 2e-7, -8e-4), (50.0, 1.0, -1e-5, -3e-3)):
            want = k + l * gt / gp
            got = float(f(k, l, gp, gt))
            assert math.isclose(got, want, rel_tol=1e-9), (
                f"k={k}, l={l}, dγ_p={gp}, dγ_t={gt}: expected {want:.6g}, got {got:.6g}"
                + (" (that is the ratio at l = 0 only: at l > 0 the perturbation's own term l·dγ_t/dl stays in the balance)"
                   if math.isclose(got, k, rel_tol=1e-9) else "")
            )

    return run_check("Exercise 3.2 (slope ratio from the force balance)", fn, cases)
