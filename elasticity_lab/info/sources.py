"""Seeded token sources for the theory chapters: Zipfian Markov text and real English word frequencies.

Why two: the paper's Pareto assumption is motivated by Zipf's law, so chapter 2 checks it on data that
obeys Zipf by construction *and* on data that merely comes from a language (``wordfreq``'s English
frequencies spelled out letter by letter, each word a response of its token tree).
"""

from __future__ import annotations

import numpy as np

from elasticity_lab.core.config import check_positive
from elasticity_lab.info.measures import zipf_probs
from elasticity_lab.info.tokentree import PAD

__all__ = ["zipf_probs", "zipf_markov_chain", "markov_entropy_rate", "markov_leaf_probs", "zipf_markov_sequences",
           "word_sequences"]


def zipf_markov_chain(vocab_size: int, *, exponent: float = 1.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(initial, transition)`` of a first-order Markov chain whose every row is a Zipf law over a
    random permutation of the vocabulary (so the next token depends on the current one)."""
    check_positive("vocab_size", vocab_size)
    rng = np.random.default_rng(seed)
    base = zipf_probs(vocab_size, exponent)
    trans = np.stack([base[rng.permutation(vocab_size)] for _ in range(vocab_size)])
    return base.copy(), trans


def markov_entropy_rate(initial: np.ndarray, transition: np.ndarray) -> float:
    """Bits per token of the chain in its stationary regime: Σ_i π_i H(P_i·)."""
    vals, vecs = np.linalg.eig(transition.T)
    pi = np.real(vecs[:, np.argmin(np.abs(vals - 1))])
    pi = pi / pi.sum()
    row_h = -(transition * np.log2(np.where(transition > 0, transition, 1))).sum(axis=1)
    return float(pi @ row_h)


def markov_leaf_probs(initial: np.ndarray, transition: np.ndarray, depth: int) -> np.ndarray:
    """Exact probabilities of all ``V**depth`` paths of the chain (leaves of its depth-d token tree),
    in lexicographic order. Each is a product of ``depth`` factors: by the central limit theorem their
    logarithms tend to a normal law, which is why a deep tree's masses look log-normal, not Pareto."""
    check_positive("depth", depth)
    v = initial.size
    if v**depth > 2**23:
        raise ValueError(f"vocab_size**depth = {v**depth} leaves is too many (max 2**23).")
    probs = initial.copy()
    last = np.arange(v)
    for _ in range(int(depth) - 1):
        probs = (probs[:, None] * transition[last]).ravel()
        last = np.tile(np.arange(v), last.size)
    return probs


def zipf_markov_sequences(n: int, length: int, vocab_size: int, *, exponent: float = 1.1, seed: int = 0) -> np.ndarray:
    """``n`` sequences of ``length`` tokens sampled from :func:`zipf_markov_chain` (same seed, same chain)."""
    check_positive("n", n)
    check_positive("length", length)
    initial, trans = zipf_markov_chain(vocab_size, exponent=exponent, seed=seed)
    rng = np.random.default_rng([seed, 1])
    cdfs = np.cumsum(trans, axis=1)
    cdfs[:, -1] = 1.0
    out = np.empty((int(n), int(length)), dtype=np.int64)
    c0 = np.cumsum(initial)
    c0[-1] = 1.0
    out[:, 0] = np.searchsorted(c0, rng.random(int(n)), side="right")
    for c in range(1, int(length)):
        u = rng.random(int(n))
        out[:, c] = (cdfs[out[:, c - 1]] < u[:, None]).sum(axis=1)
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
