"""Chapter 5's checks accept the reference solutions and reject typical wrong answers."""

from __future__ import annotations

import math

import numpy as np

from elasticity_lab.exercises import ch05, solutions


def test_response_labels() -> None:
    assert ch05.check_response_labels(solutions.response_labels).passed
    assert not ch05.check_response_labels(lambda ids, a: list(ids)).passed
    keep_assistant = lambda ids, a: [-100] * ids.index(a) + list(ids[ids.index(a):])  # noqa: E731
    assert not ch05.check_response_labels(keep_assistant).passed


def test_entropy_rate() -> None:
    assert ch05.check_entropy_rate(solutions.entropy_rate).passed
    nats = lambda p, h, n: solutions.entropy_rate(p, h, n) * math.log(2)  # noqa: E731
    assert not ch05.check_entropy_rate(nats).passed
    no_type = lambda p, h, n: float(np.dot(p, h) / np.dot(p, n) / math.log(2))  # noqa: E731
    assert not ch05.check_entropy_rate(no_type).passed


def test_token_kl() -> None:
    assert ch05.check_token_kl(solutions.token_kl).passed
    assert not ch05.check_token_kl(lambda b, t, m: solutions.token_kl(t, b, m)).passed
    assert not ch05.check_token_kl(lambda b, t, m: solutions.token_kl(b, t, np.ones(len(m), bool))).passed


def test_stub_is_not_attempted() -> None:
    def stub(*args):
        raise NotImplementedError

    assert not ch05.check_token_kl(stub).attempted


def test_beats_control() -> None:
    assert ch05.check_beats_control(solutions.beats_control).passed
    rates_not_distances = lambda b, c, p, n: b > c  # noqa: E731
    assert not ch05.check_beats_control(rates_not_distances).passed
    no_noise = lambda b, c, p, n: abs(c - p) > abs(b - p)  # noqa: E731
    assert "sampling noise" in ch05.check_beats_control(no_noise)
    fixed_n = lambda b, c, p, n: solutions.beats_control(b, c, p, 128)  # noqa: E731
    assert "use n_prompts" in ch05.check_beats_control(fixed_n)


def test_beats_control_applies_a_passing_function_to_the_chapter_rates(capsys) -> None:
    rates = {"learnt": (0.29, 0.0, 0.30), "rare": (0.047, 0.008, 0.03)}
    assert ch05.check_beats_control(solutions.beats_control, rates=rates, n_prompts=128).passed
    out = capsys.readouterr().out
    assert "1 of 2 behaviours" in out and "the control does as well" in out
    # a wrong answer is not applied
    ch05.check_beats_control(lambda b, c, p, n: True, rates=rates, n_prompts=128)
    assert "Applied to" not in capsys.readouterr().out
