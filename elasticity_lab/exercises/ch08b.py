"""Checks for chapter 8's section "Does the algorithm matter?" (the alignment algorithms)."""

from __future__ import annotations

import math
from collections.abc import Callable

from elasticity_lab.exercises import ExerciseResult, run_check


def check_dpo_loss(fn: Callable[..., object]) -> ExerciseResult:
    """Exercise 8.3: the DPO loss from summed response log-probabilities of the policy and the frozen reference."""

    def cases(f: Callable[..., object]) -> None:
        import torch

        from elasticity_lab.lm.preference import dpo_loss

        g = torch.Generator().manual_seed(0)
        pc, pr, rc, rr = (-10 * torch.rand(6, generator=g) for _ in range(4))
        want = float(dpo_loss(pc, pr, rc, rr, 0.1))
        got = float(f(pc, pr, rc, rr, 0.1))
        if math.isclose(got, float(dpo_loss(pc, pr, torch.zeros(6), torch.zeros(6), 0.1)), rel_tol=1e-5):
            raise AssertionError("DPO compares log-ratios to the reference: subtract ref_chosen_logps and ref_rejected_logps")
        if math.isclose(got, float(dpo_loss(pr, pc, rr, rc, 0.1)), rel_tol=1e-5):
            raise AssertionError("the sign is flipped: the loss must fall as the chosen response's log-ratio rises above the rejected one's")
        if math.isclose(got, 6 * want, rel_tol=1e-5):
            raise AssertionError("average over the pairs of the batch (mean), do not sum")
        assert math.isclose(got, want, rel_tol=1e-5), f"expected {want:.6f} on a random batch, got {got:.6f}"
        same = float(f(pc, pr, pc, pr, 0.5))
        assert math.isclose(same, math.log(2), rel_tol=1e-5), f"a policy equal to its reference must give log 2 = 0.6931, got {same:.4f}"

    return run_check("Exercise 8.3 (the DPO loss)", fn, cases)
