"""Checks for chapter 5, "A micro-world: pre-training a tiny model from scratch"."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from elasticity_lab.exercises import ExerciseResult, run_check

IGNORE = -100


def check_response_labels(fn: Callable[[Sequence[int], int], list[int]]) -> ExerciseResult:
    """Exercise 5.1: labels for response-only loss (-100 up to and including the assistant token)."""

    def cases(f: Callable[[Sequence[int], int], list[int]]) -> None:
        a = 5
        for ids, want in (
            ([2, 4, 10, 11, a, 20, 21, 3], [IGNORE] * 5 + [20, 21, 3]),
            ([2, 4, a, 3], [IGNORE] * 3 + [3]),
            ([2, 4, 9, 9, 9, a, 7, 7, 7, 7, 3], [IGNORE] * 6 + [7, 7, 7, 7, 3]),
        ):
            got = list(f(ids, a))
            assert len(got) == len(ids), f"for {ids} expected {len(ids)} labels (one per token), got {len(got)}"
            if got == [IGNORE] * (want.count(IGNORE) - 1) + ids[want.count(IGNORE) - 1:]:
                raise AssertionError(f"for {ids} the assistant token itself must be masked too: the model never has to predict it")
            assert got == want, f"for ids={ids} expected {want}, got {got}"

    return run_check("Exercise 5.1 (response-only labels)", fn, cases)


def check_entropy_rate(fn: Callable[[Sequence[float], Sequence[float], Sequence[float]], float]) -> ExerciseResult:
    """Exercise 5.2: entropy per token (bits) of a stream of i.i.d. documents of several types."""

    def want(p: Sequence[float], h: Sequence[float], n: Sequence[float]) -> float:
        p_, h_, n_ = map(np.asarray, (p, h, n))
        h_type = -sum(x * math.log(x) for x in p_ if x > 0)
        return (h_type + float(p_ @ h_)) / float(p_ @ n_) / math.log(2)

    def cases(f: Callable[[Sequence[float], Sequence[float], Sequence[float]], float]) -> None:
        for p, h, n in (([1.0], [math.log(8)], [3.0]), ([0.5, 0.5], [0.0, 0.0], [1.0, 1.0]), ([0.2, 0.3, 0.5], [4.0, 2.5, 7.0], [9.0, 12.0, 20.0])):
            got = float(f(p, h, n))
            w = want(p, h, n)
            if math.isclose(got, w * math.log(2), rel_tol=1e-6) and not math.isclose(w, 0.0):
                raise AssertionError(f"for p={p} you returned nats ({got:.4f}); the answer is in bits ({w:.4f})")
            no_type = float(np.dot(p, h)) / float(np.dot(p, n)) / math.log(2)
            if len(p) > 1 and math.isclose(got, no_type, rel_tol=1e-6):
                raise AssertionError(f"for p={p} you left out the entropy of choosing the document type ({got:.4f} vs {w:.4f})")
            assert math.isclose(got, w, rel_tol=1e-6, abs_tol=1e-12), f"for p={p}, h={h}, n={n} expected {w:.6f} bits/token, got {got:.6f}"

    return run_check("Exercise 5.2 (entropy per token of the source)", fn, cases)


def check_token_kl(fn: Callable[[np.ndarray, np.ndarray, np.ndarray], float]) -> ExerciseResult:
    """Exercise 5.3: token-averaged KL(p_base ‖ p_θ) from logits, over masked positions only."""

    def softmax(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    def want(b: np.ndarray, t: np.ndarray, m: np.ndarray) -> float:
        p, q = softmax(b), softmax(t)
        kl = (p * (np.log(p) - np.log(q))).sum(-1)
        return float(kl[m].mean())

    def cases(f: Callable[[np.ndarray, np.ndarray, np.ndarray], float]) -> None:
        rng = np.random.default_rng(5)
        z = rng.normal(size=(4, 6))
        assert math.isclose(float(f(z, z, np.ones(4, dtype=bool))), 0.0, abs_tol=1e-9), "KL of a model to itself must be 0"
        b, t = rng.normal(size=(5, 7)), rng.normal(size=(5, 7)) * 2
        m = np.array([False, True, True, False, True])
        got = float(f(b, t, m))
        w = want(b, t, m)
        if math.isclose(got, want(t, b, m), rel_tol=1e-6):
            raise AssertionError("you computed KL(p_θ ‖ p_base); the book's estimator is KL(p_base ‖ p_θ)")
        if math.isclose(got, want(b, t, np.ones(5, dtype=bool)), rel_tol=1e-6):
            raise AssertionError("average only over the positions where mask is True (the response tokens)")
        assert math.isclose(got, w, rel_tol=1e-6), f"expected {w:.6f} nats, got {got:.6f}"

    return run_check("Exercise 5.3 (KL to the base over response tokens)", fn, cases)


def check_beats_control(fn: Callable[[float, float, float, int], bool], *,
                        rates: Mapping[str, tuple[float, float, float]] | None = None,
                        n_prompts: int | None = None) -> ExerciseResult:
    """Exercise 5.4: is the base closer to the pre-training rate than the no-pre-training control,
    beyond two standard errors ``2·sqrt(p(1−p)/n)`` of a rate measured on ``n`` prompts?

    With ``rates`` (behaviour → (base rate, control rate, pre-training rate)) and ``n_prompts``, a
    function that passes is then applied to every behaviour, so the student sees which of the
    chapter's findings survive the control.
    """

    def noise(p: float, n: int) -> float:
        return 2 * math.sqrt(p * (1 - p) / n)

    def cases(f: Callable[[float, float, float, int], bool]) -> None:
        # a clear case: the base sits on the pre-training rate, the control far from it
        assert bool(f(0.29, 0.0, 0.30, 128)) is True, (
            "base 0.29, control 0.00, pre-training 0.30 on 128 prompts: the base is 0.29 closer, far beyond "
            f"the noise ({noise(0.30, 128):.3f}); expected True")
        # the rates, not the distances: the base refuses more than the control but is further from the text
        if bool(f(0.50, 0.0, 0.03, 128)):
            raise AssertionError("base 0.50, control 0.00, pre-training 0.03: the base's rate is higher, but it is "
                                 "further from the pre-training rate (0.47 against 0.03). Compare distances to the "
                                 "pre-training rate, |rate − p|, not the rates themselves")
        # the control is the closer one
        assert bool(f(0.10, 0.28, 0.30, 128)) is False, (
            "base 0.10, control 0.28, pre-training 0.30: the control is closer to the pre-training rate; expected False")
        # closer, but within the noise
        gap = abs(0.008 - 0.03) - abs(0.047 - 0.03)
        if bool(f(0.047, 0.008, 0.03, 128)):
            raise AssertionError(f"base 0.047, control 0.008, pre-training 0.03 on 128 prompts: the base is closer by "
                                 f"only {gap:.3f}, less than two standard errors ({noise(0.03, 128):.3f}) of a rate "
                                 "measured on 128 prompts; sampling noise alone could do that. Expected False")
        # the noise shrinks with the number of prompts
        few, many = bool(f(0.25, 0.10, 0.30, 16)), bool(f(0.25, 0.10, 0.30, 1000))
        if few == many:
            raise AssertionError("base 0.25, control 0.10, pre-training 0.30: the base is 0.15 closer. On 16 prompts "
                                 f"that is within the noise ({noise(0.30, 16):.3f}), on 1000 prompts it is not "
                                 f"({noise(0.30, 1000):.3f}): use n_prompts in 2·sqrt(p(1 − p)/n)")
        assert not few and many, "expected False on 16 prompts and True on 1000 prompts (base 0.25, control 0.10, pre-training 0.30)"

    result = run_check("Exercise 5.4 (does the base beat the control?)", fn, cases)
    if result.passed and rates is not None:
        if n_prompts is None:
            raise ValueError("n_prompts is required with rates: the noise depends on how many prompts each rate used.")
        print(f"\nApplied to this chapter's base and its random-initialisation control ({n_prompts} prompts per rate):")
        survive = 0
        for behaviour, (base, control, pre) in rates.items():
            ok = bool(fn(base, control, pre, n_prompts))
            survive += ok
            print(f"{behaviour:>18}: base {base:.3f}, control {control:.3f}, pre-training text {pre:.2f} "
                  f"(noise ±{noise(pre, n_prompts):.3f}): "
                  + ("the base is closer to the pre-training rate than the control, beyond the noise" if ok
                     else "the control does as well, within the noise: no evidence here that pre-training set this rate"))
        print(f"{survive} of {len(rates)} behaviours {'shows' if survive == 1 else 'show'} what pre-training taught beyond the control")
    return result
