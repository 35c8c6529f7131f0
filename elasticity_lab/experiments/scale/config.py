"""The scale study's configuration: validated on creation, with the book's presets per scale as data.

Two axes, each measured with the rebound protocol of chapter 7 (stage 1 aligns on ``n_align`` positive
examples, stage 2 perturbs on up to ``max(n_perturb)`` negative ones):

- **size**: every preset of ``presets`` pre-trained on the same ``tokens`` (one run per pre-training
  seed); its control is the random initialisation of the same preset and seed;
- **volume**: checkpoints of the ``volume_preset``'s runs nearest (log scale) to ``volume_fractions`` of
  ``volume_budget`` (``None``: the scale's own budget, which for ``micro`` at ``reader`` is the shipped book
  base and its pre-training-seed siblings ``micro-seed1/2``, so the chapter pre-trains nothing for this axis);
  its control is the fine-tuning-only base matched to each checkpoint (:mod:`elasticity_lab.lm.controls`).

Seeds are pre-training seeds: each seed is its own pre-training run (and its own fine-tuning data), so an
interval over seeds includes the variation between pre-training runs, which is what a claim about
pre-training needs.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from elasticity_lab.core.config import check_choice, check_positive
from elasticity_lab.experiments.rebound.config import METRICS, TASKS, _check_grid
from elasticity_lab.lm.bases import BaseSpec
from elasticity_lab.lm.presets import PRESETS

AXES: tuple[str, ...] = ("size", "volume")
MEASURES: tuple[str, ...] = ("lift", "n_half", "settle_gap", "kl_stage1")
"""Per curve: how far stage 1 moved the score above the base's own level (no verdict: where it is near zero
there is no rebound to measure, and the other measures are noise); examples of stage 2 to get halfway back to
the base's own level; distance between where the curve settles (an exponential plateau fit, clipped to the
score's range) and the base's level; the KL to the base after stage 1."""

ELASTIC_DIRECTION: dict[str, str] = {"n_half": "less", "settle_gap": "less", "kl_stage1": "less"}
"""Which way each measure moves if elasticity grows: a faster rebound (fewer examples to halfway), a settling
level nearer the base's own, and a smaller move away from the base under the same alignment (resistance)."""

HEADLINE_MEASURE = "n_half"
"""The measure of the headline verdicts: the paper's claim is that larger and longer pre-trained models rebound *faster*."""

SIZE_CONTROLS: tuple[str, ...] = ("random", "light")
VOLUME_CONTROLS: tuple[str, ...] = ("finetuned",)


@dataclass(frozen=True)
class ScaleConfig:
    """Everything one scale study depends on; validated on creation, before any training."""

    scale: str = "reader"
    presets: tuple[str, ...] = ("nano", "micro", "small")
    tokens: int = 131_072
    eval_tokens: int | None = None
    volume_preset: str = "micro"
    volume_budget: int | None = None
    volume_fractions: tuple[float, ...] = (1 / 16, 1 / 4, 1.0)
    seeds: tuple[int, ...] = (0, 1, 2)
    task: str = "safety"
    metric: str = "likelihood"
    n_align: int = 128
    n_perturb: tuple[int, ...] = (0, 8, 16, 32, 64, 128)
    lr: float = 1e-3
    align_batch_size: int = 16
    perturb_batch_size: int = 8
    n_prompts: int = 64
    n_kl: int = 64
    size_controls: tuple[str, ...] = SIZE_CONTROLS
    volume_controls: tuple[str, ...] = VOLUME_CONTROLS
    min_lift: float = 0.01
    device: str | None = None

    def __post_init__(self) -> None:
        check_choice("scale", self.scale, ("smoke", "reader", "full"))
        if len(self.presets) < 3 or len(set(self.presets)) != len(self.presets):
            raise ValueError(f"presets={self.presets!r} is not allowed; give at least 3 distinct presets (a trend needs 3 points).")
        for p in self.presets:
            check_choice("presets entry", p, PRESETS)
        check_choice("volume_preset", self.volume_preset, PRESETS)
        check_positive("tokens", self.tokens)
        if self.eval_tokens is not None:
            check_positive("eval_tokens", self.eval_tokens)
        if self.volume_budget is not None:
            check_positive("volume_budget", self.volume_budget)
        fr = self.volume_fractions
        if len(fr) < 3 or list(fr) != sorted(set(fr)) or not all(0 < f <= 1 for f in fr):
            raise ValueError(f"volume_fractions={fr!r} is not allowed; give at least 3 increasing fractions in (0, 1].")
        if len(set(self.volume_tokens())) != len(fr):
            raise ValueError(f"volume_fractions={fr!r} is not allowed at tokens={self.tokens}: two fractions fall on the same "
                             f"checkpoint ({self.checkpoints()}); spread them further apart.")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds={self.seeds!r} is not allowed; give one or more distinct integers.")
        for s in self.seeds:
            check_positive("seeds entry", s, allow_zero=True)
        check_choice("task", self.task, TASKS)
        check_choice("metric", self.metric, METRICS)
        check_positive("min_lift", self.min_lift, allow_zero=True)
        for name in ("n_align", "lr", "align_batch_size", "perturb_batch_size", "n_prompts", "n_kl"):
            check_positive(name, getattr(self, name))
        _check_grid("n_perturb", self.n_perturb, self.perturb_batch_size)
        if len(self.n_perturb) < 3:
            raise ValueError(f"n_perturb={self.n_perturb!r} is not allowed; the plateau fit needs at least 3 points.")
        for c in self.size_controls:
            check_choice("size_controls entry", c, SIZE_CONTROLS)
        for c in self.volume_controls:
            check_choice("volume_controls entry", c, VOLUME_CONTROLS)
        if self.device is not None:
            check_choice("device", self.device, ("cuda", "mps", "cpu"))

    @property
    def pretrain_scale(self) -> str:
        """The pre-training defaults (learning rate, batch) the bases take: those of the study's scale."""
        return self.scale

    def spec(self, preset: str, seed: int, revision: str | None = None) -> BaseSpec:
        """The base of a point: ``preset`` pre-trained on ``tokens`` with ``seed``, at a revision."""
        return BaseSpec(preset, revision, scale=self.pretrain_scale, tokens=self.tokens, seed=seed, eval_tokens=self.eval_tokens)

    def volume_spec(self, seed: int, revision: str | None = None) -> BaseSpec:
        """A base of the volume axis: a checkpoint of the ``volume_preset`` run of ``volume_budget`` tokens with ``seed``."""
        return BaseSpec(self.volume_preset, revision, scale=self.pretrain_scale, tokens=self.volume_budget, seed=seed)

    def checkpoints(self, preset: str | None = None) -> list[int]:
        """Token budgets of the saved checkpoints of a size-axis run of ``preset`` (default: the volume axis's run)."""
        return self.volume_spec(0).budgets() if preset is None else self.spec(preset, 0).budgets()

    def volume_tokens(self) -> list[int]:
        """The checkpoints of the volume axis: nearest (log scale) to each fraction of its run's budget."""
        budgets = self.checkpoints()
        return [min(budgets, key=lambda b: abs(math.log(b) - math.log(f * budgets[-1]))) for f in self.volume_fractions]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SCALE_PRESETS: dict[str, dict[str, Any]] = {
    # only exercises the code: three presets at a few thousand tokens, small probes, no light control
    "smoke": dict(tokens=8_192, eval_tokens=4_096, volume_budget=16_384, n_align=16, n_perturb=(0, 8, 16), n_prompts=8, n_kl=8,
                  volume_fractions=(1 / 4, 1 / 2, 1.0), size_controls=("random",)),
    # the book on 2 CPU cores: three presets at one small, equal budget (pre-trained here, a run per seed; held-out bits
    # on 8192 tokens at each checkpoint, as many forward tokens as the whole run trains on 2 checkpoints); the volume
    # axis on checkpoints 4096, 49152 and 544768 of the shipped micro base (seeds 0, 1, 2), whose fine-tuning-only
    # controls stay affordable (1, 12 and 133 optimiser steps; the final 6.3M-token checkpoint would need 1536 per seed)
    "reader": dict(tokens=32_768, eval_tokens=8_192, volume_fractions=(1 / 1024, 1 / 128, 1 / 12), n_align=64, n_perturb=(0, 8, 16, 32, 64),
                   n_prompts=32, n_kl=32),
    # a GPU: presets from 0.1M to 85M parameters at an equal budget of 2^24 tokens, the volume axis on 'medium'
    "full": dict(presets=("micro", "small", "medium", "large", "full", "xl"), tokens=16_777_216, volume_preset="medium",
                 volume_budget=16_777_216,
                 volume_fractions=(1 / 64, 1 / 16, 1 / 4, 1.0), n_align=512, n_perturb=(0, 16, 32, 64, 128, 256, 512, 1024),
                 n_prompts=256, n_kl=256),
}
"""The book's study at each scale, as overrides of :class:`ScaleConfig`'s defaults: data, not code paths."""

SEEDS_BY_SCALE: dict[str, int] = {"smoke": 2, "reader": 3, "full": 3}


def default_config(scale: str = "reader", n_seeds: int | None = None, **overrides: Any) -> ScaleConfig:
    """The book's study at a scale (:data:`SCALE_PRESETS`), with ``n_seeds`` pre-training seeds and any field overridden."""
    scale = check_choice("scale", scale, tuple(SCALE_PRESETS))
    if n_seeds is not None:
        check_positive("n_seeds", n_seeds)
    seeds = tuple(range(n_seeds if n_seeds is not None else SEEDS_BY_SCALE[scale]))
    return ScaleConfig(**{"scale": scale, "seeds": seeds, **SCALE_PRESETS[scale], **overrides})
