"""The real-models study's configuration: which hub models and data sets, how much of each, per scale as data.

Three studies, all through the runners of chapters 6 and 7 (nothing here trains a model itself):

- ``volume``: the rebound protocol from several pre-training checkpoints of one model (Pythia's
  ``revision="stepN"``), the earliest standing as the lightly pre-trained control, plus a
  re-initialised copy of the last (random init). The paper's TinyLlama result, at a T4's size.
- ``size``: the rebound protocol from models of one family at several sizes (SmolLM2-135M/360M,
  Qwen2.5-0.5B).
- ``resistance``: the resistance protocol (θ₁/θ₂/θ₃ cut from one SFT run, forward against inverse)
  from the last and the earliest checkpoint and the re-initialised copy, on Alpaca, with LoRA.

Where the hub cannot be reached the same code runs on local stand-ins
(:mod:`elasticity_lab.experiments.realmodels.standins`); :data:`STANDIN_MODELS` says which stand-in
takes which hub name's place. Those runs test the plumbing; their numbers are not results about
real models, and the chapter says so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from elasticity_lab.core.config import check_choice, check_positive

STUDIES: tuple[str, ...] = ("volume", "size", "resistance")
SOURCES: tuple[str, ...] = ("auto", "hub", "standins")
"""``auto``: the hub where it answers within seconds, the stand-ins where it does not; ``hub``: the hub or an error;
``standins``: the stand-ins even where the hub answers (tests, a look at the plumbing)."""

PYTHIA = "EleutherAI/pythia-160m"
PYTHIA_REVISIONS: tuple[str, ...] = ("step1000", "step8000", "step36000", "step143000")
"""Pythia-160m after 2 B, 17 B, 75 B and 300 B tokens of the Pile (2,097,152 tokens a step)."""
SIZE_MODELS: tuple[str, ...] = ("HuggingFaceTB/SmolLM2-135M", "HuggingFaceTB/SmolLM2-360M", "Qwen/Qwen2.5-0.5B")
PARAMS: dict[str, float] = {"HuggingFaceTB/SmolLM2-135M": 135e6, "HuggingFaceTB/SmolLM2-360M": 362e6,
                            "Qwen/Qwen2.5-0.5B": 494e6, "EleutherAI/pythia-70m": 70e6, "EleutherAI/pythia-160m": 162e6,
                            "meta-llama/Llama-2-7b-hf": 6.74e9, "meta-llama/Llama-2-13b-hf": 13.0e9}
"""Parameter counts (the models' cards) for the size axis; a stand-in's are counted from its weights."""
HUB_DATA: dict[str, str] = {"safety": "PKU-Alignment/BeaverTails::30k_train", "sentiment": "stanfordnlp/imdb::train",
                            "instruction": "tatsu-lab/alpaca::train"}
"""``name:config:split`` of the data sets on the hub (PKU-Alignment/PKU-SafeRLHF also fits the safety task)."""

STANDIN_MODELS: dict[str, str] = {"volume": "pythia/stepN (tiny GPT-NeoX)", "size": "smollm2-s, smollm2-m (tiny Llama), qwen2-l (tiny Qwen2)"}


@dataclass(frozen=True)
class RealModelsConfig:
    """One real-models study; validated on creation, before anything is loaded, downloaded or trained.

    ``volume_model`` with ``volume_revisions`` (earliest first) is the pre-training-volume axis; ``size_models``
    (smallest first) the size axis. The rebound fields mean what they mean in
    :class:`elasticity_lab.experiments.rebound.ReboundConfig` (full fine-tuning at ``lr``); the resistance fields
    what they mean in :class:`elasticity_lab.experiments.resistance.ResistanceConfig` (``resistance_method``: LoRA
    by default, so a 0.5 B model's three checkpoints and their fine-tunes fit a T4). ``precision``: ``auto`` is bf16
    where the card has it, fp16 with loss scaling on a T4, fp32 on a CPU (:mod:`elasticity_lab.lm.precision`).
    """

    scale: str = "full"
    source: str = "auto"
    studies: tuple[str, ...] = STUDIES
    volume_model: str = PYTHIA
    volume_revisions: tuple[str, ...] = PYTHIA_REVISIONS
    size_models: tuple[str, ...] = SIZE_MODELS
    safety_data: str = HUB_DATA["safety"]
    sentiment_data: str = HUB_DATA["sentiment"]
    instruction_data: str = HUB_DATA["instruction"]
    tasks: tuple[str, ...] = ("safety",)
    seeds: tuple[int, ...] = (0, 1, 2)
    n_align: tuple[int, ...] = (500,)
    n_perturb: tuple[int, ...] = (0, 20, 40, 100, 200)
    lr: float = 1e-5
    align_batch_size: int = 10
    perturb_batch_size: int = 20
    n_prompts: int = 64
    n_kl: int = 64
    max_new_tokens: int = 32
    random_control: bool = True
    resistance_method: str = "lora"
    resistance_lr: float = 2e-4
    resistance_n_train: int = 256
    resistance_n_queries: int = 64
    resistance_batch_size: int = 8
    resistance_max_new_tokens: int = 64
    precision: str = "auto"

    def __post_init__(self) -> None:
        check_choice("scale", self.scale, ("smoke", "reader", "full", "paper"))
        check_choice("source", self.source, SOURCES)
        for name in ("studies", "volume_revisions", "size_models", "tasks", "seeds", "n_align", "n_perturb"):
            value = getattr(self, name)
            if isinstance(value, (str, int)) or not len(value) or len(set(value)) != len(value):
                raise ValueError(f"{name}={value!r} is not allowed; give a non-empty tuple without duplicates.")
        for s in self.studies:
            check_choice("studies entry", s, STUDIES)
        for t in self.tasks:
            check_choice("tasks entry", t, ("safety", "sentiment"))
        if "volume" in self.studies and len(self.volume_revisions) < 2:
            raise ValueError(f"volume_revisions={self.volume_revisions!r} is not allowed; the volume study needs at least 2 checkpoints.")
        if "size" in self.studies and len(self.size_models) < 2:
            raise ValueError(f"size_models={self.size_models!r} is not allowed; the size study needs at least 2 models.")
        for s in self.seeds:
            check_positive("seeds entry", s, allow_zero=True)
        if self.n_perturb[0] != 0 or list(self.n_perturb) != sorted(self.n_perturb) or any(n % self.perturb_batch_size for n in self.n_perturb):
            raise ValueError(f"n_perturb={self.n_perturb!r} is not allowed; it must start at 0, increase, and hold multiples of "
                             f"perturb_batch_size={self.perturb_batch_size}.")
        check_choice("resistance_method", self.resistance_method, ("full", "lora"))
        check_choice("precision", self.precision, ("auto", "fp32", "bf16", "fp16"))
        for name in ("lr", "align_batch_size", "perturb_batch_size", "n_prompts", "n_kl", "max_new_tokens", "resistance_lr",
                     "resistance_n_train", "resistance_n_queries", "resistance_batch_size", "resistance_max_new_tokens"):
            check_positive(name, getattr(self, name))
        if self.resistance_n_train < 4 * self.resistance_batch_size:
            raise ValueError(f"resistance_n_train={self.resistance_n_train} is not allowed with resistance_batch_size="
                             f"{self.resistance_batch_size}; use at least {4 * self.resistance_batch_size} to cut three checkpoints.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SCALE_PRESETS: dict[str, dict[str, Any]] = {
    # the plumbing only: stand-in sized grids (seconds a curve on a CPU)
    "smoke": dict(seeds=(0, 1), n_align=(16,), n_perturb=(0, 8, 16), lr=3e-3, align_batch_size=8, perturb_batch_size=8,
                  n_prompts=8, n_kl=8, max_new_tokens=12, resistance_lr=3e-3, resistance_n_train=32, resistance_n_queries=12,
                  resistance_max_new_tokens=12),
    # the book built offline: three seeds (the verdicts need them) on grids a stand-in learns in seconds
    "reader": dict(n_align=(32,), n_perturb=(0, 8, 16), lr=3e-3, align_batch_size=8, perturb_batch_size=8,
                   n_prompts=16, n_kl=16, max_new_tokens=12, resistance_lr=3e-3, resistance_n_train=32, resistance_n_queries=16,
                   resistance_max_new_tokens=12),
    # a Colab T4 in about 30 minutes (planned, not measured: no GPU reaches the hub here)
    "full": dict(),
    # the paper's grid (N_a up to 10k, n up to 2k, sentiment too): several GPU-hours
    "paper": dict(tasks=("safety", "sentiment"), n_align=(1000, 2000, 5000, 10000), n_perturb=(0, 100, 200, 500, 1000, 2000),
                  n_prompts=200, n_kl=200, max_new_tokens=48, volume_revisions=("step1000", "step4000", "step16000", "step64000", "step143000"),
                  resistance_n_train=1000, resistance_n_queries=200, resistance_max_new_tokens=128),
}
"""The study at each scale, as overrides of :class:`RealModelsConfig`'s defaults: data, not code paths.

The ``full`` default is planned for a T4 (16 GB, fp16) in ≤ 30 minutes: rebound on safety with N_a = 500 and
n ≤ 200 from 4 Pythia-160m checkpoints, a re-initialised copy and 3 models up to 0.5 B (8 bases × 3 seeds × 1
curve, each ≈ 50 optimiser steps of batch 10-20 plus 5 evaluations of 64 prompts), and resistance with LoRA on
256 Alpaca examples from 3 bases × 3 seeds. It has not been timed: no machine that builds this book reaches the hub."""


def default_config(scale: str = "full", **overrides: Any) -> RealModelsConfig:
    """The study at ``scale`` (:data:`SCALE_PRESETS`) with any field overridden."""
    check_choice("scale", scale, tuple(SCALE_PRESETS))
    return RealModelsConfig(**{"scale": scale, **SCALE_PRESETS[scale], **overrides})
