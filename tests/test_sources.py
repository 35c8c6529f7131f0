"""Seeded theory-chapter sources: exact Markov leaf masses, Zipf -> Pareto, determinism."""

from __future__ import annotations

import numpy as np

from elasticity_lab.info import sources as S
from elasticity_lab.info import pareto


def test_markov_leaf_probs_exact_and_normalised() -> None:
    init, trans = S.zipf_markov_chain(4, seed=1)
    probs = S.markov_leaf_probs(init, trans, 3)
    assert np.isclose(probs.sum(), 1.0)
    assert np.isclose(probs[4 * 4 * 1 + 4 * 2 + 3], init[1] * trans[1, 2] * trans[2, 3])


def test_zipf_values_are_pareto_with_index_one_over_s() -> None:
    fit = pareto.fit_pareto(S.zipf_probs(50_000, 1.25))
    assert abs(fit.alpha - 0.8) < 0.02


def test_sequences_are_seeded() -> None:
    a = S.zipf_markov_sequences(50, 5, 6, seed=3)
    assert np.array_equal(a, S.zipf_markov_sequences(50, 5, 6, seed=3))
    assert not np.array_equal(a, S.zipf_markov_sequences(50, 5, 6, seed=4))
    assert a.min() >= 0 and a.max() < 6
