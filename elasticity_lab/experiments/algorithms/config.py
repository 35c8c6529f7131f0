"""The algorithms study's configuration: validated on creation, with the book's presets per scale as data.

What is calibrated and why: the algorithms differ in how far one epoch at a given learning rate moves
the model (an RLOO step sees 32 sampled answers, a KTO epoch twice the examples, DPO and SimPO
overshoot and collapse the sampled answers at rates SFT takes in its stride). Comparing them at the
same rate would compare different strengths of alignment, and the rebound depends on how high the
model was lifted. So the stage-1 learning rate of each algorithm is **calibrated**: from a short grid
of rates per algorithm (:attr:`AlgorithmsConfig.lr_grid`), on calibration seeds that the study does
not use, the rate expected to reach ``target`` is chosen: interpolated in log(rate) between the two
rates whose aligned rule scores (mean over those seeds) bracket it, among rates before the score
peaks (:func:`~elasticity_lab.experiments.algorithms.runs.choose_rates`). Everything else (β, γ, k, batch size, one epoch)
stays at each method's usual value. The study then reports the aligned score and the KL reached on its
own seeds, and a verdict on whether the alignment is matched within ``match_margin``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from elasticity_lab.core.config import check_choice, check_int, check_positive
from elasticity_lab.experiments.algorithms.align import ALGORITHMS
from elasticity_lab.experiments.rebound.config import TASKS, _check_grid
from elasticity_lab.lm.presets import PRESETS

DEFAULT_HUB_MODEL = "HuggingFaceTB/SmolLM2-135M"
"""The ``full`` scale's base (a pre-trained model, not an instruct one: the protocol aligns a base): small enough that
five algorithms, two rates each, two bases and three seeds fit a Colab GPU session."""

CONTROL_BASES: tuple[str, ...] = ("light", "random")

DEFAULT_LR_GRID: dict[str, tuple[float, ...]] = {
    "sft": (3e-4, 4e-4, 5e-4),
    "dpo": (3e-4, 4e-4, 5e-4, 7e-4),
    "kto": (1e-4, 2e-4, 3e-4),
    "simpo": (3e-4, 4e-4, 5e-4, 7e-4),
    "rloo": (2e-4, 3e-4, 5e-4),
}
"""Stage-1 learning rates tried per algorithm: spread around where a pilot on the ``reader`` base put each one."""

CONTROL_LR_GRID: dict[str, tuple[float, ...]] = {a: (1e-3, 3e-3, 1e-2) for a in DEFAULT_LR_GRID}
"""Stage-1 rates tried on each control base (``AlgorithmsConfig.control_lr_grid``): a base without the pre-trained
distribution needs larger rates to be lifted in one epoch. Set from a pilot of the stage-1 scores alone (SFT on the
lightly pre-trained base: 0.15, 0.36, 0.91 at these rates; random init: 0.03, 0.07, 0.14), before any control's
stage 2 was run at them."""

HUB_LR_GRID: dict[str, tuple[float, ...]] = {
    "sft": (1e-5, 3e-5),
    "dpo": (5e-7, 2e-6),
    "kto": (5e-7, 2e-6),
    "simpo": (5e-7, 2e-6),
    "rloo": (1e-6, 3e-6),
}
"""Stage-1 rates tried on a hub model (TRL's trainers): around TRL's defaults and the model cards' fine-tuning rates
(SFT 1e-5 to 2e-5; DPO, KTO, SimPO and RLOO about 1e-6). Not calibrated here: no machine that builds the book reaches
the hub; the study's own calibration picks between them on the reader's GPU."""
HUB_SAFETY_DATA = "PKU-Alignment/PKU-SafeRLHF::train"
"""The hub's safety preference set: two responses per prompt with a safety label each (BeaverTails also fits, where a
prompt has several labelled responses)."""


@dataclass(frozen=True)
class AlgorithmsConfig:
    """Everything one algorithms study depends on; validated on creation, before any training.

    Stage 1 aligns each base with each algorithm on ``n_align`` examples (one epoch, batch
    ``align_batch_size``; RLOO: prompts per step); stage 2 is chapter 7's: SFT at ``perturb_lr`` on the
    unaligned answers, scored at every ``n`` of ``n_perturb``. ``lrs`` fixes the stage-1 rates and skips
    the calibration (``None``: calibrate on ``calibration_seeds`` toward ``target``). ``align_overrides``
    sets other fields of an algorithm's config (e.g. ``{"rloo": {"k": 4}}``).

    The verdicts' margins: ``rebound_share`` is the share of the alignment gain that stage 2 must undo
    within ``n_align`` examples for an algorithm to count as rebounding; the algorithms count as the
    same where every algorithm's n-to-halfway is within a factor ``halfway_factor`` of SFT's and its
    settled level within ``level_margin`` of SFT's; ``match_margin`` is the largest difference in aligned
    score from SFT's still called matched; a control base counts only if stage 1 lifted its score by at
    least ``min_gain``; with ``gate_controls`` a control curve whose stage 1 lifted it by less than that on its seed
    stops after stage 1 (one point, n = 0): it is left out of the verdict either way, so its stage 2 would
    decide nothing and costs the most.

    ``control_lr_grid`` (per algorithm, a tuple of rates; ``None``, the default: each control aligns at its
    algorithm's rate from the pre-trained base) calibrates the stage-1 rate of every control base on its own,
    toward the same ``target`` on the same calibration seeds, so that a control is lifted about as high as the
    pre-trained base where its algorithm can lift it at all (one epoch, as everywhere in the study).

    ``hub_model`` (``"org/model"``, ``"org/model@revision"`` or a ``save_pretrained`` folder; ``None``: the
    micro-world) runs stage 1 through TRL's trainers
    (:mod:`~elasticity_lab.experiments.algorithms.trl_path`) on ``safety_data`` (BeaverTails or PKU-SafeRLHF,
    ``name:config:split`` or a local copy), scored by the refusal rule on ``max_new_tokens`` sampled tokens, with
    sequences cut at ``max_length`` tokens; its controls are ``random`` only (a hub model has no lightly
    pre-trained checkpoint here: give an early revision as its own ``hub_model`` instead).
    """

    scale: str = "reader"
    task: str = "safety"
    algorithms: tuple[str, ...] = ALGORITHMS
    n_align: int = 64
    align_batch_size: int = 8
    n_perturb: tuple[int, ...] = (0, 8, 16, 32, 64, 96, 128)
    perturb_lr: float = 1e-3
    perturb_batch_size: int = 8
    seeds: tuple[int, ...] = (0, 1, 2)
    bases: tuple[str, ...] = ("pretrained",) + CONTROL_BASES
    target: float = 0.6
    lr_grid: Mapping[str, tuple[float, ...]] = field(default_factory=lambda: dict(DEFAULT_LR_GRID))
    calibration_seeds: tuple[int, ...] = (100,)
    lrs: Mapping[str, float] | None = None
    align_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    preset: str = "micro"
    pretrain_tokens: int | None = None
    light_fraction: float = 1 / 32
    n_prompts: int = 128
    n_kl: int = 64
    rebound_share: float = 0.5
    halfway_factor: float = 2.0
    level_margin: float = 0.15
    match_margin: float = 0.1
    min_gain: float = 0.1
    gate_controls: bool = True
    control_lr_grid: Mapping[str, tuple[float, ...]] | None = None
    hub_model: str | None = None
    safety_data: str = HUB_SAFETY_DATA
    max_length: int = 256
    max_new_tokens: int = 32

    @property
    def on_hub(self) -> bool:
        """Stage 1 through TRL's trainers on a hub model (or folder), not the library's loops on the micro-world."""
        return self.hub_model is not None

    def __post_init__(self) -> None:
        check_choice("scale", self.scale, ("smoke", "reader", "full"))
        check_choice("task", self.task, TASKS)
        if self.hub_model is not None:
            if not isinstance(self.hub_model, str) or not self.hub_model.strip():
                raise ValueError(f"hub_model={self.hub_model!r} is not allowed; give 'org/model', 'org/model@revision', a folder, or None (the micro-world).")
            if self.task != "safety":
                raise ValueError(f"task={self.task!r} is not allowed with hub_model; the TRL path builds preference pairs from "
                                 "a safety data set (a safe and an unsafe response to one prompt), so use task='safety'.")
            if "light" in self.bases:
                raise ValueError(f"bases={self.bases!r} is not allowed with hub_model={self.hub_model!r}; a hub model has no "
                                 "lightly pre-trained checkpoint here: use ('pretrained', 'random'), and an early revision as its own hub_model.")
            for name in ("max_length", "max_new_tokens"):
                check_int(name, getattr(self, name), 1)
        if not self.algorithms or len(set(self.algorithms)) != len(self.algorithms):
            raise ValueError(f"algorithms={self.algorithms!r} is not allowed; give distinct names from {ALGORITHMS}.")
        for a in self.algorithms:
            check_choice("algorithms entry", a, ALGORITHMS)
        if "sft" not in self.algorithms:
            raise ValueError(f"algorithms={self.algorithms!r} is not allowed without 'sft', the reference the others are compared with.")
        if not isinstance(self.n_align, int) or self.n_align <= 0:
            raise ValueError(f"n_align={self.n_align!r} is not allowed; it must be an integer > 0.")
        for name in ("align_batch_size", "n_prompts", "n_kl"):
            check_int(name, getattr(self, name), 1)
        for name in ("perturb_lr", "halfway_factor", "match_margin"):
            check_positive(name, getattr(self, name))
        _check_grid("n_perturb", self.n_perturb, self.perturb_batch_size)
        if self.n_align not in self.n_perturb:
            raise ValueError(f"n_perturb={self.n_perturb!r} must contain n_align={self.n_align} "
                             f"(the rebound verdict reads the score after as many negative examples as positive ones).")
        if len(self.n_perturb) < 4:
            raise ValueError(f"n_perturb={self.n_perturb!r} is not allowed; a curve needs at least 4 points.")
        for name in ("seeds", "calibration_seeds"):
            seeds = getattr(self, name)
            if not seeds or len(set(seeds)) != len(seeds) or any(not isinstance(s, int) or s < 0 for s in seeds):
                raise ValueError(f"{name}={seeds!r} is not allowed; give one or more distinct integers >= 0.")
        if len(self.seeds) < 2:
            raise ValueError(f"seeds={self.seeds!r} is not allowed; the intervals need at least 2 seeds (the book uses 3).")
        if set(self.seeds) & set(self.calibration_seeds):
            raise ValueError(f"calibration_seeds={self.calibration_seeds!r} overlap seeds={self.seeds!r}; calibrate on seeds the study does not use.")
        if "pretrained" not in self.bases or len(set(self.bases)) != len(self.bases):
            raise ValueError(f"bases={self.bases!r} is not allowed; give 'pretrained' and any of {CONTROL_BASES}, each once.")
        for b in self.bases:
            check_choice("bases entry", b, ("pretrained",) + CONTROL_BASES)
        for name in ("target", "rebound_share"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 < v < 1.0):
                raise ValueError(f"{name}={v!r} is not allowed; it must be in (0, 1).")
        for name in ("level_margin", "min_gain"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 <= v < 1.0):
                raise ValueError(f"{name}={v!r} is not allowed; it must be in [0, 1).")
        if self.halfway_factor <= 1.0:
            raise ValueError(f"halfway_factor={self.halfway_factor!r} is not allowed; it must be > 1 (a factor of 1 allows no difference at all).")
        check_choice("preset", self.preset, PRESETS)
        if self.pretrain_tokens is not None:
            check_positive("pretrain_tokens", self.pretrain_tokens)
        if not 0.0 < self.light_fraction < 1.0:
            raise ValueError(f"light_fraction={self.light_fraction!r} is not allowed; it must be in (0, 1).")
        if self.lrs is None:
            for a in self.algorithms:
                grid = self.lr_grid.get(a)
                if not grid:
                    raise ValueError(f"lr_grid has no rates for algorithm {a!r}; give a tuple of learning rates > 0 (or fix lrs).")
                for lr in grid:
                    _check_lr(f"lr_grid[{a!r}] entry", lr)
        else:
            for a in self.algorithms:
                if a not in self.lrs:
                    raise ValueError(f"lrs has no rate for algorithm {a!r}; give one for each of {self.algorithms} (or lrs=None to calibrate).")
                _check_lr(f"lrs[{a!r}]", self.lrs[a])
        if self.control_lr_grid is not None:
            for a in self.algorithms:
                grid = self.control_lr_grid.get(a)
                if not grid:
                    raise ValueError(f"control_lr_grid has no rates for algorithm {a!r}; give a tuple of learning rates > 0 "
                                     "for each algorithm (or control_lr_grid=None: the controls take the pre-trained base's rate).")
                for lr in grid:
                    _check_lr(f"control_lr_grid[{a!r}] entry", lr)
        for a, over in self.align_overrides.items():
            check_choice("align_overrides key", a, ALGORITHMS)
            for k in ("lr", "seed", "algorithm"):
                if k in over:
                    raise ValueError(f"align_overrides[{a!r}] sets {k!r}, which the study sets itself; remove it.")
            self.align_config(a, 1e-3)  # the algorithm's own config validates the rest (β > 0, k >= 2, ...)

    def align_config(self, algorithm: str, lr: float) -> Any:
        """The stage-1 config of ``algorithm`` at ``lr`` (its usual β, γ, k; the study's batch size; one epoch)."""
        from elasticity_lab.experiments.algorithms.align import default_align_config

        over = dict(self.align_overrides.get(algorithm, {}))
        if algorithm != "rloo":
            over.setdefault("batch_size", self.align_batch_size)
        return default_align_config(algorithm, lr=lr, **over)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["lr_grid"] = {k: list(v) for k, v in self.lr_grid.items()}
        d["lrs"] = None if self.lrs is None else dict(self.lrs)
        d["align_overrides"] = {k: dict(v) for k, v in self.align_overrides.items()}
        d["control_lr_grid"] = None if self.control_lr_grid is None else {k: list(v) for k, v in self.control_lr_grid.items()}
        return d


def _check_lr(name: str, lr: Any) -> None:
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"{name}={lr!r} is not allowed; a learning rate must be a finite number > 0.")


SCALE_PRESETS: dict[str, dict[str, Any]] = {
    # only exercises the code: bases pre-trained for seconds, tiny grids, two rates per algorithm; the controls at the
    # pre-trained base's rates (their own calibration is tested in tests/test_algorithms.py)
    "smoke": dict(n_align=16, n_perturb=(0, 8, 16, 32), n_prompts=16, n_kl=16, seeds=(0, 1),
                  lr_grid={a: g[:: max(1, len(g) - 1)][:2] for a, g in DEFAULT_LR_GRID.items()}),
    # the book's section: budgeted at ≤ 2.5 minutes on 2 CPU cores; stage 2 ends at n = n_align (the verdict's point),
    # where the pre-trained curves of every algorithm are past halfway (in a pilot all five were by n = 32)
    # each control base calibrated on its own (CONTROL_LR_GRID): about 1 CPU-minute more than the controls at the
    # pre-trained base's rates, which lift no control by min_gain (chapter 8's run before this change)
    "reader": dict(n_perturb=(0, 8, 16, 32, 64), control_lr_grid=dict(CONTROL_LR_GRID)),
    # a hub model through TRL's trainers (experiments.algorithms.trl_path), planned for a Colab GPU (not measured here:
    # no machine that builds the book reaches the hub)
    "full": dict(hub_model=DEFAULT_HUB_MODEL, bases=("pretrained", "random"), lr_grid=dict(HUB_LR_GRID), n_align=128,
                 align_batch_size=8, n_perturb=(0, 16, 32, 64, 128), perturb_lr=1e-5, perturb_batch_size=16,
                 n_prompts=64, n_kl=64, align_overrides={"rloo": {"max_new_tokens": 32}}),
}
"""The book's study at each scale, as overrides of :class:`AlgorithmsConfig`'s defaults: data, not code paths."""

SEEDS_BY_SCALE: dict[str, int] = {"smoke": 2, "reader": 3, "full": 3}


def default_config(scale: str = "reader", n_seeds: int | None = None, **overrides: Any) -> AlgorithmsConfig:
    """The book's study at a scale (:data:`SCALE_PRESETS`), with ``n_seeds`` seeds and any field overridden."""
    scale = check_choice("scale", scale, tuple(SCALE_PRESETS))
    preset = dict(SCALE_PRESETS[scale])
    if n_seeds is not None:
        check_positive("n_seeds", n_seeds)
        preset["seeds"] = tuple(range(n_seeds))
    elif "seeds" not in preset:
        preset["seeds"] = tuple(range(SEEDS_BY_SCALE[scale]))
    return AlgorithmsConfig(**{"scale": scale, **preset, **overrides})


def base_spec(config: AlgorithmsConfig, kind: str = "pretrained") -> Any:
    """The base of a kind (``pretrained``, ``light``, ``random``): the micro-world's at the study's scale (``full``:
    reader's), or the hub model (``random``: its architecture re-initialised)."""
    from elasticity_lab.lm.bases import BaseSpec

    check_choice("kind", kind, ("pretrained",) + CONTROL_BASES)
    if config.hub_model is not None:
        check_choice("kind", kind, ("pretrained", "random"))
        spec = BaseSpec.parse(config.hub_model)
        return spec if kind == "pretrained" else dataclasses.replace(spec, revision="random")
    return BaseSpec(config.preset, None if kind == "pretrained" else kind, scale="reader" if config.scale == "full" else config.scale,
                    tokens=config.pretrain_tokens, light_fraction=config.light_fraction)


def seeds_text(seeds: Sequence[int]) -> str:
    return ", ".join(str(s) for s in seeds)
