"""Chapter 9's checks pass their reference solutions and fail the typical wrong answers."""

from __future__ import annotations

import numpy as np

from elasticity_lab.exercises import ch09, solutions


def test_area_under_curve() -> None:
    assert ch09.check_area_under_curve(solutions.area_under_curve).passed
    assert not ch09.check_area_under_curve(lambda n, y: float(np.mean(y))).passed
    assert not ch09.check_area_under_curve(lambda n, y: float(np.trapezoid(y, n))).passed


def test_protection_verdict() -> None:
    assert ch09.check_protection_verdict(solutions.protection_verdict).passed
    estimate_only = lambda lo, hi, m: "makes alignment stick" if (lo + hi) / 2 > 0 else "does not make alignment stick"
    assert not ch09.check_protection_verdict(estimate_only).passed
    no_margin = lambda lo, hi, m: "makes alignment stick" if lo > 0 else "does not make alignment stick" if hi < 0 else "undecided"
    assert not ch09.check_protection_verdict(no_margin).passed


def test_alignment_needed() -> None:
    assert ch09.check_alignment_needed(solutions.alignment_needed).passed
    assert not ch09.check_alignment_needed(lambda n_p, n, r, t: (t * n_p - n_p * r) / (1 - t)).passed


def test_stubs_are_not_attempted() -> None:
    def stub(*args):
        raise NotImplementedError

    assert not ch09.check_area_under_curve(stub).attempted


def test_area_over_start_both_ways() -> None:
    assert ch09.check_area_over_start(solutions.area_over_start).passed
    by_end = lambda n, y: solutions.area_under_curve(n, y) / sorted(zip(n, y))[-1][1]  # noqa: E731
    assert "not by its end" in ch09.check_area_over_start(by_end)
    plain_mean = lambda n, y: float(np.mean(y)) / sorted(zip(n, y))[0][1]  # noqa: E731
    assert "trapezoids" in ch09.check_area_over_start(plain_mean)
    no_floor = lambda n, y: solutions.area_under_curve(n, y) / sorted(zip(n, y))[0][1]  # noqa: E731
    assert "nan" in ch09.check_area_over_start(no_floor)


def test_area_over_start_applied_to_a_lifted_baseline(capsys) -> None:
    import pandas as pd

    curves = pd.DataFrame([{"mitigation": "none", "seed": s, "n": n, "rule": y}
                           for s in (0, 1) for n, y in zip((0, 16, 32), (0.6, 0.3, 0.15))])
    assert ch09.check_area_over_start(solutions.area_over_start, curves=curves).passed
    out = capsys.readouterr().out
    assert "Δ (area ÷ start) +0.000" in out and "Δ area +0." in out


def test_lift_sentence_says_only_what_the_control_measured() -> None:
    assert "area ÷ start does not move" in ch09.lift_sentence(0.044, -1e-17)
    moved = ch09.lift_sentence(0.044, 0.03)
    assert "does not move" not in moved and "+0.030" in moved
    small = ch09.lift_sentence(0.004, 0.0)
    assert "look like protection" not in small and "fools neither measure" in small
    assert "could not be measured" in ch09.lift_sentence(0.044, float("nan"))


def test_lifted_baseline_skips_curves_that_cannot_be_lifted(capsys) -> None:
    import pandas as pd

    curves = pd.DataFrame([{"mitigation": "none", "seed": s, "n": n, "rule": y}
                           for s, top in ((0, 0.6), (1, 0.97)) for n, y in zip((0, 16, 32), (top, 0.3, 0.15))])
    assert ch09.check_area_over_start(solutions.area_over_start, curves=curves).passed
    out = capsys.readouterr().out
    assert "(1 seed whose" in out and "-0.000" not in out
