"""The fine-tuning-only control base: a random initialisation fine-tuned on the world's own exchanges.

Why: "elasticity grows with pre-training volume" compares checkpoints of one pre-training run. A later
checkpoint differs from an earlier one in two ways: it has learnt more of the pre-training distribution
(what elasticity is about), and it has simply taken more optimiser steps toward the world's behaviour
(which any training does). This base keeps the second and removes the first: the same architecture
and seed, trained only by supervised fine-tuning (loss on responses) on exchanges of every task drawn at
the world's base rates, for as many optimiser steps as pre-training took to reach the checkpoint, at the
pre-training's peak learning rate (constant, so a longer control starts exactly like a shorter one).
If rebound speeds up along this axis as well, a volume trend cannot be credited to pre-training.

It is reached through :func:`elasticity_lab.lm.bases.load_base` as ``"<preset>@finetuned-N"``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from elasticity_lab.core.config import check_positive
from elasticity_lab.lm.presets import random_model
from elasticity_lab.lm.pretraining import PretrainConfig
from elasticity_lab.lm.training import sft
from elasticity_lab.microworld.vocab import TASKS

BATCH_SIZE = 16
"""Exchanges per step of the control (the rebound protocol's stage-1 batch)."""


def finetuned_only(world: Any, preset: str, config: PretrainConfig, tokens: int, *,
                   device: torch.device | str = "cpu") -> Any:
    """The random init of ``preset`` (seed ``config.seed``) after SFT on base-rate exchanges for the steps that
    pre-training under ``config`` took to reach ``tokens``; in eval mode, on ``device``."""
    check_positive("tokens", tokens)
    steps = max(1, round(tokens / config.tokens_per_step))
    model = random_model(preset, len(world.vocabulary), seed=config.seed, device=device)
    per_task = math.ceil(steps * BATCH_SIZE / len(TASKS))
    data = [(e.prompt, e.response) for task in TASKS
            for e in world.dataset(task, per_task, behaviour="base", split="train", prompt_kind="mixed", seed=10_000 + config.seed)]
    result = sft(model, world.tokenizer(), data, lr=config.lr, batch_size=BATCH_SIZE, max_steps=steps, betas=config.betas,
                 weight_decay=config.weight_decay, grad_clip=config.grad_clip, seed=config.seed, threads=config.threads,
                 copy_model=False, progress=False)
    return result.model.eval()
