"""Reference solutions of every chapter's exercises, kept in one place (teachers: strip this module
from the students' copy to hide them). Each chapter adds its functions under a ``# Chapter N`` heading."""

from __future__ import annotations

# Chapter 1

import math

import numpy as np


def code_lengths(p: np.ndarray) -> np.ndarray:
    """Exercise 1.1: the ideal code length of each symbol, in bits."""
    return -np.log2(np.asarray(p, dtype=float))


def cross_entropy(p: np.ndarray, q: np.ndarray) -> float:
    """Exercise 1.2: expected bits to code data from p with a code built for q."""
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    support = p > 0
    if np.any(q[support] == 0):
        return math.inf
    return float(-(p[support] * np.log2(q[support])).sum())


def bits_per_token(tokens: list[int], model) -> float:
    """Exercise 1.3: the model's average -log2 p(token | prefix) over the sequence."""
    total = sum(-math.log2(model(tokens[:i])[t]) for i, t in enumerate(tokens))
    return total / len(tokens)
