"""Seeded categorical draws in blocks: the random source of the micro-world's generator."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np


class Draws:
    """Uniform random numbers from a seeded numpy generator, drawn in blocks and consumed one by one.

    Why: a pre-training corpus needs millions of tiny categorical draws; numpy's per-call overhead
    made generation the bottleneck. Drawing uniforms in blocks keeps the stream identical for a
    given seed (``Generator.random`` consumes the same bits whatever the block size).
    """

    def __init__(self, seed: Sequence[int] | int, block: int = 1 << 15) -> None:
        self._rng = np.random.default_rng(seed)
        self._block = block
        self._buf: list[float] = []
        self._pos = 0

    def random(self) -> float:
        if self._pos >= len(self._buf):
            self._buf = self._rng.random(self._block).tolist()
            self._pos = 0
        x = self._buf[self._pos]
        self._pos += 1
        return x

    def integers(self, n: int) -> int:
        return min(int(self.random() * n), n - 1)

    def categorical(self, cdf: list[float]) -> int:
        return min(bisect.bisect_right(cdf, self.random()), len(cdf) - 1)

    def sample_distinct(self, n: int, k: int) -> list[int]:
        pool = list(range(n))
        return [pool.pop(self.integers(len(pool))) for _ in range(k)]


def cdf_of(p: np.ndarray) -> list[float]:
    return np.cumsum(p).tolist()
