"""Chapter 10's checks: the reference solutions pass, typical mistakes fail with a hint."""

from __future__ import annotations

from elasticity_lab.exercises import ch10, solutions


def test_solutions_pass() -> None:
    assert ch10.check_early_drop(solutions.early_drop).passed
    assert ch10.check_pythia_tokens(solutions.pythia_tokens).passed


def test_mistakes_fail() -> None:
    assert not ch10.check_early_drop(lambda n, y: y[0] - y[-1]).passed
    assert not ch10.check_pythia_tokens(lambda r: float(int(r[4:]) * 2048)).passed


def test_saturated_both_ways() -> None:
    assert ch10.check_saturated(solutions.saturated).passed
    start_only = lambda s, a, r: abs(s - 1) < r or abs(s) < r  # noqa: E731
    assert "not only the start" in ch10.check_saturated(start_only)
    any_bound = lambda s, a, r: min(abs(s), abs(s - 1)) < r and min(abs(a), abs(a - 1)) < r  # noqa: E731
    assert "not the same one" in ch10.check_saturated(any_bound)
    fixed = lambda s, a, r: any(abs(s - b) < 1e-6 and abs(a - b) < 1e-6 for b in (0.0, 1.0))  # noqa: E731
    assert "resolution" in ch10.check_saturated(fixed)


def test_saturated_applied_to_drops(capsys) -> None:
    import pandas as pd

    rows = []
    for seed in (0, 1):
        for x, start, drop in ((1, 1 - 1e-9, 1e-10), (4, 1 - 1e-9, 2e-10), (16, 1 - 1e-9, 3e-10), (64, 0.8, 0.3)):
            rows.append({"axis": "volume", "base": f"step{x}", "base_kind": "pretrained", "x": x, "seed": seed, "metric": "likelihood",
                         "start": start, "after": start - drop, "drop": drop})
    assert ch10.check_saturated(solutions.saturated, drops=pd.DataFrame(rows)).passed
    out = capsys.readouterr().out
    assert "step1: start 0.999999999" in out and "2 of 2 curves saturated" in out
    assert "+1.00 (mean of 2 seeds) over every curve; not measurable (too few curves) over the unsaturated ones" in out


def test_saturated_is_about_the_bound_not_a_small_drop() -> None:
    no_drop = lambda s, a, r: abs(s - a) < r  # noqa: E731  (a flat curve in the middle is not saturated)
    assert "room to move" in ch10.check_saturated(no_drop)


def test_saturation_lesson_says_only_what_was_counted() -> None:
    assert "rounding residue" in ch10.saturation_lesson(6, 8) and "6 of 8" in ch10.saturation_lesson(6, 8)
    none = ch10.saturation_lesson(0, 8)
    assert "None of the 8 curves" in none and "rounding residue" not in none
