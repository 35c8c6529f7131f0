"""Chapter 1's checks pass the reference solutions and fail wrong answers with a reason."""

from __future__ import annotations

import numpy as np

from elasticity_lab.exercises import ch01, solutions


def _stub(*args):
    raise NotImplementedError


def test_solutions_pass() -> None:
    assert ch01.check_code_lengths(solutions.code_lengths).passed
    assert ch01.check_cross_entropy(solutions.cross_entropy).passed
    assert ch01.check_bits_per_token(solutions.bits_per_token).passed


def test_stubs_are_not_attempted() -> None:
    for check in (ch01.check_code_lengths, ch01.check_cross_entropy, ch01.check_bits_per_token):
        result = check(_stub)
        assert not result.attempted and not result.passed


def test_wrong_answers_fail_with_a_reason() -> None:
    natural = ch01.check_code_lengths(lambda p: -np.log(p))
    assert not natural.passed and "natural log" in natural
    no_inf = ch01.check_cross_entropy(lambda p, q: float(-(p * np.log2(q + 1e-300)).sum()))
    assert not no_inf.passed and "infinite" in no_inf and "natural log" not in no_inf
    nats = ch01.check_cross_entropy(lambda p, q: float(-(p[p > 0] * np.log(q[p > 0])).sum()))
    assert not nats.passed and "natural log" in nats
    crash = ch01.check_bits_per_token(lambda toks, model: 1 / 0)
    assert not crash.passed and "ZeroDivisionError" in crash
