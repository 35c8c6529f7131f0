"""Checks for chapter 8, "Scale and algorithm" (its first part: does elasticity grow with size and pre-training volume?)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import spearmanr

from elasticity_lab.exercises import ExerciseResult, run_check


def check_rank_trend(fn: Callable[[Sequence[float], Sequence[float]], float]) -> ExerciseResult:
    """Exercise 8.1: Spearman's rank correlation of a measure on an axis within one seed (ties get average ranks)."""

    def cases(f: Callable[[Sequence[float], Sequence[float]], float]) -> None:
        x = [1e4, 1e5, 1e6, 1e7]
        assert math.isclose(float(f(x, [40.0, 30.0, 20.0, 5.0])), -1.0), "a measure that falls at every step must give -1"
        assert math.isclose(float(f(x, [1.0, 2.0, 30.0, 400.0])), 1.0), "ranks, not values: any rising sequence gives +1"
        y = [20.0, 35.0, 20.0, 10.0]
        want = float(spearmanr(x, y)[0])
        got = float(f(x, y))
        if math.isclose(got, float(np.corrcoef(x, y)[0, 1]), rel_tol=1e-9):
            raise AssertionError("that is Pearson's correlation of the values: correlate their ranks instead")
        assert math.isclose(got, want, rel_tol=1e-9), (f"for y = {y} expected {want:+.4f} (tied values share the average of their "
                                                       f"ranks), got {got:+.4f}")
        y2 = [3.0, 1.0, 4.0, 1.5]
        assert math.isclose(float(f(x[::-1], y2)), float(spearmanr(x[::-1], y2)[0]), rel_tol=1e-9), "the points may come in any order"

    return run_check("Exercise 8.1 (the trend within one seed)", fn, cases)


def check_scale_verdict(fn: Callable[[str, Sequence[str]], str]) -> ExerciseResult:
    """Exercise 8.2: the verdict rule: a trend that shows survives only if no counted control shows it too."""

    def cases(f: Callable[[str, Sequence[str]], str]) -> None:
        assert f("shows", ["does not show"]) == "survives", "the trend shows and its control does not: it survives"
        if f("shows", ["shows"]) == "survives":
            raise AssertionError("a control that shows the same trend means the trend is not credited to pre-training")
        assert f("shows", ["shows"]) == "does not survive", "shows + control shows → 'does not survive'"
        assert f("shows", ["undecided", "does not show"]) == "survives", "an undecided control does not show the trend"
        assert f("shows", ["not run"]) == "undecided", "with no control that was run, the data cannot tell: 'undecided'"
        for other in ("does not show", "undecided", "not run"):
            assert f(other, ["does not show"]) == other, f"a trend that is '{other}' stays '{other}', whatever its controls say"

    return run_check("Exercise 8.2 (surviving the controls)", fn, cases)


def check_control_trends(fn: Callable[[], tuple[float, float]]) -> ExerciseResult:
    """Exercise 8.2, part 2 (a control): a pair ``(main_trend, control_trend)`` for
    :func:`~elasticity_lab.experiments.scale.synthetic_measures` whose size verdict is "does not survive"."""
    from elasticity_lab.experiments import scale as sc

    def cases(f: Callable[[], tuple[float, float]]) -> None:
        pair = f()
        assert isinstance(pair, (tuple, list)) and len(pair) == 2, f"return two numbers, (main_trend, control_trend); got {pair!r}"
        main, control = (float(x) for x in pair)
        for seed in (0, 1, 2):  # the same answer whatever the noise: not a lucky draw
            rows = sc.verdicts(sc.synthetic_measures(main, control, seed=seed))
            size = rows[(rows["axis"] == "size") & rows["headline"]].iloc[0]
            if size["finding"] != "shows":
                raise AssertionError(f"with main_trend = {main:g} the pre-trained trend is '{size['finding']}' (noise seed {seed}): a "
                                     "finding must show before a control can take it away. Growing elasticity means every "
                                     "measure falls along the axis: give the pre-trained bases a clearly negative slope")
            if size["verdict"] != "does not survive":
                raise AssertionError(f"with control_trend = {control:g} the controls say '{size['control_finding']}' (noise seed "
                                     f"{seed}), so the trend '{size['verdict']}'. Make the controls, which have no pre-trained "
                                     "distribution, fall along the axis just like the pre-trained bases")

    result = run_check("Exercise 8.2, part 2 (a control that shows the trend)", fn, cases)
    if result.passed:
        main, control = (float(x) for x in fn())
        rows = sc.verdicts(sc.synthetic_measures(main, control))
        for _, r in rows[rows["headline"]].iterrows():
            print(f"{r['claim']}: the pre-trained trend {r['finding']} ({r['trend_text']}); the controls: {r['control_finding']} "
                  f"→ {r['verdict']}")
        print("The trend appears in bases with no pre-trained distribution to spring back to: whatever makes it, it is "
              "not elasticity, so the chapter does not credit it to pre-training.")
    return result
