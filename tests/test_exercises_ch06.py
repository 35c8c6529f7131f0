"""Chapter 6's checks accept the reference solutions and reject typical wrong answers."""

from __future__ import annotations

import math

import numpy as np

from elasticity_lab.exercises import ch06, solutions


def test_sign_test() -> None:
    assert ch06.check_sign_test(solutions.sign_test_p).passed
    assert not ch06.check_sign_test(lambda d: solutions.sign_test_p(d) / 2).passed  # one-sided
    assert not ch06.check_sign_test(lambda d: solutions.sign_test_p([x if x != 0 else 1.0 for x in d])).passed  # ties counted


def test_answer_entropy() -> None:
    assert ch06.check_answer_entropy(solutions.answer_entropy).passed
    assert not ch06.check_answer_entropy(lambda z, t, p: solutions.answer_entropy(z, t, 1.0)).passed  # no top-p
    assert not ch06.check_answer_entropy(lambda z, t, p: solutions.answer_entropy(z, t, p) / math.log(2)).passed  # bits

    def top_p_first(z, t, p):
        q = np.exp(z - np.max(z))
        q /= q.sum()
        order = np.argsort(q)
        remove = np.cumsum(q[order]) <= 1 - p
        remove[-1] = False
        z = np.array(z, dtype=float)
        z[order[remove]] = -np.inf
        return solutions.answer_entropy(z, t, 1.0)

    assert not ch06.check_answer_entropy(top_p_first).passed


def test_fraction_inverse_lower() -> None:
    assert ch06.check_fraction_inverse_lower(solutions.fraction_inverse_lower).passed
    per_seed = lambda t: float((t[t.direction == "inverse"]["loss"].to_numpy() < t[t.direction == "forward"]["loss"].to_numpy()).mean())  # noqa: E731
    assert not ch06.check_fraction_inverse_lower(per_seed).passed
    at_most = lambda t: float((lambda m: (m["inverse"] <= m["forward"]).mean())(
        t.groupby(["task", "pair", "direction"])["loss"].mean().unstack("direction")))  # noqa: E731
    assert not ch06.check_fraction_inverse_lower(at_most).passed  # a tie is not "inverse lower"


def test_stub_is_not_attempted() -> None:
    def stub(*args):
        raise NotImplementedError

    assert not ch06.check_sign_test(stub).attempted
