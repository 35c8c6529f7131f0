"""Checks for chapter 9, "What makes alignment stick?"."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from elasticity_lab.exercises import ExerciseResult, run_check


def check_area_under_curve(fn: Callable[[Sequence[float], Sequence[float]], float]) -> ExerciseResult:
    """Exercise 9.1: the area under a rebound curve divided by the perturbation's length (the mean level over it)."""

    def cases(f: Callable[[Sequence[float], Sequence[float]], float]) -> None:
        n, y = [0, 16, 32, 64, 128], [0.8, 0.6, 0.4, 0.2, 0.2]
        want = ((0.8 + 0.6) / 2 * 16 + (0.6 + 0.4) / 2 * 16 + (0.4 + 0.2) / 2 * 32 + 0.2 * 64) / 128
        got = float(f(n, y))
        if math.isclose(got, sum(y) / len(y)):
            raise AssertionError("the grid is not evenly spaced: weight each level by the stretch of n it covers (trapezoids), "
                                 "not a plain mean of the points")
        if math.isclose(got, want * 128):
            raise AssertionError("divide the area by the length of the perturbation (max n − min n), so the answer is a level in [0, 1]")
        assert math.isclose(got, want, rel_tol=1e-9), f"for n = {n}, y = {y} expected {want:.4f}, got {got:.4f}"
        assert math.isclose(float(f([0, 10, 20], [0.5, 0.5, 0.5])), 0.5), "a flat curve's area per unit n is its level"

    return run_check("Exercise 9.1 (area under the rebound curve)", fn, cases)


def check_protection_verdict(fn: Callable[[float, float, float], str]) -> ExerciseResult:
    """Exercise 9.2: the verdict from a paired interval [low, high] of Δ protection and a margin."""

    def cases(f: Callable[[float, float, float], str]) -> None:
        stick, no, und = "makes alignment stick", "does not make alignment stick", "undecided"
        assert f(0.05, 0.20, 0.02) == stick, "an interval wholly above 0 shows protection"
        if f(-0.05, 0.20, 0.02) == stick:
            raise AssertionError("an interval that includes 0 cannot show protection: the estimate alone is not enough")
        assert f(-0.05, 0.20, 0.02) == und, "an interval from −0.05 to +0.20 is undecided"
        assert f(-0.30, -0.10, 0.02) == no, "an interval wholly below 0: the mitigation does not make alignment stick (it hurts)"
        if f(-0.01, 0.015, 0.02) == und:
            raise AssertionError("an interval inside ±margin rules out any effect big enough to matter: that is a 'does not'")
        assert f(-0.01, 0.015, 0.02) == no, "an interval inside ±margin: does not make alignment stick"
        assert f(-0.01, 0.015, 0.0) == und, "with no margin, an interval around 0 is undecided"

    return run_check("Exercise 9.2 (the protection verdict)", fn, cases)


def check_alignment_needed(fn: Callable[[float, float, float, float], float]) -> ExerciseResult:
    """Exercise 9.3: the N_a that the theorem's mixture needs to keep a refusal share after a perturbation."""

    def cases(f: Callable[[float, float, float, float], float]) -> None:
        n_p, n, r, target = 10_000.0, 128.0, 0.2, 0.6
        want = (target * (n_p + n) - n_p * r) / (1 - target)
        got = float(f(n_p, n, r, target))
        if math.isclose(got, (target * n_p - n_p * r) / (1 - target), rel_tol=1e-9):
            raise AssertionError("the perturbation's n compliant examples join the mixture too: (k·r + 1)/(k + 1 + l)")
        assert math.isclose(got, want, rel_tol=1e-6), f"expected N_a = {want:.1f}, got {got:.1f}"
        assert float(f(n_p, 0.0, r, 0.1)) == 0.0, "a target below the base rate needs no alignment data at all: 0"

    return run_check("Exercise 9.3 (alignment data the theorem asks for)", fn, cases)
