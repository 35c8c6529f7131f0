"""Chapter 1's library: code lengths, the arithmetic coder, models and sources."""

from __future__ import annotations

import math

import numpy as np
import pytest

from elasticity_lab.info import compression as cz


def test_shannon_lengths_and_entropy() -> None:
    p = [0.5, 0.25, 0.25]
    assert np.allclose(cz.shannon_code_lengths(p), [1, 2, 2])
    assert cz.entropy_bits(p) == pytest.approx(1.5)
    assert cz.entropy_bits([1.0]) == 0.0


def test_cross_entropy_is_entropy_plus_kl() -> None:
    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(7)), rng.dirichlet(np.ones(7))
    kl = float((p * np.log2(p / q)).sum())
    assert cz.cross_entropy_bits(p, q) == pytest.approx(cz.entropy_bits(p) + kl)
    assert cz.cross_entropy_bits([0.5, 0.5], [1.0, 0.0]) == math.inf


@pytest.mark.parametrize("bad", [[0.5, 0.6], [-0.1, 1.1], [], [[0.5, 0.5]]])
def test_invalid_distributions_are_named(bad) -> None:
    with pytest.raises(ValueError, match=r"^p (must|sums|has)"):
        cz.shannon_code_lengths(bad)


@pytest.mark.parametrize("seed", range(5))
def test_round_trip_and_length_bound_on_random_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    vocab = int(rng.integers(2, 40))
    tokens = rng.integers(0, vocab, size=int(rng.integers(1, 400))).tolist()
    for model_factory in (lambda: cz.AdaptiveNGram(vocab, order=1), lambda: cz.AdaptiveNGram(vocab, order=0, alpha=0.05)):
        code = cz.arithmetic_encode(tokens, model_factory())
        assert cz.arithmetic_decode(code, model_factory()) == tokens
        ideal = cz.model_code_length_bits(tokens, model_factory())
        assert code.n_bits <= ideal + 2 + 1e-6
        assert code.n_bits >= ideal - 2  # no code beats the model by more than its rounding
        assert set(code.bits) <= {"0", "1"}


def test_round_trip_with_a_fixed_skewed_model() -> None:
    p = np.array([0.98, 0.01, 0.005, 0.005])
    tokens = [0] * 50 + [3, 1, 2] + [0] * 10
    code = cz.arithmetic_encode(tokens, lambda prefix: p)
    assert cz.arithmetic_decode(code, lambda prefix: p) == tokens
    assert code.n_bits <= cz.model_code_length_bits(tokens, lambda prefix: p) + 2


def test_empty_input() -> None:
    code = cz.arithmetic_encode([], cz.AdaptiveNGram(4))
    assert code.bits == "" and code.n_tokens == 0
    assert cz.arithmetic_decode(code, cz.AdaptiveNGram(4)) == []
    assert cz.model_code_length_bits([], cz.AdaptiveNGram(4)) == 0.0


def test_zero_probability_is_a_clear_error() -> None:
    model = lambda prefix: np.array([0.5, 0.5, 0.0])  # noqa: E731
    with pytest.raises(ValueError, match="token 2 at position 1 has probability 0"):
        cz.arithmetic_encode([0, 2], model)
    with pytest.raises(ValueError, match="probability 0"):
        cz.model_code_length_bits([0, 2], model)
    with pytest.raises(ValueError, match=r"tokens\[0\]=5 is not allowed.*the model's vocabulary"):
        cz.arithmetic_encode([5], model)


def test_markov_source_entropy_rate_is_the_floor() -> None:
    src = cz.MarkovSource(vocab_size=8, concentration=0.3, seed=1)
    assert np.allclose(src.transition.sum(axis=1), 1) and src.stationary.sum() == pytest.approx(1)
    assert np.allclose(src.stationary @ src.transition, src.stationary)
    tokens = src.sample(20000, seed=2)
    bits = cz.model_code_length_bits(tokens, src) / len(tokens)
    assert bits == pytest.approx(src.entropy_rate_bits(), rel=0.03)
    # an adaptive model of the right order approaches it from above; a context-free one cannot
    assert cz.model_code_length_bits(tokens, cz.AdaptiveNGram(8, 1)) / len(tokens) < bits + 0.05
    assert cz.model_code_length_bits(tokens, cz.AdaptiveNGram(8, 0)) / len(tokens) > bits + 0.2


def test_same_seed_same_numbers() -> None:
    a = cz.compression_table([0.3], n_tokens=200, seed=3)
    b = cz.compression_table([0.3], n_tokens=200, seed=3)
    assert a.equals(b)
    assert not a.equals(cz.compression_table([0.3], n_tokens=200, seed=4))


def test_compression_table_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="n_tokens"):
        cz.compression_table([0.3], n_tokens=0)
    with pytest.raises(ValueError, match="concentrations"):
        cz.compression_table([-1.0], n_tokens=10)


def test_baselines_and_zen() -> None:
    text = cz.zen_of_python()
    assert text.startswith("The Zen of Python")
    sizes = cz.baseline_compressed_bits(text.encode())
    assert set(sizes) == {"zlib", "bz2", "lzma"} and all(0 < v < 8 * len(text) for v in sizes.values())
