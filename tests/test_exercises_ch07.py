"""Chapter 7's checks accept the reference solutions and reject typical wrong answers."""

from __future__ import annotations

import numpy as np

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
