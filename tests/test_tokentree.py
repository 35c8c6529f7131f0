"""Token trees: structure on hand-built cases, joint weights, Huffman bounds, rates, the Pareto fit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from elasticity_lab.info import pareto, tokentree as tt


def _small_tree() -> tt.TokenTree:
    d1 = [[0, 1], [0, 1], [1], [0, 0, 1]]
    d2 = [[1, 1], [1]]
    return tt.build_token_tree([d1, d2], names=["a", "b"])


def test_structure_matches_hand_built_trie() -> None:
    tree = _small_tree()
    assert tree.dataset_sizes.tolist() == [4.0, 2.0]
    assert [tree.path(1, j) for j in range(tree.n_nodes(1))] == [(0,), (1,)]
    assert tree.counts[0].tolist() == [[3, 1], [0, 2]]
    assert [tree.path(2, j) for j in range(tree.n_nodes(2))] == [(0, 0), (0, 1), (1, 1)]
    assert tree.parents[1].tolist() == [0, 0, 1]
    assert tree.eos[0].tolist() == [[0, 1], [0, 1]]  # "1" ends at depth 1 in both data sets


def test_counts_match_naive_trie_on_random_ragged_data() -> None:
    rng = np.random.default_rng(3)
    seqs = [rng.integers(0, 3, size=rng.integers(1, 6)).tolist() for _ in range(300)]
    tree = tt.build_token_tree([seqs])
    for level in range(1, tree.max_depth + 1):
        expected: dict[tuple[int, ...], int] = {}
        for s in seqs:
            if len(s) >= level:
                expected[tuple(s[:level])] = expected.get(tuple(s[:level]), 0) + 1
        got = {tree.path(level, j): int(c) for j, c in enumerate(tree.counts[level - 1][0])}
        assert got == expected
    pruned = tree.prune(3)
    assert math.isclose(pruned.probs.sum(), 1.0)


def test_joint_weights_hand_computed() -> None:
    # node weights of two data sets at one level, sizes 3 and 1
    w = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    joint = tt.joint_weights(w, [3, 1])
    assert np.allclose(joint, [0.375, 0.375, 0.25])
    # and on the tree: sizes 4 and 2, level 1 weights (3/4, 1/4) and (0, 1)
    tree = _small_tree()
    assert np.allclose(tree.joint_node_weights(1), [3 / 6, 3 / 6])
    assert np.allclose(tree.joint_node_weights(1, sizes=[1, 1]), [3 / 8, 5 / 8])
    with pytest.raises(ValueError, match="sizes"):
        tt.joint_weights(w, [1, 2, 3])


@pytest.mark.parametrize("seed", range(20))
def test_huffman_expected_length_within_entropy_bounds(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = int(rng.integers(2, 400))
    p = rng.dirichlet(np.full(m, rng.choice([0.1, 1.0, 10.0])))
    lengths = tt.huffman_code_lengths(p)
    h = tt.entropy_bits(p)
    el = tt.expected_code_length(lengths, p)
    assert h - 1e-9 <= el < h + 1
    assert np.sum(2.0 ** -lengths) <= 1 + 1e-12  # Kraft: a prefix code exists
    codes = tt.canonical_codes(lengths)
    assert all(len(c) == L for c, L in zip(codes, lengths))
    assert not any(a != b and b.startswith(a) for a in codes for b in codes) if m < 60 else True


def test_huffman_known_case() -> None:
    assert sorted(tt.huffman_code_lengths([0.5, 0.25, 0.125, 0.125]).tolist()) == [1, 2, 3, 3]


def test_cross_rate_is_worse_than_own_code() -> None:
    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(64)), rng.dirichlet(np.ones(64))
    own = tt.compression_rate(p, p, depth=6, ideal=True)
    other = tt.compression_rate(p, q, depth=6, ideal=True)
    assert other > own
    assert math.isclose(tt.normalized_compression_rate(p, p, 6, ideal=True), own - 1.0)
    with pytest.raises(ValueError, match="sums to"):
        tt.compression_rate(p * 2, q, depth=6)


def test_pareto_fit_recovers_tail_index() -> None:
    rng = np.random.default_rng(0)
    samples = rng.pareto(1.5, size=100_000) + 1.0
    fit = pareto.fit_pareto(samples)
    assert abs(fit.alpha - 1.5) / 1.5 < 0.05
    assert fit.alpha_se < 0.05
    assert fit.ks < 0.02


def test_pareto_fit_prefers_lognormal_on_lognormal_data() -> None:
    rng = np.random.default_rng(1)
    fit = pareto.fit_pareto(rng.lognormal(0.0, 0.5, size=20_000), x_min=1.0)
    assert fit.loglik_ratio < 0  # log-normal data: the log-normal wins


def test_chunked_rate_random_binary_is_one_bit() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, size=(4000, 8))
    assert abs(tt.chunked_rate(x, 1) - 1.0) < 1e-3
    assert tt.chunked_rate(x, 8) < tt.chunked_rate(x, 1)  # memorisation at depth 8


def test_invalid_input() -> None:
    with pytest.raises(ValueError, match="PAD"):
        tt.build_token_tree(np.array([[0, -1, 1]]))
    with pytest.raises(ValueError, match="depth"):
        _small_tree().prune(0)


def test_larger_data_set_wins_the_joint_code() -> None:
    rng = np.random.default_rng(0)
    d1 = rng.integers(0, 2, size=(500, 4)) * 0  # all zeros: one leaf
    d2 = rng.integers(0, 2, size=(500, 4))
    pruned = tt.build_token_tree([d1, d2]).prune(4)
    ex = tt.excess_under_joint_code(pruned, [[1000, 1], [1, 1000]], ideal=True)
    assert ex[0, 0] < ex[0, 1] and ex[1, 1] < ex[1, 0]
    assert np.all(ex >= -1e-12)


def test_weights_equal_repeated_sequences() -> None:
    seqs = np.array([[0, 1, -1], [1, 1, 0], [0, 1, 1]])
    weighted = tt.build_token_tree(seqs, weights=[np.array([2.0, 1.0, 3.0])], vocab_size=2)
    repeated = tt.build_token_tree(np.repeat(seqs, [2, 1, 3], axis=0), vocab_size=2)
    for level in range(1, 4):
        assert np.allclose(weighted.node_weights(level), repeated.node_weights(level))
    assert np.allclose(weighted.prune(3).probs, repeated.prune(3).probs)


def test_pareto_verdict_says_each_of_its_three_answers() -> None:
    """The wording follows the test: undecided at a large p, otherwise the sign of z picks the law."""
    import dataclasses

    rng = np.random.default_rng(1)
    lognormal = pareto.fit_pareto(rng.lognormal(0.0, 0.5, size=20_000), x_min=1.0)
    assert lognormal.p_value < 0.1 and "log-normal fits this tail better" in pareto.pareto_verdict(lognormal)
    undecided = dataclasses.replace(lognormal, loglik_ratio_z=0.7, p_value=0.5)
    assert pareto.pareto_verdict(undecided).startswith("the test cannot tell")
    assert "p = 0.50" in pareto.pareto_verdict(undecided)
    pareto_fit = dataclasses.replace(lognormal, loglik_ratio_z=3.0, p_value=0.003)
    assert pareto.pareto_verdict(pareto_fit).startswith("a Pareto law fits this tail better")
    with pytest.raises(ValueError, match="level"):
        pareto.pareto_verdict(pareto_fit, level=1.5)
