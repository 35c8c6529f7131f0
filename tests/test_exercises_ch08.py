"""Chapter 8's checks accept the reference solutions and reject typical wrong answers."""

from __future__ import annotations

import numpy as np

from elasticity_lab.exercises import ch08, solutions


def test_rank_trend() -> None:
    assert ch08.check_rank_trend(solutions.rank_trend).passed
    pearson = lambda x, y: float(np.corrcoef(x, y)[0, 1])  # noqa: E731
    assert not ch08.check_rank_trend(pearson).passed


def test_scale_verdict() -> None:
    assert ch08.check_scale_verdict(solutions.scale_verdict).passed
    lenient = lambda finding, controls: "survives" if finding == "shows" else finding  # noqa: E731
    assert not ch08.check_scale_verdict(lenient).passed
    no_control_survives = lambda f, c: ("does not survive" if "shows" in c else "survives") if f == "shows" else f  # noqa: E731
    assert not ch08.check_scale_verdict(no_control_survives).passed


def test_stub_is_not_attempted() -> None:
    def stub(*args):
        raise NotImplementedError

    assert not ch08.check_rank_trend(stub).attempted


def test_control_trends_both_ways(capsys) -> None:
    assert ch08.check_control_trends(solutions.control_trends).passed
    out = capsys.readouterr().out
    assert "elasticity grows with model size: the pre-trained trend shows" in out and "→ does not survive" in out
    flat_control = ch08.check_control_trends(lambda: (-1.0, 0.0))  # the control shows nothing: the trend survives
    assert not flat_control.passed and "controls" in flat_control
    no_finding = ch08.check_control_trends(lambda: (1.0, 1.0))  # a rising trend never shows
    assert not no_finding.passed and "negative slope" in no_finding
    assert not ch08.check_control_trends(lambda: -1.0).passed  # one number, not a pair
