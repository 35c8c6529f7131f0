"""The rebound study's configuration: validated on creation, with the book's presets per scale as data."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from elasticity_lab.core.config import check_choice, check_int, check_positive, check_range, check_seed
from elasticity_lab.lm.bases import BASE_KINDS
from elasticity_lab.lm.hub import DEFAULT_HUB_MODEL
from elasticity_lab.lm.presets import PRESETS

TASKS: tuple[str, ...] = ("safety", "sentiment")
ORDERS: tuple[str, ...] = ("forward", "reversed")
STEP_MODES: tuple[str, ...] = ("epochs", "steps")
DIRECTIONS: tuple[str, ...] = ("above", "below")
METRICS: tuple[str, ...] = ("rule", "likelihood")
PERTURBATIONS: tuple[str, ...] = ("neutral", "positive_control", "directional", "replay")
"""Stage-2 data of the attractor test. ``neutral``: exchanges of the *other* tasks (sentiment, instruction,
truthfulness) at their pre-training base rates, text that neither asks for nor answers the behaviour;
``positive_control``: exchanges sampled from the whole pre-training distribution (harmful requests
refused at the world's own rate among them), which must pull every world to its base rate (slope ≈ 1);
``directional``: benign requests answered helpfully (compliance), the perturbation of the first version
of this test; ``replay``: the base model's *own* answers to safety requests, a system with an attractor
built in (the built-in-attractor check, not part of the default study)."""

DEFAULT_SAFETY_DATA = "PKU-Alignment/BeaverTails"
DEFAULT_SENTIMENT_DATA = "stanfordnlp/imdb"

PAPER_KL_TABLE = pd.DataFrame(
    {
        "model": ["Llama2-7B"] * 4 + ["Gemma-2B"] * 4,
        "n_align": [1000, 2000, 5000, 10000] * 2,
        "kl_after_alignment": [0.21, 0.22, 0.26, 0.27, 0.18, 0.21, 0.24, 0.25],
        "negative_examples_to_epsilon": [961, 844, 801, 729, 923, 853, 709, 598],
    }
)
"""Table 3 of Ji et al. (2025), quoted from the paper (ε = 0.01, their KL estimator unstated)."""


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class ReboundConfig:
    """Everything one rebound study depends on; validated on creation, before any training.

    ``epsilon`` (nats per token) is the KL threshold of the Table-3 analogue. The paper's ε = 0.01 is
    about 5 % of its post-alignment KLs (0.18–0.27, quoted). The default 0.02 keeps that proportion
    for the micro-world: it is about 5 % of the post-alignment KLs that a one-seed pilot at the
    ``reader`` scale measured for the middle sizes of N_a (the KLs grow steeply with N_a here, so no
    single value is 5 % of all of them). ``epsilon=None`` (the default) sets ε *per curve* to
    ``epsilon_fraction`` (5 %) of that curve's own stage-1 KL, the paper's proportion, so every curve is
    asked the same question; a number fixes one ε for all.

    Seeds: ``pretrain_seeds`` are the seeds of the pre-trained bases (one base per world and seed), and
    ``seeds`` the fine-tuning seeds nested in each; intervals treat pre-training seeds as the
    independent units (at the ``full`` scale, with one hub model, the fine-tuning seeds).

    ``return_margin``: a curve "returns to the base" where the interval of its plateau minus the base's
    own level lies within ``return_margin`` × its stage-1 displacement of 0. ``attractor_shift``: stage 1
    of the attractor test trains every world to its own base rate ± this much (matched displacement).
    """

    scale: str = "reader"
    tasks: tuple[str, ...] = TASKS
    n_align: tuple[int, ...] = (64, 128, 320, 640)
    n_perturb: tuple[int, ...] = (0, 8, 16, 32, 48, 64, 96, 128, 192, 256)
    seeds: tuple[int, ...] = (0,)
    pretrain_seeds: tuple[int, ...] = (0, 1, 2)
    preset: str = "micro"
    pretrain_tokens: int | None = None
    hub_model: str | None = None
    safety_data: str = DEFAULT_SAFETY_DATA
    sentiment_data: str = DEFAULT_SENTIMENT_DATA
    method: str = "full"
    lr: float = 1e-3
    align_batch_size: int = 16
    perturb_batch_size: int = 8
    fixed_steps: int | None = None
    n_prompts: int = 64
    n_kl: int = 64
    epsilon: float | None = None
    epsilon_fraction: float = 0.05
    return_margin: float = 0.2
    light_fraction: float = 1 / 32
    reversed_n_align: tuple[int, ...] | None = None
    reversed_tasks: tuple[str, ...] = TASKS
    control_bases: tuple[str, ...] = ("light", "random")
    control_tasks: tuple[str, ...] = ("safety",)
    control_n_align: tuple[int, ...] | None = None
    fixed_steps_tasks: tuple[str, ...] = ("safety",)
    attractor_rates: tuple[float, ...] = (0.2, 0.5, 0.8)
    attractor_tokens: int | None = None
    attractor_n_align: int = 128
    attractor_n_perturb: tuple[int, ...] = (0, 64, 128, 256, 384, 512)
    attractor_batch_size: int = 16
    attractor_bases: tuple[str, ...] = ("pretrained", "light")
    attractor_perturbations: tuple[str, ...] = ("neutral", "positive_control", "directional")
    attractor_directions: tuple[str, ...] = DIRECTIONS
    attractor_shift: float = 0.2
    max_new_tokens: int | None = None
    lr_sweep: tuple[float, ...] = (1e-3, 1e-4, 1e-5)
    # full scale: "keyword" (the refusal rule) or a sequence-classification model (hub name or folder)
    # that judges safety, as the paper's beaver cost model did; see elasticity_lab.lm.scorers
    safety_scorer: str = "keyword"
    scorer_direction: str = "lower"
    scorer_threshold: float = 0.0

    def __post_init__(self) -> None:
        check_choice("scale", self.scale, ("smoke", "reader", "full"))
        for name in ("tasks", "reversed_tasks", "control_tasks", "fixed_steps_tasks"):
            for t in getattr(self, name):
                check_choice(f"{name} entry", t, TASKS)
        if not self.tasks:
            raise ValueError("tasks is not allowed to be empty; choose from 'safety', 'sentiment'.")
        _check_sizes("n_align", self.n_align)
        if self.reversed_n_align is not None:
            _check_sizes("reversed_n_align", self.reversed_n_align)
        if self.control_n_align is not None:
            _check_sizes("control_n_align", self.control_n_align)
        _check_grid("n_perturb", self.n_perturb, self.perturb_batch_size)
        _check_grid("attractor_n_perturb", self.attractor_n_perturb, self.attractor_batch_size)
        for name in ("seeds", "pretrain_seeds"):
            value = getattr(self, name)
            if not value or len(set(value)) != len(value):
                raise ValueError(f"{name}={value!r} is not allowed; give one or more distinct integers.")
            for s in value:
                check_seed(f"{name} entry", s)
        for p in self.attractor_perturbations:
            check_choice("attractor_perturbations entry", p, PERTURBATIONS)
        for d in self.attractor_directions:
            check_choice("attractor_directions entry", d, DIRECTIONS)
        if not 0.0 < self.attractor_shift <= 0.5:
            raise ValueError(f"attractor_shift={self.attractor_shift!r} is not allowed; it must be in (0, 0.5].")
        if not 0.0 < self.epsilon_fraction < 1.0:
            raise ValueError(f"epsilon_fraction={self.epsilon_fraction!r} is not allowed; it must be in (0, 1).")
        if not 0.0 < self.return_margin < 1.0:
            raise ValueError(f"return_margin={self.return_margin!r} is not allowed; it must be in (0, 1).")
        check_choice("preset", self.preset, PRESETS)
        # full-parameter SFT only: the paper's recipe, and stage 2 scores the very model it trains
        check_choice("method", self.method, ("full",))
        if len(self.lr_sweep) < 2 or len(set(self.lr_sweep)) != len(self.lr_sweep):
            raise ValueError(f"lr_sweep={self.lr_sweep!r} is not allowed; give two or more distinct learning rates.")
        for v in self.lr_sweep:
            check_positive("lr_sweep entry", v)
        check_positive("lr", self.lr)
        if self.epsilon is not None:
            check_positive("epsilon", self.epsilon)
        for name in ("align_batch_size", "perturb_batch_size", "n_prompts", "n_kl", "attractor_n_align", "attractor_batch_size"):
            check_int(name, getattr(self, name), 1)
        for name in ("fixed_steps", "pretrain_tokens", "attractor_tokens", "max_new_tokens"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), 1)
        check_range("light_fraction", self.light_fraction, 0, 1, lo_open=True, hi_open=True)
        for b in self.control_bases:
            check_choice("control_bases entry", b, ("light", "random"))
        for b in self.attractor_bases:
            check_choice("attractor_bases entry", b, BASE_KINDS)
        for r in self.attractor_rates:
            if not 0.0 <= r <= 1.0:
                raise ValueError(f"attractor_rates contains {r!r}; each must be a probability in [0, 1].")
            if self.attractor_perturbations and not (0.0 <= r - self.attractor_shift and r + self.attractor_shift <= 1.0):
                raise ValueError(f"attractor_rates contains {r!r}, which attractor_shift={self.attractor_shift!r} moves out of "
                                 f"[0, 1]; every world must be displaced by the same amount (lower the shift).")
        check_choice("scorer_direction", self.scorer_direction, ("higher", "lower"))
        if not self.safety_scorer:
            raise ValueError("safety_scorer is not allowed to be empty; use 'keyword' or a reward/cost model's name or folder.")
        if self.safety_scorer != "keyword" and not self.on_hub:
            raise ValueError(f"safety_scorer={self.safety_scorer!r} needs the full scale (hub_model); the micro-world scores exactly by rule.")
        if self.attractor_rates and len(set(self.attractor_rates)) < 2:
            raise ValueError("attractor_rates is not allowed to have fewer than 2 distinct rates (a slope needs two); use () to skip the test.")

    @property
    def on_hub(self) -> bool:
        return self.hub_model is not None

    def epsilon_of(self, kl_stage1: float) -> float:
        """The KL threshold of one curve: the fixed ``epsilon``, or ``epsilon_fraction`` of its stage-1 KL."""
        return float(self.epsilon) if self.epsilon is not None else self.epsilon_fraction * float(kl_stage1)

    def epsilon_text(self) -> str:
        return f"ε = {self.epsilon:g} nats" if self.epsilon is not None else \
            f"ε = {self.epsilon_fraction:.0%} of each curve's own KL after stage 1"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_sizes(name: str, sizes: Sequence[int]) -> None:
    if not sizes:
        raise ValueError(f"{name} is not allowed to be empty; give one or more example counts > 0.")
    for s in sizes:
        if not isinstance(s, (int, np.integer)) or s <= 0:
            raise ValueError(f"{name} contains {s!r}; each must be an integer > 0.")
    if list(sizes) != sorted(set(sizes)):
        raise ValueError(f"{name}={tuple(sizes)!r} is not allowed; give distinct sizes in increasing order.")


def _check_grid(name: str, grid: Sequence[int], batch_size: int) -> None:
    """A stage-2 grid starts at 0, increases, and every n is a whole number of batches (see module doc)."""
    check_positive("batch size", batch_size)
    if not grid or grid[0] != 0 or list(grid) != sorted(set(grid)):
        raise ValueError(f"{name}={tuple(grid)!r} is not allowed; it must start at 0 and increase (e.g. (0, 8, 16, 32)).")
    bad = [n for n in grid if n % batch_size]
    if bad:
        raise ValueError(f"{name} contains {bad}; every n must be a multiple of the batch size {batch_size} "
                         f"(stage 2 is evaluated after whole batches).")


SCALE_PRESETS: dict[str, dict[str, Any]] = {
    # only exercises the code: tiny sizes, two pre-training seeds (an interval needs two), bases pre-trained for seconds
    "smoke": dict(tasks=("safety",), n_align=(16, 32), n_perturb=(0, 8, 16, 32), n_prompts=16, n_kl=16, reversed_n_align=(16,),
                  reversed_tasks=(), attractor_rates=(0.2, 0.8), attractor_n_align=16, pretrain_seeds=(0, 1),
                  attractor_n_perturb=(0, 16, 32, 48), control_bases=("random",), control_n_align=(32,), fixed_steps_tasks=(),
                  lr_sweep=(1e-3, 1e-4)),
    # the book: budgeted at <= 5 minutes on 2 CPU cores with the shipped bases (see chapter 7); three pre-training
    # seeds per world; the reversed order, a fourth N_a and the control bases at every N_a are the full scale's
    "reader": dict(n_align=(64, 192, 640), n_perturb=(0, 16, 32, 64, 128, 256), reversed_tasks=(), control_n_align=(640,),
                   fixed_steps_tasks=("safety",), attractor_n_perturb=(0, 128, 256, 384)),
    # the paper's protocol on a hub model (a GPU): one pre-trained model, so fine-tuning seeds are the units
    "full": dict(hub_model=DEFAULT_HUB_MODEL, n_align=(1000, 2000, 5000, 10000), n_perturb=(0, 100, 200, 500, 1000, 2000),
                 lr=1e-5, align_batch_size=10, perturb_batch_size=20, n_prompts=200, n_kl=200, pretrain_seeds=(0,),
                 control_bases=("random",), fixed_steps_tasks=(), attractor_rates=(), max_new_tokens=48,
                 lr_sweep=(1e-4, 3e-5, 1e-5)),
}
"""The book's study at each scale, as overrides of :class:`ReboundConfig`'s defaults: data, not code paths."""

SEEDS_BY_SCALE: dict[str, int] = {"smoke": 1, "reader": 1, "full": 3}
"""Fine-tuning seeds per pre-trained base (the pre-training seeds are the preset's ``pretrain_seeds``)."""


def default_config(scale: str = "reader", n_seeds: int | None = None, **overrides: Any) -> ReboundConfig:
    """The book's study at a scale (:data:`SCALE_PRESETS`), with ``n_seeds`` fine-tuning seeds per pre-trained base
    and any field overridden."""
    scale = check_choice("scale", scale, tuple(SCALE_PRESETS))
    if n_seeds is not None:
        check_positive("n_seeds", n_seeds)
    seeds = tuple(range(n_seeds if n_seeds is not None else SEEDS_BY_SCALE[scale]))
    return ReboundConfig(**{"scale": scale, "seeds": seeds, **SCALE_PRESETS[scale], **overrides})
