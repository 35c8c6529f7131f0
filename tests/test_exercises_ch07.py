"""Chapter 7's checks accept the reference solutions and reject typical wrong answers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from elasticity_lab.exercises import ch07, solutions


def test_n_to_halfway() -> None:
    assert ch07.check_n_to_halfway(solutions.n_to_halfway).passed
    no_interp = lambda n, y, b: next((n[i] for i in range(len(n)) if y[i] <= (y[0] + b) / 2), float("nan"))  # noqa: E731
    assert not ch07.check_n_to_halfway(no_interp).passed


def test_kl_threshold() -> None:
    assert ch07.check_kl_threshold(solutions.kl_threshold).passed
    last = lambda n, kl, e: max((x for x, k in zip(n, kl) if k < e), default=float("nan"))  # noqa: E731
    assert not ch07.check_kl_threshold(last).passed


def test_attractor_slope() -> None:
    assert ch07.check_attractor_slope(solutions.attractor_slope).passed
    flipped = lambda x, y: float(np.polyfit(y, x, 1)[0]) if np.ptp(y) else 0.0  # noqa: E731
    assert not ch07.check_attractor_slope(flipped).passed


def test_stub_is_not_attempted() -> None:
    def stub(*args):
        raise NotImplementedError

    assert not ch07.check_attractor_slope(stub).attempted


def _levels(kind: str, rates, start, settled, perturbation: str = "neutral") -> pd.DataFrame:
    return pd.DataFrame({"perturbation": perturbation, "base_kind": kind, "direction": "above", "base_rate": rates,
                         "pretrain_seed": range(len(rates)), "seed": 0, "metric": "rule", "start": start, "settled": settled})


def test_never_moved_slope_both_ways(capsys) -> None:
    assert ch07.check_never_moved_slope(solutions.never_moved_slope).passed
    settled = lambda t: float(np.polyfit(t.loc[t.base_kind == "pretrained", "base_rate"], t.loc[t.base_kind == "pretrained", "settled"], 1)[0])  # noqa: E731
    result = ch07.check_never_moved_slope(settled)
    assert not result.passed and "`start`" in result
    every_row = lambda t: float(np.polyfit(t["base_rate"], t["start"], 1)[0])  # noqa: E731
    result = ch07.check_never_moved_slope(every_row)
    assert not result.passed and "pre-trained rows" in result


def test_never_moved_slope_applied_to_levels(capsys) -> None:
    rates = [0.2, 0.5, 0.8]
    levels = pd.concat([_levels("pretrained", rates, [0.4, 0.7, 1.0], [0.3, 0.5, 0.7]),
                        _levels("light", rates, [0.4, 0.7, 1.0], [0.1, 0.1, 0.1])], ignore_index=True)
    assert ch07.check_never_moved_slope(solutions.never_moved_slope, levels=levels).passed
    out = capsys.readouterr().out
    assert "neutral above: never moved +1.00 · pre-trained, settled +0.67 · lightly pre-trained, settled +0.00" in out
