"""Checks for chapter 6, "Resistance: forward and inverse alignment"."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from elasticity_lab.exercises import ExerciseResult, run_check


def check_sign_test(fn: Callable[[Sequence[float]], float]) -> ExerciseResult:
    """Exercise 6.1: the two-sided sign test p-value of paired differences (inverse − forward), ties dropped."""
    from scipy import stats

    def want(d: Sequence[float]) -> float:
        d = np.asarray(d, dtype=float)
        lower, higher = int((d < 0).sum()), int((d > 0).sum())
        return float(stats.binomtest(lower, lower + higher, 0.5).pvalue)

    def cases(f: Callable[[Sequence[float]], float]) -> None:
        got = float(f([-0.1, -0.2, -0.3]))
        if math.isclose(got, 0.125):
            raise AssertionError("for three seeds that all agree you returned 0.125, a one-sided p; the test is two-sided (0.25)")
        assert math.isclose(got, 0.25), f"for differences [-0.1, -0.2, -0.3] expected p = 0.25, got {got}"
        got = float(f([-0.1, 0.0, -0.2, -0.3, -0.05]))
        if math.isclose(got, want([-0.1, 1.0, -0.2, -0.3, -0.05])) or math.isclose(got, want([-0.1, -1.0, -0.2, -0.3, -0.05])):
            raise AssertionError("a tie (difference exactly 0) favours neither direction: drop it before counting")
        for d in ([-0.1, 0.0, -0.2, -0.3, -0.05], [0.2, -0.1, 0.3, 0.4, -0.2, 0.1, 0.05], [-1.0] * 10):
            got, w = float(f(d)), want(d)
            assert math.isclose(got, w, rel_tol=1e-9), f"for differences {d} expected p = {w:.6f}, got {got:.6f}"

    return run_check("Exercise 6.1 (sign test over seeds)", fn, cases)


def check_answer_entropy(fn: Callable[[np.ndarray, float, float], float]) -> ExerciseResult:
    """Exercise 6.2: entropy (nats) of the next-token distribution that generation samples from (temperature, then top-p)."""
    import torch

    from elasticity_lab.lm.metrics import answer_distribution

    def want(z: np.ndarray, t: float, p: float) -> float:
        lq = answer_distribution(torch.tensor(z, dtype=torch.float64).unsqueeze(0), temperature=t, top_p=p)[0]
        q = lq.exp()
        return float(-(torch.where(q > 0, q * lq, torch.zeros_like(q))).sum())

    def no_top_p(z: np.ndarray, t: float) -> float:
        return want(z, t, 1.0)

    def cases(f: Callable[[np.ndarray, float, float], float]) -> None:
        rng = np.random.default_rng(6)
        z = rng.normal(size=12) * 2
        got = float(f(z, 1.0, 1.0))
        if math.isclose(got, want(z, 1.0, 1.0) / math.log(2), rel_tol=1e-6):
            raise AssertionError("you returned bits; the losses in this chapter are in nats")
        assert math.isclose(got, want(z, 1.0, 1.0), rel_tol=1e-6), f"at temperature 1 without top-p expected {want(z, 1.0, 1.0):.6f}, got {got:.6f}"
        got = float(f(z, 0.5, 0.8))
        if math.isclose(got, no_top_p(z, 0.5), rel_tol=1e-6):
            raise AssertionError("with top_p = 0.8 keep only the most likely tokens whose mass reaches 0.8, then renormalise")
        assert math.isclose(got, want(z, 0.5, 0.8), rel_tol=1e-6), f"at temperature 0.5, top-p 0.8 expected {want(z, 0.5, 0.8):.6f}, got {got:.6f}"
        z2 = np.array([3.0, 2.9, 2.8, 0.0, -1.0, -2.0])
        for t, p in ((0.05, 0.95), (2.0, 0.5), (1.0, 0.9)):
            got, w = float(f(z2, t, p)), want(z2, t, p)
            assert math.isclose(got, w, rel_tol=1e-6, abs_tol=1e-9), f"for logits {z2.tolist()}, temperature {t}, top-p {p} expected {w:.6f}, got {got:.6f} (temperature first, then top-p)"

    return run_check("Exercise 6.2 (entropy of the answers' process)", fn, cases)


def check_fraction_inverse_lower(fn: Callable[[pd.DataFrame], float]) -> ExerciseResult:
    """Exercise 6.3: the share of (task, pair) cells whose mean inverse loss over seeds is below the mean forward loss."""

    def table(cells: dict[tuple[str, str], tuple[list[float], list[float]]]) -> pd.DataFrame:
        rows = []
        for (task, pair), (fwd, inv) in cells.items():
            for seed, (a, b) in enumerate(zip(fwd, inv)):
                rows += [{"task": task, "pair": pair, "seed": seed, "direction": "forward", "loss": a},
                         {"task": task, "pair": pair, "seed": seed, "direction": "inverse", "loss": b}]
        return pd.DataFrame(rows)

    def cases(f: Callable[[pd.DataFrame], float]) -> None:
        t = table({("safety", "1-2"): ([1.0, 1.0, 1.0], [0.5, 0.5, 0.5]), ("safety", "2-3"): ([1.0, 1.0, 1.0], [2.0, 2.0, 2.0])})
        got = float(f(t))
        assert math.isclose(got, 0.5), f"one cell of two has inverse < forward: expected 0.5, got {got}"
        # per-seed majority and cell means disagree here: the cell mean decides
        t = table({("safety", "1-2"): ([1.0, 1.0, 1.0], [0.9, 0.9, 3.0]), ("truth", "1-2"): ([1.0, 1.0, 1.0], [0.1, 0.2, 0.3]),
                   ("truth", "1-3"): ([2.0, 2.0, 2.0], [2.5, 1.5, 2.1])})
        got = float(f(t))
        if math.isclose(got, 2 / 3):  # counting seeds (6 of 9) and a per-cell majority of seeds (2 of 3) both give 2/3
            raise AssertionError("average each cell over its seeds first, then compare its mean inverse loss with its mean "
                                 "forward loss; counting seeds, or taking the seeds' majority per cell, is not the same")
        assert math.isclose(got, 1 / 3), f"expected 1/3 (only truth 1-2 has a lower mean inverse loss), got {got}"
        got = float(f(t.sample(frac=1.0, random_state=0)))
        assert math.isclose(got, 1 / 3), "the answer must not depend on the order of the rows"
        t = table({("safety", "1-2"): ([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]), ("truth", "1-2"): ([1.0, 1.0, 1.0], [0.5, 0.5, 0.5])})
        got = float(f(t))
        assert math.isclose(got, 0.5), f"a cell whose mean inverse loss equals its mean forward loss is not lower: expected 0.5, got {got}"

    return run_check("Exercise 6.3 (fraction of cells with inverse < forward)", fn, cases)


def check_fraction_floor_lower(fn: Callable[[pd.DataFrame], float], *,
                               tables: dict[str, pd.DataFrame] | None = None) -> ExerciseResult:
    """Exercise 6.4 (a control): the share of (task, pair) cells whose mean inverse *answer entropy* H(q), the floor of
    the loss set by the teacher's answers alone, is below the mean forward one.

    With ``tables`` (label → a resistance table of the chapter, e.g. the pre-trained base and the random-init control),
    a function that passes is applied to every base and answer mode, beside the paper's metric on the loss.
    """

    def table(cells: dict[tuple[str, str], tuple[list[float], list[float], list[float], list[float]]]) -> pd.DataFrame:
        rows = []
        for (task, pair), (h_fwd, h_inv, l_fwd, l_inv) in cells.items():
            for seed in range(len(h_fwd)):
                rows += [{"task": task, "pair": pair, "seed": seed, "direction": "forward", "answer_entropy": h_fwd[seed],
                          "mean_loss": l_fwd[seed]},
                         {"task": task, "pair": pair, "seed": seed, "direction": "inverse", "answer_entropy": h_inv[seed],
                          "mean_loss": l_inv[seed]}]
        return pd.DataFrame(rows)

    def cases(f: Callable[[pd.DataFrame], float]) -> None:
        # the loss says inverse is lower in both cells; the floor (answers' entropy) only in the first
        t = table({("safety", "1-2"): ([0.5, 0.5, 0.5], [0.2, 0.2, 0.2], [1.0, 1.0, 1.0], [0.7, 0.7, 0.7]),
                   ("truth", "1-2"): ([0.3, 0.3, 0.3], [0.4, 0.4, 0.4], [1.0, 1.0, 1.0], [0.9, 0.9, 0.9])})
        got = float(f(t))
        if math.isclose(got, 1.0):
            raise AssertionError("that is the paper's metric on the loss (mean_loss); compare the answers' own entropy, the "
                                 "column `answer_entropy`, which no student and no pre-training enters")
        assert math.isclose(got, 0.5), f"one cell of two has a lower inverse answer entropy: expected 0.5, got {got}"
        # a cell mean decides, not a majority of seeds; equal floors are not lower
        t = table({("safety", "1-2"): ([0.5, 0.5, 0.5], [0.4, 0.4, 0.9], [1.0] * 3, [1.0] * 3),
                   ("truth", "1-2"): ([0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0] * 3, [0.5] * 3),
                   ("truth", "1-3"): ([0.6, 0.6, 0.6], [0.1, 0.2, 0.3], [1.0] * 3, [1.1] * 3)})
        got = float(f(t.sample(frac=1.0, random_state=0)))
        if math.isclose(got, 2 / 3):
            raise AssertionError("average each cell over its seeds first, then compare; and a floor that is equal in both "
                                 "directions (greedy answers have entropy 0) is not lower")
        assert math.isclose(got, 1 / 3), f"expected 1/3 (only truth 1-3 has a lower mean inverse answer entropy), got {got}"

    result = run_check("Exercise 6.4 (the asymmetry in the answers' entropy alone)", fn, cases)
    if result.passed and tables:
        print("\nThe paper's count on the loss, and the same count on the answers' entropy alone (no student trained):")
        counts: dict[tuple[str, str], float] = {}
        for label, t in tables.items():
            for mode, g in t.groupby("answer_mode", sort=False):
                loss_lower = counts[label, mode] = fraction_of_cells(g, "mean_loss")
                floor_lower = float(fn(g))
                share = float(g["answer_entropy"].mean() / g["mean_loss"].mean()) if g["mean_loss"].mean() > 0 else math.nan
                share_text = (f"{share:.0%}" if math.isfinite(share) else "not measurable") + (
                    " (over 100 %: the loss is measured on these same answers, a noisy estimate that can fall just under their "
                    "entropy)" if math.isfinite(share) and share > 1 else "")
                print(f"{label:>28}, {mode:>8} answers: inverse lower on the loss in {loss_lower:.0%} of cells, on the "
                      f"answers' entropy alone in {floor_lower:.0%}; the entropy is {share_text} of the mean loss")
        first = next(iter(tables))
        for (label, mode), count in counts.items():
            ref = counts.get((first, mode))
            if label != first and ref is not None and count >= ref:
                print(f"In {label} ({mode} answers) the paper's count is {count:.0%}, at least the {ref:.0%} of {first}: "
                      f"the 'finding' appears in a control, where it is not evidence about pre-training"
                      f"{_moved_words(tables[label])}.")
        print("Where the answers' own entropy already favours inverse, part of the loss favours it before any student is "
              "trained (how large a part: the entropy's share of the loss above); where a control shows the count as well, "
              "the count can come from fine-tuning on such answers rather than from pre-training.")
    return result


def _moved_words(table: pd.DataFrame) -> str:
    """Where stage 1 moved a control's behaviour (the chapter's verdict counts a control only there), as a clause."""
    from elasticity_lab.experiments.resistance import stage1_lift

    try:
        lift = stage1_lift(table)
    except (KeyError, ValueError):  # a table without stage 1's shares: say nothing
        return ""
    moved = lift.loc[lift["moved"], "task"].tolist()
    if len(moved) == len(lift) or lift["lift"].isna().all():  # moved everywhere, or not measured (no judge)
        return ""
    if not moved:
        return ("; but stage 1 moved its behaviour on no task, so its checkpoints differ in training time rather than in "
                "behaviour, and the chapter's verdict does not count it")
    return (f"; stage 1 moved its behaviour only on {', '.join(moved)} (where the chapter's verdict counts it; elsewhere its "
            "checkpoints differ in training time rather than in behaviour)")


def fraction_of_cells(table: pd.DataFrame, column: str) -> float:
    """The share of (task, pair) cells whose mean inverse ``column`` over seeds is below the mean forward one."""
    means = table.groupby(["task", "pair", "direction"])[column].mean().unstack("direction")
    return float((means["inverse"] < means["forward"]).mean())
