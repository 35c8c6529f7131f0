"""The one home of the basic measures on probability vectors: validation, entropy, cross-entropy, KL, Zipf.

Why one module: the compression, token-tree, theory and micro-world code all need "is this a
distribution?" and "how many bits (or nats) is it?"; one definition keeps their units and
tolerances stated in one place. ``unit`` is ``"bits"`` (log base 2: code lengths) or ``"nats"``
(natural log: what a language model's loss is in).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from elasticity_lab.core.config import check_choice, check_positive

UNITS = ("bits", "nats")
_LOG = {"bits": np.log2, "nats": np.log}


def check_distribution(name: str, p: Sequence[float] | np.ndarray, *, atol: float = 1e-9) -> np.ndarray:
    """``p`` as a float array if it is a probability vector (1-D, finite, >= 0, sums to 1 within ``atol``);
    otherwise a ValueError naming it."""
    arr = np.asarray(p, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D probability vector; got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} has negative or non-finite entries (min {float(np.nanmin(arr))!r}); probabilities must be finite and >= 0.")
    total = float(arr.sum())
    if abs(total - 1.0) > atol:
        raise ValueError(f"{name} sums to {total!r}, not 1; a distribution must sum to 1.")
    return arr


def entropy(p: Sequence[float] | np.ndarray, unit: str = "bits") -> float:
    """H(p) = -Σ p log p (0 log 0 = 0), in ``unit``. ``p`` is not validated: callers validate once."""
    check_choice("unit", unit, UNITS)
    arr = np.asarray(p, dtype=np.float64)
    nz = arr[arr > 0]
    return float(-(nz * _LOG[unit](nz)).sum())


def bernoulli_entropy(p: float, unit: str = "bits") -> float:
    """H of a coin with P(heads) = ``p``."""
    return entropy([p, 1.0 - p], unit)


def _pair(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray, unit: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``p`` and ``q`` as float arrays of one shape and the mask of p's support; the mask is None where q
    gives zero probability to something p can emit (cross-entropy and KL are then infinite)."""
    check_choice("unit", unit, UNITS)
    pa, qa = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if pa.shape != qa.shape:
        raise ValueError(f"p and q must have the same length, got {pa.size} and {qa.size}.")
    mask = pa > 0
    return pa, qa, (None if np.any(qa[mask] <= 0) else mask)


def cross_entropy(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray, unit: str = "bits") -> float:
    """H(p, q) = -Σ p log q: the ideal code length of data from ``p`` under a model ``q`` (inf if q misses p).

    Equals H(p) + KL(p||q): a wrong model costs exactly its KL divergence in extra code length.
    """
    pa, qa, mask = _pair(p, q, unit)
    if mask is None:
        return math.inf
    return float(-(pa[mask] * _LOG[unit](qa[mask])).sum())


def kl_divergence(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray, unit: str = "bits") -> float:
    """KL(p||q) = Σ p log(p/q), summed term by term (no cancellation of two large entropies)."""
    pa, qa, mask = _pair(p, q, unit)
    if mask is None:
        return math.inf
    return float((pa[mask] * _LOG[unit](pa[mask] / qa[mask])).sum())


def zipf_probs(n: int, exponent: float = 1.1) -> np.ndarray:
    """Zipf probabilities over ranks 1..n: p(r) ∝ r^(-exponent), natural language's word frequencies."""
    check_positive("n", n)
    check_positive("exponent", exponent, allow_zero=True)
    w = np.arange(1, int(n) + 1, dtype=np.float64) ** (-float(exponent))
    return w / w.sum()
