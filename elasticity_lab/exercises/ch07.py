"""Checks for chapter 7, "Rebound: alignment springs back"."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from elasticity_lab.exercises import ExerciseResult, run_check


def check_n_to_halfway(fn: Callable[[Sequence[float], Sequence[float], float], float]) -> ExerciseResult:
    """Exercise 7.1: examples needed to fall (or rise) halfway from the curve's start to the base level."""

    def cases(f: Callable[[Sequence[float], Sequence[float], float], float]) -> None:
        n = [0, 10, 20, 40]
        got = float(f(n, [1.0, 0.8, 0.4, 0.2], 0.2))
        if math.isclose(got, 20.0):
            raise AssertionError("interpolate linearly between the two grid points around the halfway level (0.6 lies between n = 10 and n = 20)")
        if math.isclose(got, 17.5):  # the level 0.5, halfway from 1 to 0
            raise AssertionError("halfway is measured from the curve's start to the base level ((1.0 + 0.2) / 2 = 0.6), not from 1 to 0")
        assert math.isclose(got, 15.0, rel_tol=1e-6), f"for y = [1.0, 0.8, 0.4, 0.2] and base 0.2 expected 15.0, got {got}"
        up = float(f(n, [0.0, 0.1, 0.3, 0.5], 0.5))
        assert math.isclose(up, 17.5, rel_tol=1e-6), f"a rising curve (the reversed order) must work too: expected 17.5, got {up}"
        never = f(n, [1.0, 0.9, 0.9, 0.9], 0.2)
        assert never is not None and math.isnan(float(never)), f"a curve that never gets halfway must give nan, got {never}"

    return run_check("Exercise 7.1 (n to halfway)", fn, cases)


def check_kl_threshold(fn: Callable[[Sequence[float], Sequence[float], float], float]) -> ExerciseResult:
    """Exercise 7.2: the smallest n whose KL to the base is below ε (the Table-3 search)."""

    def cases(f: Callable[[Sequence[float], Sequence[float], float], float]) -> None:
        n, kl = [0, 8, 16, 32, 64, 96], [0.30, 0.12, 0.04, 0.015, 0.03, 0.012]
        got = float(f(n, kl, 0.02))
        if math.isclose(got, 96.0):
            raise AssertionError("KL can rise again after its minimum: return the *first* n below ε, not the last")
        if math.isclose(got, 16.0):
            raise AssertionError("the KL at n = 16 is 0.04, above ε = 0.02")
        assert math.isclose(got, 32.0), f"expected 32, got {got}"
        assert math.isclose(float(f([64, 0, 16], [0.01, 0.3, 0.05], 0.02)), 64.0), "the rows may come in any order of n: sort them first"
        never = f([0, 8], [0.3, 0.2], 0.02)
        assert never is not None and math.isnan(float(never)), f"a curve that never gets below ε must give nan, got {never}"

    return run_check("Exercise 7.2 (examples to bring the KL below ε)", fn, cases)


def check_attractor_slope(fn: Callable[[Sequence[float], Sequence[float]], float]) -> ExerciseResult:
    """Exercise 7.3: least-squares slope of settling levels on base rates (1 = perfect attraction, 0 = none)."""

    def cases(f: Callable[[Sequence[float], Sequence[float]], float]) -> None:
        rates = [0.2, 0.5, 0.8, 0.2, 0.5, 0.8]
        assert math.isclose(float(f(rates, rates)), 1.0, rel_tol=1e-9), "levels equal to the base rates must give slope 1"
        assert math.isclose(float(f(rates, [0.1] * 6)), 0.0, abs_tol=1e-12), "a flat level must give slope 0"
        levels = [0.05, 0.2, 0.7, 0.15, 0.3, 0.6]
        want = float(np.polyfit(rates, levels, 1)[0])
        got = float(f(rates, levels))
        endpoints = (np.mean([0.7, 0.6]) - np.mean([0.05, 0.15])) / 0.6
        if math.isclose(got, endpoints, rel_tol=1e-6) and not math.isclose(want, endpoints, rel_tol=1e-6):
            raise AssertionError("use every point (a least-squares fit), not only the lowest and highest base rates")
        if math.isclose(got, float(np.polyfit(levels, rates, 1)[0]), rel_tol=1e-6):
            raise AssertionError("regress the levels on the base rates (x = base rate), not the other way round")
        assert math.isclose(got, want, rel_tol=1e-6), f"expected {want:.4f}, got {got:.4f}"

    return run_check("Exercise 7.3 (the attractor slope)", fn, cases)


def _levels_table(rates: Sequence[float], start: Sequence[float], settled: Sequence[float], kind: str) -> pd.DataFrame:
    return pd.DataFrame({"perturbation": "neutral", "base_kind": kind, "direction": "above", "base_rate": list(rates),
                         "pretrain_seed": [i % 3 for i in range(len(rates))], "seed": 0, "metric": "rule",
                         "start": list(start), "settled": list(settled)})


def check_never_moved_slope(fn: Callable[[pd.DataFrame], float], *, levels: pd.DataFrame | None = None) -> ExerciseResult:
    """Exercise 7.4 (a control): the attractor slope of a model that never moved in stage 2, i.e. the least-squares
    slope of ``start`` (where stage 1 left each pre-trained base) on ``base_rate``, over the pre-trained rows.

    With ``levels`` (the chapter's ``result.attractor_levels``), a function that passes is applied to every
    perturbation and arm, beside the slopes of where the curves actually settled.
    """

    def cases(f: Callable[[pd.DataFrame], float]) -> None:
        rates = [0.2, 0.5, 0.8] * 3
        start = [r + 0.2 + d for r, d in zip(rates, [0.0, 0.01, -0.01, 0.02, 0.0, 0.01, -0.02, 0.0, 0.0])]
        settled = [0.1 + 0.3 * r + d for r, d in zip(rates, [0.01, 0.0, 0.02, -0.01, 0.0, 0.0, 0.01, 0.02, -0.02])]
        light = _levels_table(rates, [0.9, 0.1, 0.5] * 3, [0.0, 0.0, 1.0] * 3, "light")
        table = pd.concat([_levels_table(rates, start, settled, "pretrained"), light], ignore_index=True)
        want = float(np.polyfit(rates, start, 1)[0])
        got = float(f(table.sample(frac=1.0, random_state=1)))
        if math.isclose(got, float(np.polyfit(rates, settled, 1)[0]), rel_tol=1e-6):
            raise AssertionError("that is the slope of where the curves settled; a model that never moved in stage 2 stays where "
                                 "stage 1 left it: use the `start` column")
        if math.isclose(got, float(np.polyfit(table["base_rate"], table["start"], 1)[0]), rel_tol=1e-6):
            raise AssertionError("keep only the pre-trained rows (base_kind == 'pretrained'); the lightly pre-trained bases are "
                                 "another control")
        if math.isclose(got, float(np.polyfit(start, rates, 1)[0]), rel_tol=1e-6):
            raise AssertionError("regress `start` on the base rate (x = base_rate), not the other way round")
        assert math.isclose(got, want, rel_tol=1e-6), f"expected {want:.4f}, got {got:.4f}"
        flat = _levels_table([0.2, 0.5, 0.8], [0.4, 0.4, 0.4], [0.3, 0.5, 0.7], "pretrained")
        assert math.isclose(float(f(flat)), 0.0, abs_tol=1e-9), "bases that stage 1 left at the same level must give slope 0"

    result = run_check("Exercise 7.4 (the slope of a model that never moved)", fn, cases)
    if result.passed and levels is not None and len(levels):
        rule = levels[levels["metric"] == "rule"] if "metric" in levels else levels
        print("\nOn this chapter's attractor runs (rule score; least squares over every seed):")
        for (pert, arm), g in rule.groupby(["perturbation", "direction"], sort=False):
            pre, light = g[g["base_kind"] == "pretrained"], g[g["base_kind"] == "light"]
            if pre["base_rate"].nunique() < 2:
                continue
            never = float(fn(g))
            moved = float(np.polyfit(pre["base_rate"], pre["settled"], 1)[0])
            lt = (f"{float(np.polyfit(light['base_rate'], light['settled'], 1)[0]):+.2f}"
                  if light["base_rate"].nunique() >= 2 else "not run")
            print(f"{pert:>16} {arm:>5}: never moved {never:+.2f} · pre-trained, settled {moved:+.2f} · lightly pre-trained, "
                  f"settled {lt}")
        print("A model that never moved gets the 'never moved' slope with no pull toward its base at all. A settled slope near "
              "it says nothing about an attractor; the fraction recovered and the slope against the lightly pre-trained control do.")
    return result
