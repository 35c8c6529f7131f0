"""Chapter 10's checks: the reference solutions pass, typical mistakes fail with a hint."""

from __future__ import annotations

from elasticity_lab.exercises import ch10, solutions


def test_solutions_pass() -> None:
    assert ch10.check_early_drop(solutions.early_drop).passed
    assert ch10.check_pythia_tokens(solutions.pythia_tokens).passed


def test_mistakes_fail() -> None:
    assert not ch10.check_early_drop(lambda n, y: y[0] - y[-1]).passed
    assert not ch10.check_pythia_tokens(lambda r: float(int(r[4:]) * 2048)).passed
