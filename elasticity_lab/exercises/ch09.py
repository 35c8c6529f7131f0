"""Checks for chapter 9, "What makes alignment stick?"."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

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


def check_area_over_start(fn: Callable[[Sequence[float], Sequence[float]], float], *, curves: pd.DataFrame | None = None,
                          metric: str = "rule") -> ExerciseResult:
    """Exercise 9.4 (a control): area ÷ start, the share of its own starting level a curve keeps on average over the
    perturbation (nan where the curve starts at or below ``MIN_START``).

    With ``curves`` (the chapter's ``result.curves``), a function that passes is applied to a control that protects
    nothing: each seed's baseline curve, copied and lifted to start higher, falling in the same proportion.
    """
    from elasticity_lab.experiments.mitigation.analysis import MIN_START, area_under_curve

    def cases(f: Callable[[Sequence[float], Sequence[float]], float]) -> None:
        n, y = [0, 16, 32, 64, 128], [0.5, 0.6, 0.4, 0.2, 0.2]
        want = area_under_curve(n, y) / 0.5
        got = float(f(n, y))
        if math.isclose(got, area_under_curve(n, y) / 0.6):
            raise AssertionError("divide by the curve's start (its level at the smallest n), not by its highest level")
        if math.isclose(got, area_under_curve(n, y) / 0.2):
            raise AssertionError("divide by the curve's start (n = 0), not by its end")
        if math.isclose(got, (sum(y) / len(y)) / 0.5):
            raise AssertionError("the grid is not evenly spaced: take the area by trapezoids (exercise 9.1), not a plain mean")
        assert math.isclose(got, want, rel_tol=1e-9), f"for n = {n}, y = {y} expected {want:.4f}, got {got:.4f}"
        shuffled = float(f([64, 0, 128, 16, 32], [0.2, 0.5, 0.2, 0.6, 0.4]))
        assert math.isclose(shuffled, want, rel_tol=1e-9), f"the rows may come in any order of n: sort them first (got {shuffled:.4f})"
        low = f([0, 10, 20], [MIN_START / 2, 0.0, 0.0])
        assert low is not None and math.isnan(float(low)), (f"a curve that starts at {MIN_START / 2:g} (at or below {MIN_START:g}) has "
                                                            f"no level to keep: return nan, got {low}")
        assert math.isclose(float(f([0, 10], [0.4, 0.4])), 1.0), "a flat curve keeps all of its start: 1"

    result = run_check("Exercise 9.4 (area ÷ start, and a control that protects nothing)", fn, cases)
    if result.passed and curves is not None and len(curves):
        base = curves[curves["mitigation"] == "none"]
        d_area, d_kept = [], []
        for _, g in base.groupby("seed", sort=True):
            g = g.sort_values("n")
            y = g[metric].to_numpy(dtype=float)
            if y.max() <= 0:
                continue
            factor = min(1.5, 0.95 / y.max())  # a higher start, the same fall in proportion, within [0, 1]
            if factor <= 1.0:  # a curve already near 1 cannot be lifted
                continue
            d_area.append(area_under_curve(g["n"], y * factor) - area_under_curve(g["n"], y))
            d_kept.append(float(fn(g["n"], y * factor)) - float(fn(g["n"], y)))
        if d_area:
            kept = [k for k in d_kept if math.isfinite(k)]
            kept_text = f"{round(float(np.mean(kept)), 3) + 0.0:+.3f}" if kept else "not measurable (the starts are too low)"
            print(f"\nA control that protects nothing: the baseline's own curve, lifted to start higher and falling in the same "
                  f"proportion ({len(d_area)} seed{'s' if len(d_area) > 1 else ''} whose baseline curve is above 0 and below 0.95). "
                  f"Against the baseline: Δ area {np.mean(d_area):+.3f} (the 'protection' of the table above), "
                  f"Δ (area ÷ start) {kept_text}.")
            print(lift_sentence(float(np.mean(d_area)), float(np.mean(kept)) if kept else math.nan))
    return result


def lift_sentence(d_area: float, d_kept: float, margin: float | None = None, tolerance: float = 5e-4) -> str:
    """What exercise 9.4's control shows, from its two numbers: Δ area of the lifted baseline and Δ (area ÷ start);
    ``margin``: the Δ area the chapter counts as mattering (the mitigation config's ``protection_margin``)."""
    from elasticity_lab.experiments.mitigation.config import MitigationConfig

    margin = MitigationConfig.protection_margin if margin is None else margin
    if not math.isfinite(d_kept):
        return ("Δ (area ÷ start) could not be measured here (the baseline starts too low), so this run cannot show which "
                "measure a higher start fools.")
    if d_area > margin and abs(d_kept) < tolerance:
        return ("A higher start alone makes Δ area look like protection; area ÷ start does not move. That is why the "
                "chapter judges a mitigation that changes the start a second time, relative to that start.")
    if 0 <= d_area <= margin and abs(d_kept) < tolerance:
        return (f"area ÷ start does not move, and Δ area moves by {d_area:+.3f}, less than the {margin:g} the chapter counts "
                "as protection: at this scale the lift fools neither measure.")
    return (f"Here the lift moved Δ area by {d_area:+.3f} and area ÷ start by {d_kept:+.3f}: compare them with the "
            "mitigations' rows before reading either as protection.")
