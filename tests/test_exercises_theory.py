"""Chapters 2-4 exercises: each check passes its reference solution and fails wrong answers."""

from __future__ import annotations

import numpy as np
import pytest

from elasticity_lab.exercises import ch02, ch03, ch04, solutions


def _stub(*args, **kwargs):
    raise NotImplementedError


@pytest.mark.parametrize(
    ("check", "solution", "wrong"),
    [
        (ch02.check_joint_weights, solutions.joint_node_weights, lambda w, s: np.asarray(w).mean(axis=0)),
        (ch02.check_huffman_lengths, solutions.huffman_lengths, lambda p: np.ceil(-np.log2(p))),
        (ch03.check_rate_slope, solutions.rate_slope,
         lambda pi, pp, pa, pt, k, l: solutions.rate_slope(pi, pp, pa, pt, k, l) * np.log(2)),
        (ch03.check_ratio_from_balance, solutions.ratio_from_balance, lambda k, l, gp, gt: k),
        (ch04.check_softest_spring, solutions.softest_spring, lambda sizes: max(sizes, key=sizes.get)),
        (ch04.check_stretches, solutions.stretches, lambda f, sizes: {n: f * s for n, s in sizes.items()}),
    ],
)
def test_check_accepts_solution_and_rejects_wrong(check, solution, wrong) -> None:
    assert check(solution).passed
    bad = check(wrong)
    assert bad.attempted and not bad.passed
    assert not check(_stub).attempted


@pytest.mark.parametrize(
    ("check", "wrong", "hint", "other_wrong"),
    [
        (ch02.check_huffman_lengths, lambda p: np.ceil(-np.log2(p)), "Shannon lengths",
         lambda p: np.full(len(p), int(np.ceil(np.log2(len(p)))) + 1)),
        (ch03.check_ratio_from_balance, lambda k, l, gp, gt: k, "ratio at l = 0 only", lambda k, l, gp, gt: k - l * gt / gp),
        (ch04.check_softest_spring, lambda sizes: max(sizes, key=sizes.get), "stiffest spring",
         lambda sizes: sorted(sizes, key=sizes.get)[len(sizes) // 2] if len(sizes) > 2 else "neither"),
        (ch04.check_stretches, lambda f, sizes: {n: f * s for n, s in sizes.items()}, "divided by the stiffness",
         lambda f, sizes: {n: f / s ** 2 for n, s in sizes.items()}),
    ],
)
def test_check_hints_at_the_likely_mistake_only(check, wrong, hint, other_wrong) -> None:
    bad = check(wrong)
    assert not bad.passed and hint in str(bad)
    other = check(other_wrong)
    assert not other.passed and hint not in str(other)
