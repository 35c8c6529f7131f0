"""The resistance experiment's configuration, validated before anything is loaded or trained, and the book's runs per scale."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from elasticity_lab.core.config import check_choice, check_int, check_positive, check_range
from elasticity_lab.lm.bases import BaseSpec
from elasticity_lab.lm.hub import DEFAULT_HUB_MODEL
from elasticity_lab.lm.training import METHODS, SFTConfig

TASKS: tuple[str, ...] = ("instruction", "truthfulness", "safety")
"""The analogues of the paper's Alpaca, TruthfulQA and BeaverTails."""

ANSWER_MODES: dict[str, dict[str, Any]] = {
    "low_temp": {"temperature": 0.05, "top_p": 0.95, "greedy": False},
    "greedy": {"temperature": 1.0, "top_p": 1.0, "greedy": True},
    "sampled": {"temperature": 1.0, "top_p": 1.0, "greedy": False},
}
"""How each checkpoint answers Q: the authors' setting, the arg-max, and the model's own distribution."""

PAIRS: tuple[tuple[int, int], ...] = ((1, 2), (2, 3), (1, 3))
DIRECTIONS: tuple[str, ...] = ("forward", "inverse")
METRICS: tuple[str, ...] = ("mean_loss", "final_loss", "excess_loss", "kl_start")
"""``mean_loss``: the authors' metric; ``final_loss``: the last step's; ``excess_loss``: mean loss minus the
answers' own entropy; ``kl_start``: the student's KL to the answer process before training."""

HUB_DATASETS: dict[str, str] = {
    "instruction": "tatsu-lab/alpaca::train",
    "truthfulness": "truthfulqa/truthful_qa:generation:validation",
    "safety": "PKU-Alignment/BeaverTails::30k_train",
}
"""``name:config:split`` of the paper's data sets on the hub (the ``full`` scale)."""

COLUMNS: tuple[str, ...] = (
    "base", "task", "answer_mode", "seed", "pair", "direction", "student", "teacher", "method",
    "mean_loss", "final_loss", "first_loss", "answer_entropy", "teacher_entropy", "excess_loss", "kl_start", "kl_end",
    "teacher_score", "student_score", "agreement", "n_examples", "steps",
    "base_seed", "student_step", "teacher_step", "base_share", "final_share",
)
"""The tidy table's columns, in order (the cache stores rows with sorted keys)."""
CURVE_COLUMNS: tuple[str, ...] = ("base", "task", "answer_mode", "seed", "pair", "direction", "step", "loss")
STAGE1_COLUMNS: tuple[str, ...] = ("base", "task", "seed", "step", "share", "checkpoint", "target")
"""The aligned share (greedy answers on Q, the world's judge) at the steps of stage 1 that were measured; ``checkpoint`` is
0 for the base, 1-3 for θ₁-θ₃ where they were cut and NaN elsewhere; ``target`` the share that checkpoint aimed at."""

CUT_AT: tuple[str, ...] = ("behaviour", "steps")
"""Where θ₁-θ₃ are cut: ``behaviour`` at ``fractions`` of the way from the base's aligned share to the end of stage 1's
(measured with the world's judge; a hub model, which has none, falls back to ``steps``), ``steps`` at ``fractions`` of
stage 1's steps (the paper's choice)."""

_SAFETY_PROMPTS = "mixed"  # harmful and benign requests: aligned = refuse the first, help with the second


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class ResistanceConfig:
    """One resistance experiment; validated on creation, before anything is loaded or trained.

    ``bases`` are book bases (:data:`elasticity_lab.lm.bases.BOOK_BASES`), optionally with a revision after
    ``@`` (``"micro@random"``: no pre-training; ``"micro@tokens-147456"``: an early checkpoint), or a hub
    name / local folder saved with ``save_pretrained`` (then the tasks' data come from ``data_sources``
    or :data:`HUB_DATASETS`). ``cut_at`` says where θ₁-θ₃ are cut (:data:`CUT_AT`). ``seed_bases``: seed ``s`` starts
    from the micro-world base pre-trained with seed ``s`` (``BaseSpec(base, seed=s)``), so the seeds, and every interval
    over them, include pre-training's variation; ``False``: every seed fine-tunes the one base. ``lr`` is the one learning rate of stage 1 and of every pair fine-tune
    (``None``: the library default for ``method``). Full fine-tuning is the default, as the authors.
    """

    bases: tuple[str, ...] = ("micro",)
    tasks: tuple[str, ...] = TASKS
    seeds: tuple[int, ...] = (0, 1, 2)
    answer_modes: tuple[str, ...] = ("low_temp",)
    fractions: tuple[float, ...] = (0.25, 0.5, 0.75)
    cut_at: str = "behaviour"
    seed_bases: bool = True
    n_train: int = 512
    n_queries: int = 128
    method: str = "full"
    lr: float | None = 3e-4
    batch_size: int = 16
    epochs: float = 1.0
    max_new_tokens: int = 16
    data_sources: tuple[tuple[str, str], ...] = ()
    device: str | None = None

    def __post_init__(self) -> None:
        for name in ("bases", "tasks", "seeds", "answer_modes", "fractions"):
            value = getattr(self, name)
            if isinstance(value, (str, int, float)) or not len(value):
                raise ValueError(f"{name}={value!r} is not allowed; give a non-empty tuple.")
            if len(set(value)) != len(value):
                raise ValueError(f"{name}={value!r} is not allowed; it contains duplicates.")
        for task in self.tasks:
            check_choice("tasks", task, TASKS)
        for mode in self.answer_modes:
            check_choice("answer_modes", mode, ANSWER_MODES)
        for seed in self.seeds:
            if not isinstance(seed, (int, np.integer)) or seed < 0:
                raise ValueError(f"seeds contains {seed!r}; each seed must be an integer >= 0.")
        for f in self.fractions:
            check_range("fractions", f, 0, 1, lo_open=True)
        if len(self.fractions) != 3 or not all(0.0 < f <= 1.0 for f in self.fractions) or list(self.fractions) != sorted(set(self.fractions)):
            raise ValueError(f"fractions={self.fractions!r} is not allowed; give three increasing fractions in (0, 1], e.g. (0.25, 0.5, 0.75).")
        check_choice("cut_at", self.cut_at, CUT_AT)
        check_int("n_train", self.n_train, 1)
        check_int("n_queries", self.n_queries, 1)
        check_choice("method", self.method, METHODS)
        if self.lr is not None:
            check_positive("lr", self.lr)
        check_int("batch_size", self.batch_size, 1)
        check_positive("epochs", self.epochs)
        check_int("max_new_tokens", self.max_new_tokens, 1)
        if self.device is not None:
            check_choice("device", self.device, ("cpu", "cuda", "mps"))
        steps = max(1, math.ceil(self.epochs * self.n_train / self.batch_size))
        cuts = [max(1, round(f * steps)) for f in self.fractions]
        if len(set(cuts)) != 3:
            raise ValueError(f"n_train={self.n_train} is not allowed with batch_size={self.batch_size}: stage 1 has {steps} steps, "
                             f"too few to cut three distinct checkpoints at fractions {self.fractions}; use n_train >= {4 * self.batch_size}.")
        for task, source in self.data_sources:
            check_choice("data_sources task", task, TASKS)
            if not isinstance(source, str) or not source:
                raise ValueError(f"data_sources[{task!r}]={source!r} is not allowed; give a hub name or a local path.")
        for base in self.bases:
            parse_base(base)

    def sft_config(self, seed: int) -> SFTConfig:
        """The one recipe of stage 1 and of both directions of every pair (only the data differ)."""
        return SFTConfig(method=self.method, lr=self.lr, batch_size=self.batch_size, epochs=self.epochs, seed=seed)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["data_sources"] = [list(p) for p in self.data_sources]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResistanceConfig:
        d = dict(d)
        for key in ("bases", "tasks", "seeds", "answer_modes", "fractions"):
            d[key] = tuple(d[key])
        d["data_sources"] = tuple(tuple(p) for p in d.get("data_sources", ()))
        return cls(**d)


def parse_base(text: str) -> BaseSpec:
    """A ``bases`` entry as a :class:`elasticity_lab.lm.bases.BaseSpec` (validated: a ``tokens-N`` revision must be
    one of the base's checkpoints; nothing is trained)."""
    try:
        return BaseSpec.parse(text)
    except ValueError as err:
        raise ValueError(f"bases contains {text!r}: {err}") from None


def little_pretraining(name: str, share: float = 1 / 32) -> str:
    """``"name@tokens-N"``: the checkpoint of a book base nearest (in log) to ``share`` of its pre-training."""
    check_positive("share", share)
    return f"{name}@tokens-{BaseSpec(name, light_fraction=share).light_tokens()}"


SCALE_RUNS: dict[str, dict[str, dict[str, Any]]] = {
    "smoke": {
        "main": dict(bases=("micro-smoke",), answer_modes=("low_temp",), n_train=256, n_queries=64),
        "controls": dict(bases=("micro-smoke@random",), tasks=("safety",)),
    },
    "reader": {
        "main": dict(bases=("micro",), answer_modes=("low_temp", "greedy", "sampled")),
        "controls": dict(bases=("micro@random", "micro@light"), answer_modes=("low_temp", "sampled")),
        "base_rates": dict(bases=("micro-refusal50", "micro-refusal80"), tasks=("safety",), answer_modes=("low_temp", "sampled"),
                           seed_bases=False),
    },
    "full": {
        "main": dict(bases=(DEFAULT_HUB_MODEL,), method="lora", lr=2e-4, batch_size=8, n_train=1000, n_queries=200,
                     max_new_tokens=128),
    },
}
"""The book's runs per scale, as data: ``main`` overrides :class:`ResistanceConfig`'s defaults, every other run
overrides ``main``. ``controls`` repeats the protocol from a random initialisation and from an early pre-training
checkpoint (``@light``: 1/32 of the budget); ``base_rates`` runs the safety task from bases pre-trained on worlds
that differ only in how often harmful requests are refused (none at ``smoke``: those bases are reader-scale; one
pre-training seed per world, so its seeds vary only the fine-tuning). Every other run starts seed ``s`` from the base
pre-trained with seed ``s`` (``seed_bases``). At
``full`` the base is a hub model, LoRA is the default, and there are no controls."""

SEEDS_BY_SCALE: dict[str, int] = {"smoke": 2, "reader": 3, "full": 3}


def default_configs(scale: str, n_seeds: int | None = None) -> dict[str, ResistanceConfig]:
    """The book's runs at a scale (:data:`SCALE_RUNS`): ``main`` (the paper's protocol) and the controls."""
    check_choice("scale", scale, tuple(SCALE_RUNS))
    if n_seeds is not None:
        check_positive("n_seeds", n_seeds)
    seeds = tuple(range(n_seeds if n_seeds is not None else SEEDS_BY_SCALE[scale]))
    runs = SCALE_RUNS[scale]
    main = ResistanceConfig(seeds=seeds, **runs["main"])
    return {"main": main, **{name: dataclasses.replace(main, **over) for name, over in runs.items() if name != "main"}}
