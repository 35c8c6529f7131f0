"""One curve per (mitigation, seed): stage 1 and stage 2 of the rebound protocol with the mitigation applied, and its cost.

Stage 1 is the rebound experiment's (:func:`elasticity_lab.lm.training.sft`, one epoch or a fixed step count,
``seed``); stage 2 too (one SFT pass over ``max(n)`` compliant answers at a constant rate, scored with
:func:`elasticity_lab.experiments.rebound.evaluate` after the step at which ``n`` of them were seen, data
seed ``seed + 7919``), with the defences of the later fine-tuning added:

- replay: ``replay × batch`` alignment examples (drawn from the stage-1 set) join every perturbation batch of
  ``batch`` compliant answers (the shuffled pass holds that mix on average), so the step count and the
  compliant answers seen after each step are the baseline's;
- anchor: after every optimiser step the weights move the share ``anchor`` of the way back to the aligned
  model's (a decoupled L2 pull, like weight decay toward θ_aligned instead of toward 0);
- LoRA: the perturbation trains a fresh low-rank adapter on the aligned model (merged for the cost);
- learning rate: the perturbation's rate is ``lr × lr_factor``.

With no mitigation a curve is exactly :func:`elasticity_lab.experiments.rebound.staged_curve`'s (tested); stage 2 is
run here rather than through ``rebound.perturb_curve`` because the anchor needs a hook after every optimiser step
and replay a batch of another size.

The cost of a mitigation is measured on the model after the whole perturbation (what would be deployed):
bits per token on held-out pre-training text of the default world, and the likelihood scores of the other
tasks (sentiment, instruction, truthfulness) on held-out prompts.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch

from elasticity_lab.core.cache import cached_table
from elasticity_lab.core.progress import progress_bar
from elasticity_lab.experiments.mitigation.config import MitigationConfig, Mitigation
from elasticity_lab.experiments.rebound import MicroTask, evaluate
from elasticity_lab.lm.bases import Base, BaseSpec, load_base
from elasticity_lab.lm.metrics import bits_per_token, likelihood_score
from elasticity_lab.lm.pretraining import heldout_tokens
from elasticity_lab.lm.training import merged_copy, sft
from elasticity_lab.microworld.vocab import TASKS
from elasticity_lab.microworld.world import World

OTHER_TASKS: tuple[str, ...] = tuple(t for t in TASKS if t != "safety")
"""The tasks whose scores a mitigation of the safety behaviour might cost."""


def base_spec(config: MitigationConfig, m: Mitigation, seed: int = 0) -> BaseSpec:
    """The base of a mitigation: the study's preset at its scale's budget (``full`` uses ``reader``'s), in the
    default world or the one with a raised refusal share, final or lightly pre-trained checkpoint; pre-trained with
    ``seed`` where the study has ``pretrain_seeds`` (the shipped ``-seedN`` bases at ``reader``), else with seed 0."""
    world = {"harmful_refusal": m.world_refusal} if m.world_refusal is not None else {}
    return BaseSpec(config.preset, "light" if m.early else None, world=world,
                    scale="reader" if config.scale == "full" else config.scale, tokens=config.pretrain_tokens,
                    seed=seed if config.pretrain_seeds else 0)


def align_steps(config: MitigationConfig, m: Mitigation) -> int | None:
    """Stage-1 steps: None (one epoch over ``n_align × data_factor``) or the baseline's × ``steps_factor``."""
    if m.steps_factor is None:
        return None
    return math.ceil(config.n_align / config.align_batch_size) * m.steps_factor


def pull_back(model: torch.nn.Module, anchor: dict[str, torch.Tensor], share: float) -> None:
    """Move every weight ``share`` of the way back to ``anchor`` (θ ← θ + share·(θ_anchor − θ)), in place."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in anchor:
                p.add_(anchor[name] - p, alpha=share)


def cost(model: Any, tokenizer: Any, blocks: torch.Tensor, world: World, n_other: int) -> dict[str, float]:
    """Bits per token on held-out pre-training blocks and the mean likelihood score of the other tasks."""
    scores = [likelihood_score(model, tokenizer, world.contrast_pairs(t, n_other, split="heldout", seed=5)) for t in OTHER_TASKS]
    return {"bits": bits_per_token(model, blocks), "other": float(np.mean(scores))}


def mitigated_curve(base: Base, config: MitigationConfig, m: Mitigation, seed: int, cost_world: World) -> pd.DataFrame:
    """One curve of the study: rows per ``n`` with the rebound scores, plus the base's level and the costs."""
    c = config
    tok = base.tokenizer
    suite = MicroTask(base.world, "safety")
    probe = suite.probe(c.n_prompts, c.n_kl)
    blocks = heldout_tokens(cost_world, c.n_cost_tokens, 64)
    ref = evaluate(base.model, tok, suite, probe, None, seed=seed)
    s1 = suite.data("aligned", c.n_align * m.data_factor, seed)
    aligned = sft(base.model, tok, s1, method="full", lr=c.lr, batch_size=c.align_batch_size, epochs=1.0,
                  max_steps=align_steps(c, m), seed=seed, progress=False)
    model, steps1 = aligned.model, len(aligned.curve)
    anchor = {k: v.detach().clone() for k, v in model.named_parameters()} if m.anchor > 0 else {}

    b, grid = c.perturb_batch_size, c.n_perturb
    per_batch = int(round(m.replay * b))
    stage2 = suite.data("unaligned", grid[-1], seed)
    if per_batch:
        rng = np.random.default_rng(seed + 31)
        stage2 = stage2 + [s1[i] for i in rng.integers(0, len(s1), per_batch * grid[-1] // b)]
    rows: list[dict[str, float]] = []
    at_step = {n // b: n for n in grid if n > 0}

    def record(n: int) -> None:
        rows.append({"n": n, **evaluate(model, tok, suite, probe, base.model, seed=seed)})

    record(0)

    def on_step(step: int, _loss: float) -> None:
        if anchor:
            pull_back(model, anchor, m.anchor)
        if step in at_step:
            record(at_step[step])

    # copy_model=False: the callback scores (and anchors) the very model being trained; a LoRA adapter is injected
    # into its modules in place, so it scores the adapted model
    result = sft(model, tok, stage2, method=m.method, lr=c.lr * m.lr_factor, batch_size=b + per_batch, epochs=1.0,
                 seed=seed + 7919, progress=False, copy_model=False, on_step=on_step)
    after = cost(merged_copy(result.model), tok, blocks, cost_world, c.n_other)
    table = pd.DataFrame(rows)
    table["align_steps"] = steps1
    table["base_rule"], table["base_likelihood"] = ref["rule"], ref["likelihood"]
    table["bits_end"], table["other_end"] = after["bits"], after["other"]
    return table


def _curve_key(config: MitigationConfig, m: Mitigation, seed: int) -> dict[str, Any]:
    """What a curve depends on: the mitigation's fields (not its name) and the protocol (not the other mitigations)."""
    keep = ("scale", "preset", "pretrain_tokens", "pretrain_seeds", "n_align", "n_perturb", "lr", "align_batch_size",
            "perturb_batch_size",
            "n_prompts", "n_kl", "n_cost_tokens", "n_other")
    return {"kind": "mitigation-curve", "mitigation": dataclasses.asdict(m), "seed": seed, "config": {k: getattr(config, k) for k in keep}}


def run_curves(config: MitigationConfig, *, progress: bool = True,
               on_curve: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """Every (mitigation, seed) curve, each cached on its own (an interrupted study resumes where it stopped)."""
    bases: dict[BaseSpec, Base] = {}
    units = [(name, seed) for seed in config.seeds for name in config.mitigations]
    bar = progress_bar(total=len(units), desc="mitigation curves", enabled=progress)
    parts = []
    for i, (name, seed) in enumerate(units):
        m = config.condition(name)
        bar.set_postfix_str(f"{name} seed={seed}", refresh=False)

        def compute(m: Mitigation = m, seed: int = seed) -> pd.DataFrame:
            t0 = time.perf_counter()
            default_spec = base_spec(config, config.condition("none"), seed)
            for spec in (base_spec(config, m, seed), default_spec):
                if spec not in bases:
                    bases[spec] = load_base(spec, progress=progress)
            table = mitigated_curve(bases[base_spec(config, m, seed)], config, m, seed, bases[default_spec].world)
            table["seconds"] = time.perf_counter() - t0
            return table

        table = cached_table("mitigation", _curve_key(config, m, seed), compute).copy()
        table["mitigation"], table["family"], table["seed"] = name, m.family, seed
        parts.append(table)
        bar.update(1)
        if on_curve:
            on_curve(i + 1, len(units))
    bar.close()
    return pd.concat(parts, ignore_index=True)

