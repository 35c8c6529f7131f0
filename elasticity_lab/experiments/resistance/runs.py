"""The resistance protocol run: checkpoints θ₁–θ₃ cut from one SFT run, every pair both ways, cached per unit."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from elasticity_lab.core.cache import cached_json, is_cached
from elasticity_lab.core.progress import progress_bar
from elasticity_lab.experiments.resistance.analysis import fraction_inverse_lower, summarize
from elasticity_lab.experiments.resistance.config import (_SAFETY_PROMPTS, ANSWER_MODES, COLUMNS, CURVE_COLUMNS, HUB_DATASETS,
                                                          METRICS, PAIRS, ResistanceConfig, default_configs, parse_base)
from elasticity_lab.experiments.resistance.data import hub_task_data
from elasticity_lab.lm.bases import Base, BaseSpec, load_base
from elasticity_lab.lm.generation import generate
from elasticity_lab.lm.metrics import teacher_student_gap
from elasticity_lab.lm.presets import get_device
from elasticity_lab.lm.training import merged_copy, sft

# --------------------------------------------------------------------------- the experiment


@dataclass
class ResistanceResult:
    """The tidy table (one row per base × task × seed × answer mode × pair × direction), the loss curves, and the config."""

    config: ResistanceConfig
    table: pd.DataFrame
    curves: pd.DataFrame
    summary: pd.DataFrame = field(init=False)

    def __post_init__(self) -> None:
        self.summary = summarize(self.table)

    def fraction_inverse_lower(self, metric: str = "mean_loss") -> pd.DataFrame:
        return fraction_inverse_lower(self.summary, metric)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: the config, the table as records, the summary, and the fractions per metric."""
        return {
            "config": self.config.to_dict(),
            "table": _records(self.table),
            "summary": _records(self.summary),
            "fraction_inverse_lower": {m: _records(fraction_inverse_lower(self.summary, m)) for m in METRICS},
        }


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in df.to_dict("records")]


def _unit_key(config: ResistanceConfig, spec: BaseSpec, task: str, seed: int, mode: str) -> dict[str, Any]:
    """What one (base, task, seed, answer mode) unit's numbers depend on: its cache key."""
    key = config.to_dict()
    for drop in ("bases", "tasks", "seeds", "answer_modes"):
        key.pop(drop)
    key["data_sources"] = dict(config.data_sources).get(task) if not spec.micro_world else None
    base_id: Any = spec.key()["run"] if spec.micro_world else spec.source
    key["device"] = _device_of(config, spec)
    return {"kind": "resistance-unit", "base": spec.text, "base_id": base_id, "task": task, "seed": int(seed), "answer_mode": mode, "run": key}


def _device_of(config: ResistanceConfig, spec: BaseSpec) -> str:
    """The micro-world runs on the CPU unless told otherwise (its models are too small to gain); hub models take the best device."""
    return config.device or ("cpu" if spec.micro_world else get_device().type)


def _task_data(spec: BaseSpec, world: Any, config: ResistanceConfig, task: str, seed: int) -> tuple[list[tuple[str, str]], list[str]]:
    if world is not None:
        kind = _SAFETY_PROMPTS if task == "safety" else "harmful"
        train = [(e.prompt, e.response) for e in world.dataset(task, config.n_train, behaviour="aligned", split="train", prompt_kind=kind, seed=seed)]
        queries = [q.prompt for q in world.prompts(task, config.n_queries, split="heldout", prompt_kind=kind, seed=seed)]
        return train, queries
    source = dict(config.data_sources).get(task, HUB_DATASETS[task])
    return hub_task_data(task, source, config.n_train, config.n_queries, seed)


def cut_checkpoints(model: Any, tokenizer: Any, train: Sequence[tuple[str, str]], config: ResistanceConfig, seed: int) -> dict[int, Any]:
    """θ₁, θ₂, θ₃: models cut from one SFT run of the base at ``config.fractions`` (LoRA adapters merged)."""
    result = sft(model, tokenizer, train, config.sft_config(seed), checkpoint_fractions=config.fractions, progress=False)
    return {i + 1: merged_copy(result.checkpoints[f]).eval() for i, f in enumerate(config.fractions)}


def answer(model: Any, tokenizer: Any, queries: Sequence[str], mode: str, config: ResistanceConfig, seed: int) -> list[str]:
    """One checkpoint's answers to Q in an answer mode (seeded)."""
    kw = ANSWER_MODES[mode]
    return generate(model, tokenizer, list(queries), max_new_tokens=config.max_new_tokens, seed=seed, **kw)


def _run_mode(ckpts: dict[int, Any], tok: Any, world: Any, task: str, queries: list[str], mode: str,
              config: ResistanceConfig, seed: int, base: str) -> dict[str, Any]:
    """All pairs × both directions for one answer mode: rows and curves (JSON-able, the cached unit)."""
    kw = ANSWER_MODES[mode]
    answers = {k: answer(m, tok, queries, mode, config, seed) for k, m in ckpts.items()}
    scores = {k: (world.score(task, queries, a) if world is not None else float("nan")) for k, a in answers.items()}
    rows, curves = [], []
    for k, l in PAIRS:
        for direction, (student, teacher) in (("forward", (k, l)), ("inverse", (l, k))):
            data = list(zip(queries, answers[teacher]))
            before = teacher_student_gap(ckpts[teacher], ckpts[student], tok, queries, answers[teacher], **kw)
            run = sft(ckpts[student], tok, data, config.sft_config(seed), progress=False)
            after = teacher_student_gap(ckpts[teacher], run.model, tok, queries, answers[teacher], **kw)
            rows.append({
                "base": base, "task": task, "answer_mode": mode, "seed": int(seed), "pair": f"{k}-{l}", "direction": direction,
                "student": student, "teacher": teacher, "method": config.method,
                "mean_loss": run.mean_loss, "final_loss": run.final_loss, "first_loss": float(run.curve["loss"].iloc[0]),
                "answer_entropy": before["entropy"], "teacher_entropy": before["teacher_entropy"],
                "excess_loss": run.mean_loss - before["entropy"], "kl_start": before["kl"], "kl_end": after["kl"],
                "teacher_score": scores[teacher], "student_score": scores[student],
                "agreement": float(np.mean([a == b for a, b in zip(answers[teacher], answers[student])])),
                "n_examples": len(data), "steps": len(run.curve),
            })
            curves += [{"base": base, "task": task, "answer_mode": mode, "seed": int(seed), "pair": f"{k}-{l}", "direction": direction,
                        "step": int(s), "loss": float(v)} for s, v in zip(run.curve["step"], run.curve["loss"])]
    return {"rows": rows, "curves": curves, "answers": {str(k): v[:8] for k, v in answers.items()}, "queries": queries[:8]}


def run_resistance(config: ResistanceConfig | None = None, *, progress: bool = True, refresh: bool = False) -> ResistanceResult:
    """Run (or read from the cache) every base × task × seed × answer mode of ``config``.

    Stage 1 (the checkpoints) runs once per (base, task, seed) and serves every answer mode; each
    mode's results are written to the cache as soon as they exist, so an interrupted run resumes.
    """
    config = config or ResistanceConfig()
    specs = [parse_base(b) for b in config.bases]
    units = [(s, t, seed) for s in specs for t in config.tasks for seed in config.seeds]
    rows: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    loaded: dict[str, Base] = {}
    bar = progress_bar(units, desc="resistance", enabled=progress)
    for spec, task, seed in bar:
        bar.set_postfix_str(f"{spec.text} · {task} · seed {seed}")
        keys = {m: _unit_key(config, spec, task, seed, m) for m in config.answer_modes}
        missing = [m for m in config.answer_modes if refresh or not is_cached("resistance", keys[m])]
        ckpts: dict[int, Any] = {}
        queries: list[str] = []
        world = None
        tok = None
        if missing:
            if spec.text not in loaded:
                loaded[spec.text] = load_base(spec, device=_device_of(config, spec))
            base = loaded[spec.text]
            model, tok, world = base.model, base.tokenizer, base.world
            train, queries = _task_data(spec, world, config, task, seed)
            ckpts = cut_checkpoints(model, tok, train, config, seed)
        for mode in config.answer_modes:
            compute = (lambda m=mode: _run_mode(ckpts, tok, world, task, queries, m, config, seed, spec.text))
            unit = cached_json("resistance", keys[mode], compute, refresh=refresh and mode in missing)
            rows += unit["rows"]
            curves += unit["curves"]
    return ResistanceResult(config, pd.DataFrame(rows, columns=list(COLUMNS)), pd.DataFrame(curves, columns=list(CURVE_COLUMNS)))


# --------------------------------------------------------------------------- CLI


def cli_result(scale: str, n_seeds: int | None = None) -> dict[str, Any]:
    """``python -m elasticity_lab run resistance``: every run of the scale, JSON-able."""
    configs = default_configs(scale, n_seeds)
    out: dict[str, Any] = {"scale": scale}
    for name, cfg in configs.items():
        out[name] = run_resistance(cfg).to_dict()
    main = out["main"]
    out["config"] = main["config"]
    out["table"] = main["table"]
    out["summary"] = main["summary"]
    return out
