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
