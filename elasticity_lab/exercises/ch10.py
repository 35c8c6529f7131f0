"""Checks for chapter 10, "Real models on a GPU or Colab"."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from elasticity_lab.exercises import ExerciseResult, run_check

PYTHIA_TOKENS_PER_STEP = 1024 * 2048
"""Pythia's batch: 1024 sequences of 2048 tokens per optimiser step."""


def check_early_drop(fn: Callable[[Sequence[float], Sequence[float]], float]) -> ExerciseResult:
    """Exercise 10.1: the score at n = 0 minus the score at the smallest n > 0 (rows in any order)."""

    def cases(f: Callable[[Sequence[float], Sequence[float]], float]) -> None:
        got = float(f([0, 20, 40, 100], [0.9, 0.5, 0.4, 0.3]))
        if math.isclose(got, 0.6):
            raise AssertionError("the early drop stops at the first n > 0 (here 20), not at the end of the grid")
        assert math.isclose(got, 0.4), f"for y = [0.9, 0.5, 0.4, 0.3] at n = [0, 20, 40, 100] expected 0.4, got {got}"
        shuffled = float(f([40, 0, 100, 20], [0.4, 0.9, 0.3, 0.5]))
        assert math.isclose(shuffled, 0.4), f"the rows may come in any order of n: sort them first (got {shuffled})"
        rise = float(f([0, 10], [0.2, 0.5]))
        assert math.isclose(rise, -0.3), f"a curve that rises gives a negative drop (expected -0.3, got {rise})"
        alone = f([0], [0.7])
        assert alone is not None and math.isnan(float(alone)), f"a curve without an n > 0 must give nan, got {alone}"

    return run_check("Exercise 10.1 (the early drop)", fn, cases)


def check_pythia_tokens(fn: Callable[[str], float]) -> ExerciseResult:
    """Exercise 10.2: the pre-training tokens behind a Pythia revision name such as ``"step143000"``."""

    def cases(f: Callable[[str], float]) -> None:
        got = float(f("step143000"))
        if math.isclose(got, 143000 * 2048):
            raise AssertionError("a step is a batch of 1024 sequences, each 2048 tokens long: multiply by both")
        if math.isclose(got, 143000.0):
            raise AssertionError("the revision names a step count; a step is 1024 × 2048 tokens")
        assert math.isclose(got, 143000 * PYTHIA_TOKENS_PER_STEP), f"expected {143000 * PYTHIA_TOKENS_PER_STEP:.4g}, got {got:.4g}"
        assert float(f("step0")) == 0.0, "step0 is the initialisation: no tokens yet"
        assert math.isclose(float(f("step1000")), 1000 * PYTHIA_TOKENS_PER_STEP), "step1000 must give 1000 × 1024 × 2048"

    return run_check("Exercise 10.2 (tokens behind a Pythia revision)", fn, cases)


def check_saturated(fn: Callable[[float, float, float], bool], *, drops: pd.DataFrame | None = None) -> ExerciseResult:
    """Exercise 10.3 (a control): is a curve saturated, i.e. are its score before and after the first batch both within
    ``resolution`` of the *same* bound (0 or 1)? Such a curve cannot show a drop, whatever its digits say.

    With ``drops`` (the chapter's ``rm.drops(result.curves)``), a function that passes is applied to every curve of the
    volume axis, and the trend the verdict would read in them is computed with and without the saturated curves.
    """

    def cases(f: Callable[[float, float, float], bool]) -> None:
        assert bool(f(1.0 - 1e-8, 1.0 - 3e-8, 1e-6)) is True, "both scores within 1e-6 of 1: saturated"
        assert bool(f(2e-9, 0.0, 1e-6)) is True, "both scores within 1e-6 of 0: saturated"
        if bool(f(1.0, 0.9, 1e-6)):
            raise AssertionError("start 1.0, after 0.9: the curve left its bound, so it can show a drop (0.1); both scores must be "
                                 "at the bound, not only the start")
        if bool(f(1.0, 0.0, 1e-6)):
            raise AssertionError("start 1.0, after 0.0: each score is at *a* bound, but not the same one; the curve fell all the "
                                 "way, which is no saturation")
        assert bool(f(0.9, 0.5, 1e-6)) is False, "start 0.9, after 0.5: not saturated"
        if bool(f(0.5, 0.5 - 1e-9, 1e-6)):
            raise AssertionError("start 0.5, after 0.5: no drop, but far from both bounds, so the curve had room to move and "
                                 "simply did not; saturation is about the bound, not about a drop below the resolution")
        assert bool(f(1.0 - 1e-3, 1.0 - 2e-3, 1e-6)) is False, "within 1e-3 of 1 is not within the resolution 1e-6"
        assert bool(f(1.0 - 1e-3, 1.0 - 2e-3, 1e-2)) is True, "use the resolution you are given: within 1e-2 of 1 here"

    result = run_check("Exercise 10.3 (a drop in the rounding residue)", fn, cases)
    if result.passed and drops is not None and len(drops):
        from elasticity_lab.experiments.realmodels.verdicts import RESOLUTION

        d = drops[(drops["axis"] == "volume") & (drops["metric"] == "likelihood")].copy()
        if not len(d):
            return result
        d["saturated"] = [bool(fn(s, a, RESOLUTION)) for s, a in zip(d["start"], d["after"])]
        print(f"\nThe volume axis, likelihood score (resolution {RESOLUTION:g}): the early drop of each base, mean over seeds")
        for base, g in d.groupby("base", sort=False):
            print(f"{base:>28}: start {g['start'].mean():.9f}, drop {g['drop'].mean():+.2e}, "
                  f"{int(g['saturated'].sum())} of {len(g)} curves saturated")

        def trend(rows: pd.DataFrame) -> str:
            per_seed = [spearmanr(s["x"], s["drop"])[0] for _, s in rows[rows["base_kind"] != "random"].groupby("seed")
                        if s["x"].nunique() >= 2 and s["drop"].nunique() >= 2]
            return f"{np.mean(per_seed):+.2f} (mean of {len(per_seed)} seeds)" if per_seed else "not measurable (too few curves)"

        print(f"Spearman correlation of the drop with pre-training steps: {trend(d)} over every curve; "
              f"{trend(d[~d['saturated']])} over the unsaturated ones.")
        print(saturation_lesson(int(d["saturated"].sum()), len(d)))
    return result


def saturation_lesson(saturated: int, curves: int) -> str:
    """The closing sentence of exercise 10.3's control, from how many of the axis's curves are saturated."""
    if saturated == 0:
        return (f"None of the {curves} curves is saturated: every drop here is a measured one, and the trend over every "
                "curve is the trend over the unsaturated ones.")
    return (f"{saturated} of {curves} curves are saturated. A rank correlation sees an order in drops far below the "
            "resolution as clearly as in real ones: where the curves are saturated, any 'trend' in them is rounding "
            "residue, and it appears just as well in stand-ins that cannot carry the paper's elasticity.")
