"""Checks for chapter 10, "Real models on a GPU or Colab"."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from elasticity_lab.exercises import ExerciseResult, run_check

PYTHIA_TOKENS_PER_STEP = 1024 * 2048
"""Pythia's batch: 1024 sequences of 2048 tokens per optimiser step."""


def check_early_drop(fn: Callable[[Sequence[float], Sequence[float]], float]) -> ExerciseResult:
    """Exercise 10.1: the score at n = 0 minus the score at the smallest n > 0 (rows in any order)."""

    def cases(f: Callable[[Sequence[float], Sequence[float]], float]) -> None:
        got = float(f([0, 20, 40, 100], [0.9, 0.5, 0.4, 0.3]))
        if math.isclose(got, 0.6):
            raise AssertionError("the early drop stops at the first n > 0 (here 20), not at the end of the grid")
        assert math.isclose(got, 0.4), f"for y = [0.9, 0.5, 0.4, 0.3] at n = [0, 20, 40, 100] expected 0.4, got {got}"
        shuffled = float(f([40, 0, 100, 20], [0.4, 0.9, 0.3, 0.5]))
        assert math.isclose(shuffled, 0.4), f"the rows may come in any order of n: sort them first (got {shuffled})"
        rise = float(f([0, 10], [0.2, 0.5]))
        assert math.isclose(rise, -0.3), f"a curve that rises gives a negative drop (expected -0.3, got {rise})"
        alone = f([0], [0.7])
        assert alone is not None and math.isnan(float(alone)), f"a curve without an n > 0 must give nan, got {alone}"

    return run_check("Exercise 10.1 (the early drop)", fn, cases)


def check_pythia_tokens(fn: Callable[[str], float]) -> ExerciseResult:
    """Exercise 10.2: the pre-training tokens behind a Pythia revision name such as ``"step143000"``."""

    def cases(f: Callable[[str], float]) -> None:
        got = float(f("step143000"))
        if math.isclose(got, 143000 * 2048):
            raise AssertionError("a step is a batch of 1024 sequences, each 2048 tokens long: multiply by both")
        if math.isclose(got, 143000.0):
            raise AssertionError("the revision names a step count; a step is 1024 × 2048 tokens")
        assert math.isclose(got, 143000 * PYTHIA_TOKENS_PER_STEP), f"expected {143000 * PYTHIA_TOKENS_PER_STEP:.4g}, got {got:.4g}"
        assert float(f("step0")) == 0.0, "step0 is the initialisation: no tokens yet"
        assert math.isclose(float(f("step1000")), 1000 * PYTHIA_TOKENS_PER_STEP), "step1000 must give 1000 × 1024 × 2048"

    return run_check("Exercise 10.2 (tokens behind a Pythia revision)", fn, cases)
