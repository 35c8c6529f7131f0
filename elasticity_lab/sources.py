"""Seeded token sources for the theory chapters: Zipfian Markov text and real English word frequencies.

Why two: the paper's Pareto assumption is motivated by Zipf's law, so chapter 2 checks it on data that
obeys Zipf by construction *and* on data that merely comes from a language (``wordfreq``'s English
frequencies spelled out letter by letter, each word a response of its token tree).
"""

from __future__ import annotations

import numpy as np

from elasticity_lab.config import check_positive
from elasticity_lab.tokentree import PAD

__all__ = ["zipf_probs", "zipf_markov_sequences", "word_sequences"]


def zipf_probs(n: int, exponent: float = 1.1) -> np.ndarray:
    """p(r) ∝ r^(-exponent) for ranks r = 1..n."""
    check_positive("n", n)
    check_positive("exponent", exponent, allow_zero=True)
    w = np.arange(1, int(n) + 1, dtype=float) ** (-float(exponent))
    return w / w.sum()


def zipf_markov_sequences(n: int, length: int, vocab_size: int, *, exponent: float = 1.1, seed: int = 0) -> np.ndarray:
    """``n`` sequences of ``length`` tokens from a first-order Markov chain whose every row is a Zipf law
    over a random permutation of the vocabulary (so the next token depends on the current one)."""
    check_positive("n", n)
    check_positive("length", length)
    check_positive("vocab_size", vocab_size)
    rng = np.random.default_rng(seed)
    base = zipf_probs(vocab_size, exponent)
    cdfs = np.stack([np.cumsum(base[rng.permutation(vocab_size)]) for _ in range(vocab_size)])
    cdfs[:, -1] = 1.0
    out = np.empty((int(n), int(length)), dtype=np.int64)
    out[:, 0] = np.searchsorted(np.cumsum(base), rng.random(int(n)), side="right").clip(max=vocab_size - 1)
    for c in range(1, int(length)):
        u = rng.random(int(n))
        rows = cdfs[out[:, c - 1]]
        out[:, c] = (rows < u[:, None]).sum(axis=1).clip(max=vocab_size - 1)
    return out


def word_sequences(n_words: int = 20000, lang: str = "en", max_len: int = 12) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The ``n_words`` most frequent words of ``lang`` (from ``wordfreq``, offline) as letter sequences.

    Returns ``(tokens, weights, words)``: tokens are letter ids ``a``=0 … ``z``=25 padded with ``PAD``
    (words with other characters are skipped), weights the words' frequencies renormalised to sum to 1.
    """
    check_positive("n_words", n_words)
    from wordfreq import top_n_list, word_frequency

    words = [w for w in top_n_list(lang, int(n_words)) if w.isascii() and w.isalpha() and w.islower()]
    tokens = np.full((len(words), max_len), PAD, dtype=np.int64)
    for i, w in enumerate(words):
        ids = [ord(ch) - 97 for ch in w[:max_len]]
        tokens[i, : len(ids)] = ids
    weights = np.array([word_frequency(w, lang) for w in words])
    return tokens, weights / weights.sum(), words
