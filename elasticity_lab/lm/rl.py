"""On-policy RL with the world's exact judge as the reward: RLOO (REINFORCE with a leave-one-out baseline).

Why RLOO, and not PPO or GRPO: the paper aligns with PPO, which trains a *value model* next to the
policy to reduce the variance of the policy gradient. Ahmadian et al. (2024, "Back to Basics")
showed that for language models a REINFORCE estimator with a leave-one-out baseline does as well
without one: sample k responses per prompt, and judge each against the mean reward of the other
k − 1. In the micro-world the reward is the world's exact judge (1 if a response has the aligned
label, 0 otherwise), so there is neither a learned reward model nor a value model to train: the
only model is the policy (and the frozen reference of the KL penalty). GRPO (Shao et al. 2024) is
the same idea with the baseline the *group* mean and the advantage divided by the group's standard
deviation; with a 0/1 reward that division blows up the advantage of a lone success or failure in
a group (std → small) and makes the estimator biased, whereas RLOO's baseline leaves it unbiased.

One step: sample k responses to each of ``batch_size`` prompts (temperature 1, the model's own
distribution, through :func:`elasticity_lab.lm.generation.generate`), reward them, subtract β times
each response's log-ratio to the reference (the KL penalty, as in RLOO and TRL's ``RLOOTrainer``),
take leave-one-out advantages, and take one gradient step on the clipped-ratio loss. With one
update per batch of samples the ratio is 1 and the clipping never acts: the gradient is the plain
REINFORCE one, −mean(A · ∇ log π_θ(y|x)). ``tests/test_rl.py`` checks loss and gradients against
TRL's ``RLOOTrainer`` on the same prompts, responses and hyper-parameters.

A response cut at ``max_new_tokens`` before its end token is trained as if it had ended there (the
text is re-encoded with an end token); the micro-world's answers are at most 12 words, well below
the default limit of 16.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from elasticity_lab.lm.batching import collate, encode_example, pad_id_of
from elasticity_lab.core.config import check_int, check_positive, check_range
from elasticity_lab.core.progress import progress_bar
from elasticity_lab.lm.preference import _prepare, frozen, sequence_logps
from elasticity_lab.lm.presets import cpu_threads
from elasticity_lab.lm.training import SFTConfig, example_order, lr_factor, make_optimizer, model_device, plain_step

Reward = Callable[[Sequence[str], Sequence[str]], Any]


def rloo_advantages(rewards: torch.Tensor, k: int) -> torch.Tensor:
    """A_i = r_i − (1/(k−1)) Σ_{j≠i} r_j within each group of k responses to the same prompt (consecutive rows)."""
    grouped = rewards.view(-1, k)
    baseline = (grouped.sum(1, keepdim=True) - grouped) / (k - 1)
    return (grouped - baseline).view(-1)


def rloo_loss(logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor, epsilon: float = 0.2) -> torch.Tensor:
    """L = −mean min(ρ A, clip(ρ, 1−ε, 1+ε) A) with ρ = exp(log π_θ(y|x) − log π_old(y|x)), per whole response.

    With π_old = π_θ (one update per batch of samples) ρ = 1 and ∇L = −mean(A ∇ log π_θ(y|x)).
    """
    ratio = torch.exp(logps - old_logps)
    return -torch.min(ratio * advantages, ratio.clamp(1 - epsilon, 1 + epsilon) * advantages).mean()


@dataclass(frozen=True)
class RLConfig(SFTConfig):
    """One RLOO stage: the SFT stage's optimiser/LoRA fields, with ``batch_size`` = prompts per step, plus

    ``k`` samples per prompt (≥ 2 for a leave-one-out baseline), ``beta`` the KL-penalty coefficient
    (0: no reference model at all), ``epsilon`` the ratio clip, and the sampling settings. Validated
    on creation. ``epochs`` counts passes over the prompt pool.
    """

    batch_size: int = 8
    k: int = 4
    beta: float = 0.05
    epsilon: float = 0.2
    max_new_tokens: int = 16
    temperature: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("k", self.k, 2, why="the leave-one-out baseline needs another sample")
        check_range("beta", self.beta, 0, why="the KL coefficient; 0: no KL penalty")
        check_range("epsilon", self.epsilon, 0, 1, lo_open=True, hi_open=True, why="the ratio clip")
        check_int("max_new_tokens", self.max_new_tokens, 1)
        check_positive("temperature", self.temperature)
        if self.checkpoint_fractions:
            raise ValueError(f"checkpoint_fractions={self.checkpoint_fractions!r} is not supported by rl_train; leave it empty.")


@dataclass
class RLResult:
    """The trained model and its curve: per step the mean reward of the samples, their KL estimate and the loss."""

    model: Any
    curve: pd.DataFrame


def rl_train(model: Any, tokenizer: Any, prompts: Sequence[str], reward: Reward, config: RLConfig | None = None, *,
             ref_model: Any | None = None, progress: bool = False, copy_model: bool = True,
             on_step: Callable[[int, float], None] | None = None, **overrides: Any) -> RLResult:
    """Align ``model`` by RLOO on ``prompts`` with ``reward(prompts, responses) -> scores``.

    The reference of the KL penalty is ``ref_model``, or a frozen copy of ``model`` before training.
    ``config`` fields can be overridden by keyword. Everything is validated before any training.
    """
    config = dataclasses.replace(config or RLConfig(), **overrides)
    prompts = list(prompts)
    if not prompts:
        raise ValueError("prompts is not allowed to be empty.")
    if not callable(reward):
        raise ValueError(f"reward={reward!r} is not allowed; it must be a function (prompts, responses) -> scores.")
    if ref_model is not None and config.beta == 0:
        raise ValueError("ref_model is not allowed with beta=0 (no KL penalty uses it); pass ref_model=None or beta > 0.")
    if ref_model is not None and ref_model is model:
        raise ValueError("ref_model is not allowed to be the model being trained; pass a frozen copy (or None for one).")
    on_cpu = model_device(model).type == "cpu"
    with cpu_threads(config.threads) if (on_cpu and config.threads) else contextlib.nullcontext():
        return _train(model, tokenizer, prompts, reward, config, ref_model, progress=progress, copy_model=copy_model, on_step=on_step)


def rloo_step_loss(model: Any, ref_model: Any | None, tokenizer: Any, prompts: Sequence[str], responses: Sequence[str],
                   reward: Reward, config: RLConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of one batch of sampled responses (k consecutive ones per prompt), and its statistics."""
    batch = collate([encode_example(tokenizer, p, r) for p, r in zip(prompts, responses)], pad_id_of(tokenizer))
    with torch.no_grad():
        old_logps, _ = sequence_logps(model, batch)
        kl = old_logps - sequence_logps(ref_model, batch)[0] if config.beta > 0 else torch.zeros_like(old_logps)
    scores = torch.as_tensor(np.asarray(reward(list(prompts), list(responses)), dtype=np.float32), device=old_logps.device)
    if scores.shape != old_logps.shape:
        raise ValueError(f"reward returned {tuple(scores.shape)} scores for {len(prompts)} responses; it must return one per response.")
    advantages = rloo_advantages(scores - config.beta * kl, config.k)
    logps, _ = sequence_logps(model, batch)
    loss = rloo_loss(logps, old_logps, advantages, config.epsilon)
    return loss, {"reward": float(scores.mean()), "kl": float(kl.mean())}


def _train(model: Any, tokenizer: Any, prompts: list[str], reward: Reward, config: RLConfig, ref_model: Any | None, *,
           progress: bool, copy_model: bool, on_step: Callable[[int, float], None] | None) -> RLResult:
    from elasticity_lab.lm.generation import generate

    if config.beta > 0 and ref_model is None:
        ref_model = frozen(model)
    elif ref_model is not None:
        ref_model = ref_model.eval()
    model = _prepare(model, config, copy_model)
    n = len(prompts)
    total, order = example_order(config, n)
    opt = make_optimizer(model.parameters(), config.optimizer, config.learning_rate, config.betas, config.weight_decay)
    warmup = int(config.warmup_fraction * total)
    rows: list[dict[str, float]] = []
    torch.manual_seed(config.seed)
    model.train()
    for step in progress_bar(range(total), enabled=progress, desc="RLOO", leave=False):
        batch_prompts = [prompts[i] for i in order[step * config.batch_size:(step + 1) * config.batch_size]]
        repeated = [p for p in batch_prompts for _ in range(config.k)]
        responses = generate(model, tokenizer, repeated, max_new_tokens=config.max_new_tokens,
                             temperature=config.temperature, seed=config.seed * 1_000_003 + step)
        factor = lr_factor(step, total, config.schedule, warmup)
        loss, stats = rloo_step_loss(model, ref_model, tokenizer, repeated, responses, reward, config)
        plain_step(model, opt, loss, config.learning_rate * factor, config.grad_clip)
        value = float(loss.detach())
        rows.append({"step": step + 1, "prompts": (step + 1) * config.batch_size, "loss": value,
                     "lr": config.learning_rate * factor, **stats})
        if on_step is not None:
            on_step(step + 1, value)
    model.eval()
    return RLResult(model, pd.DataFrame(rows))
