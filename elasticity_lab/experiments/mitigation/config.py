"""The mitigation study's configuration: the catalogue of mitigations and the per-scale presets, as data.

A *mitigation* is a change to one of three places, everything else held at the rebound protocol's
baseline (``none``): stage 1 aligns a base on ``N_a`` refusals to harmful requests, stage 2 perturbs the
aligned model with compliant answers, scored on held-out harmful requests after every ``n`` of the grid.

1. the alignment data (``data ×k``: ``k`` times more distinct examples at one epoch; ``repeat ×k``: the
   baseline's examples for ``k`` times as many steps, the fixed-steps control of ``data ×k``);
2. the pre-training corpus (``world 0.5``/``world 0.8``: bases pre-trained on worlds whose share of refused
   harmful requests is 0.5 or 0.8 instead of 0.2; ``early``: the lightly pre-trained checkpoint of a run);
3. the later fine-tuning (``replay``: the alignment data mixed into every perturbation batch; ``anchor``: each
   step pulls the weights a fixed share of the way back to the aligned model, a decoupled L2 anchor; ``LoRA``:
   the perturbation through a low-rank adapter; ``lr ×f``: the perturbation's learning rate scaled).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from elasticity_lab.core.config import check_choice, check_positive
from elasticity_lab.lm.presets import PRESETS
from elasticity_lab.lm.training import DEFAULT_LR

FAMILIES: tuple[str, ...] = ("baseline", "alignment data", "pre-training", "later fine-tuning")
BASELINE = "none"


@dataclass(frozen=True)
class Mitigation:
    """One condition of the study, as changes to the baseline's protocol (all defaults = ``none``)."""

    family: str = "baseline"
    data_factor: int = 1  # N_a = n_align × data_factor distinct examples
    steps_factor: int | None = None  # stage-1 steps = baseline steps × steps_factor (None: one epoch)
    world_refusal: float | None = None  # the pre-training world's refused share of harmful requests (None: 0.2)
    early: bool = False  # the lightly pre-trained checkpoint ("light") instead of the final one
    replay: float = 0.0  # alignment examples replayed per perturbation example
    anchor: float = 0.0  # share of the way back to the aligned weights after every perturbation step
    method: str = "full"  # the perturbation's fine-tuning: full or LoRA
    lr_factor: float = 1.0  # the perturbation's learning rate = lr × lr_factor

    def __post_init__(self) -> None:
        check_choice("family", self.family, FAMILIES)
        check_positive("data_factor", self.data_factor)
        if self.steps_factor is not None:
            check_positive("steps_factor", self.steps_factor)
        if self.world_refusal is not None and not 0.0 <= self.world_refusal <= 1.0:
            raise ValueError(f"world_refusal={self.world_refusal!r} is not allowed; it must be a probability in [0, 1].")
        check_positive("replay", self.replay, allow_zero=True)
        if not 0.0 <= self.anchor < 1.0:
            raise ValueError(f"anchor={self.anchor!r} is not allowed; it must be in [0, 1).")
        check_choice("method", self.method, ("full", "lora"))
        check_positive("lr_factor", self.lr_factor)
        if self.anchor > 0 and self.method != "full":
            raise ValueError("anchor > 0 needs method='full' (the anchor pulls the full weights back).")


LORA_LR_FACTOR = DEFAULT_LR["lora"] / DEFAULT_LR["full"]
"""LoRA perturbs at the library's LoRA rate (3e-3 against full SFT's 1e-3): at the full rate an adapter
hardly moves, and "LoRA protects" would only say "a smaller step protects" (which ``lr ×0.3`` tests)."""

CATALOGUE: dict[str, Mitigation] = {
    BASELINE: Mitigation(),
    "data ×10": Mitigation("alignment data", data_factor=10),
    "data ×100": Mitigation("alignment data", data_factor=100),
    "repeat ×10": Mitigation("alignment data", steps_factor=10),
    "repeat ×100": Mitigation("alignment data", steps_factor=100),
    "world 0.5": Mitigation("pre-training", world_refusal=0.5),
    "world 0.8": Mitigation("pre-training", world_refusal=0.8),
    "early": Mitigation("pre-training", early=True),
    "world 0.8 early": Mitigation("pre-training", world_refusal=0.8, early=True),
    "replay 0.25": Mitigation("later fine-tuning", replay=0.25),
    "replay 0.5": Mitigation("later fine-tuning", replay=0.5),
    "replay 1": Mitigation("later fine-tuning", replay=1.0),
    "anchor 0.05": Mitigation("later fine-tuning", anchor=0.05),
    "anchor 0.2": Mitigation("later fine-tuning", anchor=0.2),
    "LoRA": Mitigation("later fine-tuning", method="lora", lr_factor=LORA_LR_FACTOR),
    "lr ×0.3": Mitigation("later fine-tuning", lr_factor=0.3),
    "lr ×3": Mitigation("later fine-tuning", lr_factor=3.0),
}
"""Every mitigation the book knows, by name (the ``mitigation`` column of every table)."""

CONTRASTS: dict[str, tuple[str, str]] = {
    "more data at fixed steps (×10)": ("data ×10", "repeat ×10"),
    "more data at fixed steps (×100)": ("data ×100", "repeat ×100"),
    "raised share, early checkpoints": ("world 0.8 early", "early"),
}
"""Comparisons other than against ``none`` (the first minus the second), run when both conditions are."""


@dataclass(frozen=True)
class MitigationConfig:
    """Everything one mitigation study depends on; validated on creation, before any training."""

    scale: str = "reader"
    mitigations: tuple[str, ...] = (BASELINE, "data ×10", "data ×100", "repeat ×100", "world 0.8", "world 0.8 early",
                                    "early", "replay 0.5", "anchor 0.05", "LoRA", "lr ×0.3")
    seeds: tuple[int, ...] = (0, 1, 2)
    preset: str = "micro"
    pretrain_tokens: int | None = None  # None: the scale's budget (the book bases at reader)
    # True: the curve of fine-tuning seed s starts from the base pre-trained with seed s (every condition, ``none``
    # included), so the intervals cover pre-training seeds too; False: every curve starts from pre-training seed 0
    pretrain_seeds: bool = False
    n_align: int = 32
    n_perturb: tuple[int, ...] = (0, 16, 32, 64, 128)
    lr: float = 1e-3
    align_batch_size: int = 16
    perturb_batch_size: int = 8
    n_prompts: int = 48
    n_kl: int = 16  # the KL to the base is recorded with each curve but no verdict here reads it
    n_cost_tokens: int = 8192
    n_other: int = 24
    protection_margin: float = 0.02
    cost_margin_bits: float = 0.01
    cost_margin_score: float = 0.02

    def __post_init__(self) -> None:
        check_choice("scale", self.scale, ("smoke", "reader", "full"))
        if not self.mitigations or self.mitigations[0] != BASELINE or len(set(self.mitigations)) != len(self.mitigations):
            raise ValueError(f"mitigations={self.mitigations!r} is not allowed; start with {BASELINE!r} (the baseline) "
                             "and name each mitigation once.")
        for m in self.mitigations:
            check_choice("mitigations entry", m, tuple(CATALOGUE))
        if len(self.seeds) < 2 or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds={self.seeds!r} is not allowed; give two or more distinct integers (an interval needs them).")
        for s in self.seeds:
            check_positive("seeds entry", s, allow_zero=True)
        check_choice("preset", self.preset, PRESETS)
        if self.pretrain_tokens is not None:
            check_positive("pretrain_tokens", self.pretrain_tokens)
        for name in ("n_align", "lr", "align_batch_size", "perturb_batch_size", "n_prompts", "n_kl", "n_cost_tokens", "n_other"):
            check_positive(name, getattr(self, name))
        for name in ("protection_margin", "cost_margin_bits", "cost_margin_score"):
            check_positive(name, getattr(self, name), allow_zero=True)
        g = self.n_perturb
        if len(g) < 3 or g[0] != 0 or list(g) != sorted(set(g)) or any(n % self.perturb_batch_size for n in g):
            raise ValueError(f"n_perturb={tuple(g)!r} is not allowed; give at least 3 sizes starting at 0, increasing, each a "
                             f"multiple of perturb_batch_size={self.perturb_batch_size}.")
        for m in self.mitigations:
            r = CATALOGUE[m].replay * self.perturb_batch_size
            if abs(r - round(r)) > 1e-9:
                raise ValueError(f"mitigation {m!r} replays {CATALOGUE[m].replay} per example, which is not a whole number "
                                 f"of examples per batch of {self.perturb_batch_size}; choose a multiple of 1/{self.perturb_batch_size}.")

    def condition(self, name: str) -> Mitigation:
        return CATALOGUE[check_choice("mitigation", name, self.mitigations)]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["catalogue"] = {m: dataclasses.asdict(CATALOGUE[m]) for m in self.mitigations}
        return d


SCALE_PRESETS: dict[str, dict[str, Any]] = {
    # only exercises the code: tiny sizes, bases pre-trained for seconds, one mitigation of each kind
    "smoke": dict(mitigations=(BASELINE, "data ×10", "repeat ×10", "world 0.8", "replay 0.5", "anchor 0.05", "LoRA", "lr ×0.3"),
                  seeds=(0, 1), n_align=16, n_perturb=(0, 8, 16, 32), n_prompts=16, n_kl=16, n_cost_tokens=2048,
                  n_other=8, pretrain_tokens=32_768),
    # the book: budgeted at ≤ 4 minutes on 2 shared CPU cores (chapter 9); the defaults above, and seed s pre-trained
    # with seed s too (the shipped -seedN bases), so that the pre-training findings have an interval over pre-training seeds
    "reader": dict(pretrain_seeds=True),
    # a GPU: every mitigation in the catalogue, a longer perturbation, more seeds and prompts
    # (pre-training seeds 3 and 4 are not shipped: they are pre-trained once, then cached)
    "full": dict(mitigations=tuple(CATALOGUE), seeds=(0, 1, 2, 3, 4), pretrain_seeds=True, n_perturb=(0, 16, 32, 64, 128, 256, 512),
                 n_prompts=256, n_kl=128, n_cost_tokens=65_536, n_other=128),
}
"""The book's study at each scale, as overrides of :class:`MitigationConfig`'s defaults: data, not code paths."""


def default_config(scale: str = "reader", n_seeds: int | None = None, **overrides: Any) -> MitigationConfig:
    """The book's study at a scale (:data:`SCALE_PRESETS`), with ``n_seeds`` seeds and any field overridden."""
    scale = check_choice("scale", scale, tuple(SCALE_PRESETS))
    preset = dict(SCALE_PRESETS[scale])
    if n_seeds is not None:
        check_positive("n_seeds", n_seeds)
        preset["seeds"] = tuple(range(n_seeds))
    return MitigationConfig(**{"scale": scale, **preset, **overrides})


def catalogue_table(mitigations: tuple[str, ...] | None = None) -> "pd.DataFrame":
    """The mitigations as a table of their changes to the baseline (a blank where a field keeps the baseline's value)."""
    import pandas as pd

    base = dataclasses.asdict(CATALOGUE[BASELINE])
    rows = []
    for name in mitigations or tuple(CATALOGUE):
        m = dataclasses.asdict(CATALOGUE[check_choice("mitigation", name, tuple(CATALOGUE))])
        changes = ", ".join(f"{k} = {v}" for k, v in m.items() if k != "family" and v != base[k])
        rows.append({"mitigation": name, "family": m["family"], "changes to the baseline": changes or "(the baseline)"})
    return pd.DataFrame(rows)
