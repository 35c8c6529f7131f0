"""The verdict machinery says yes, no and "cannot tell", each where the synthetic data's answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from elasticity_lab.experiments import stats as st


def _seeds(effect: float, n_seeds: int = 5, per_seed: int = 8, noise: float = 0.1, seed: int = 0):
    rng = np.random.default_rng(seed)
    seed_shift = rng.normal(0, noise, n_seeds)
    values = [effect + seed_shift[s] + rng.normal(0, noise) for s in range(n_seeds) for _ in range(per_seed)]
    clusters = [s for s in range(n_seeds) for _ in range(per_seed)]
    return values, clusters


def test_decide_says_all_three_answers():
    yes = st.mean_interval(*_seeds(1.0))
    no = st.mean_interval(*_seeds(-1.0))
    unsure = st.mean_interval(*_seeds(0.0, noise=0.5))
    assert st.decide(yes) == st.SHOWS
    assert st.decide(no) == st.ABSENT
    assert st.decide(unsure) == st.UNDECIDED
    assert st.decide(no, direction="less") == st.SHOWS
    tight_null = st.mean_interval(*_seeds(0.0, noise=0.01))
    assert st.decide(tight_null, margin=0.1) == st.ABSENT
    assert st.decide(st.mean_interval([])) == st.NOT_RUN


def test_clusters_widen_the_interval_when_seeds_differ():
    values, clusters = _seeds(0.5, n_seeds=4, per_seed=50, noise=0.3, seed=3)
    naive = st.bootstrap_interval(values)
    clustered = st.bootstrap_interval(values, clusters)
    assert (clustered.high - clustered.low) > 1.5 * (naive.high - naive.low)
    few = st.mean_interval(values, clusters)
    assert few.method.startswith("t over 4") and (few.high - few.low) >= (clustered.high - clustered.low)
    one_seed = st.mean_interval([1.0, 2.0, 3.0], [0, 0, 0])
    assert math.isinf(one_seed.low) and st.decide(one_seed) == st.UNDECIDED


def test_intervals_cover_the_truth_about_as_often_as_stated():
    hits = 0
    for rep in range(60):
        values, clusters = _seeds(0.3, n_seeds=8, per_seed=4, noise=0.2, seed=100 + rep)
        iv = st.mean_interval(values, clusters)
        hits += iv.low <= 0.3 <= iv.high
    assert hits >= 51  # nominal 95 % of 60 = 57; the t-interval over 8 seed means is exact for normal data


def test_difference_and_trend_intervals():
    a, ca = _seeds(1.0)
    b, cb = _seeds(0.2)
    assert st.decide(st.difference_interval(a, b, ca, cb)) == st.SHOWS
    assert st.decide(st.difference_interval(b, a, cb, ca)) == st.ABSENT
    x = [1, 2, 3, 4] * 4
    rising = [xi + 0.1 * s for s in range(4) for xi in (1, 2, 3, 4)]
    clusters = [s for s in range(4) for _ in range(4)]
    assert st.decide(st.trend_interval(x, rising, clusters)) == st.SHOWS
    false_alarms = sum(st.decide(st.trend_interval(x, np.random.default_rng(r).normal(size=16), clusters)) == st.SHOWS
                       for r in range(100))
    assert false_alarms <= 10  # noise "shows" a trend about 5 % of the time, as a 95 % interval should


def test_survives_needs_a_counted_control_that_does_not_show_it():
    assert st.survives(st.SHOWS, [st.ABSENT, st.UNDECIDED]) == "survives"
    assert st.survives(st.SHOWS, [st.SHOWS]) == "does not survive"
    assert st.survives(st.SHOWS, [st.NOT_RUN]) == st.UNDECIDED
    assert st.survives(st.ABSENT, [st.ABSENT]) == st.ABSENT


@pytest.mark.parametrize("plateau", [0.0, 0.2, 0.5])
def test_plateau_fit_finds_where_a_curve_settles(plateau):
    n = np.array([0, 8, 16, 32, 48, 64, 96, 128, 192, 256], dtype=float)
    y = plateau + (0.9 - plateau) * np.exp(-n / 30)
    fit = st.fit_plateau(n, y)
    assert fit.plateau == pytest.approx(plateau, abs=1e-3) and fit.tau == pytest.approx(30, rel=0.02)
    assert fit.recovered(plateau) == pytest.approx(1.0, abs=1e-2)


def test_a_decay_to_zero_is_not_a_return_to_the_base_and_a_stop_at_the_base_is():
    """The criterion the two-stage ratio could not be: decays to 0 and to a base of 0.2 look alike in
    their slopes, but their plateaus differ, and noise does not blur that at 64 prompts per point."""
    n = np.array([0, 8, 16, 32, 48, 64, 96, 128, 192, 256], dtype=float)
    rng = np.random.default_rng(0)
    base = 0.2
    to_zero, to_base = [], []
    for s in range(5):
        for target, out in ((0.0, to_zero), (base, to_base)):
            p = target + (0.9 - target) * np.exp(-n / 25)
            y = rng.binomial(64, p) / 64
            out.append(st.fit_plateau(n, y).plateau)
    gap_zero = st.mean_interval(np.array(to_zero) - base, list(range(5)))
    gap_base = st.mean_interval(np.array(to_base) - base, list(range(5)))
    assert st.decide(gap_zero, direction="less") == st.SHOWS          # settles below the base: not a return
    assert st.decide(gap_base, margin=0.05) == st.ABSENT               # settles at the base, within 0.05
    assert st.decide(gap_base, direction="less") != st.SHOWS


def test_text_never_prints_nan():
    assert st.Interval(math.nan, math.nan, math.nan, n=0).text() == "not run"
    assert "undecided" in st.Interval(1.0, -math.inf, math.inf, n=3).text()
    assert st.Interval(0.1, 0.0, 0.2, n=9).text() == "+0.10 [+0.00, +0.20]"


def test_bad_inputs_name_the_parameter():
    with pytest.raises(ValueError, match="level"):
        st.mean_interval([1.0, 2.0], level=1.5)
    with pytest.raises(ValueError, match="clusters"):
        st.bootstrap_interval([1.0, 2.0], [0])
    with pytest.raises(ValueError, match="direction"):
        st.decide(st.Interval(1, 0, 2, n=3), direction="up")
    with pytest.raises(ValueError, match="n has 2"):
        st.fit_plateau([0, 1], [1, 0])
