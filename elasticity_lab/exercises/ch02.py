"""Checks for chapter 2, "Token trees and the compression protocol"."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from elasticity_lab.info import tokentree as tt
from elasticity_lab.exercises import ExerciseResult, run_check


def check_joint_weights(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> ExerciseResult:
    """Exercise 2.1: p^D = Σ_i p^{D_i}|D_i| / Σ_i|D_i| for node weights of shape (n_datasets, n_nodes)."""

    def cases(f: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
        w = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
        got = np.asarray(f(w, np.array([3.0, 1.0])), dtype=float)
        assert got.shape == (3,), f"expected one weight per node (shape (3,)), got shape {got.shape}"
        assert np.allclose(got, [0.375, 0.375, 0.25]), (
            f"sizes [3, 1]: expected [0.375, 0.375, 0.25], got {np.round(got, 4).tolist()}"
            + (" (did you average without the sizes?)" if np.allclose(got, [0.25, 0.25, 0.5]) else "")
        )
        rng = np.random.default_rng(2)
        for _ in range(3):
            w = rng.dirichlet(np.ones(6), size=3)
            sizes = rng.integers(1, 1000, size=3).astype(float)
            want = tt.joint_weights(w, sizes)
            got = np.asarray(f(w, sizes), dtype=float)
            assert np.allclose(got, want), f"sizes {sizes.tolist()}: expected {np.round(want, 4).tolist()}, got {np.round(got, 4).tolist()}"

    return run_check("Exercise 2.1 (joint node weights)", fn, cases)


def check_huffman_lengths(fn: Callable[[np.ndarray], np.ndarray]) -> ExerciseResult:
    """Exercise 2.2: Huffman code lengths. Any optimal prefix code passes: Kraft holds and the expected
    length equals the Huffman one."""

    def cases(f: Callable[[np.ndarray], np.ndarray]) -> None:
        rng = np.random.default_rng(5)
        for p in [np.array([0.5, 0.25, 0.125, 0.125]), np.array([0.4, 0.3, 0.2, 0.1]), rng.dirichlet(np.ones(12))]:
            got = np.asarray(f(p))
            assert got.shape == p.shape, f"expected {p.size} lengths, got shape {got.shape}"
            assert np.all(got == np.round(got)) and np.all(got >= 1), f"code lengths must be whole numbers >= 1, got {got.tolist()}"
            kraft = float(np.sum(2.0 ** -got))
            assert kraft <= 1 + 1e-12, f"Kraft sum {kraft:.3f} > 1: no prefix code has these lengths {got.tolist()}"
            want = tt.expected_code_length(tt.huffman_code_lengths(p), p)
            have = float(np.dot(p, got))
            assert abs(have - want) < 1e-9, (
                f"for p={np.round(p, 3).tolist()} your expected length is {have:.4f} bits, the optimum is {want:.4f}"
                + (" (these are Shannon lengths ⌈−log2 p⌉: a valid code, but not the shortest; merge the two lightest "
                   "subtrees instead)" if np.array_equal(got, np.ceil(-np.log2(p) - 1e-12)) else "")
            )

    return run_check("Exercise 2.2 (Huffman code lengths)", fn, cases)
