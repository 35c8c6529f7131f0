"""The resistance protocol run: checkpoints θ₁–θ₃ cut from one SFT run, every pair both ways, cached per unit."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from elasticity_lab.core.cache import cached_json, is_cached
from elasticity_lab.core.progress import progress_bar
from elasticity_lab.experiments.resistance.analysis import fraction_inverse_lower, summarize
from elasticity_lab.experiments.resistance.config import (_SAFETY_PROMPTS, ANSWER_MODES, COLUMNS, CURVE_COLUMNS, HUB_DATASETS,
                                                          METRICS, PAIRS, STAGE1_COLUMNS, ResistanceConfig, default_configs, parse_base)
from elasticity_lab.experiments.resistance.data import hub_task_data
from elasticity_lab.experiments.resistance.verdicts import verdict_rows
from elasticity_lab.lm.bases import Base, BaseSpec, load_base
from elasticity_lab.lm.generation import generate
from elasticity_lab.lm.metrics import teacher_student_gap
from elasticity_lab.lm.presets import get_device
from elasticity_lab.lm.training import merged_copy, sft

# --------------------------------------------------------------------------- the experiment


@dataclass
class ResistanceResult:
    """The tidy table (one row per base × task × seed × answer mode × pair × direction), the loss curves, the aligned
    share along stage 1 (:data:`STAGE1_COLUMNS`) and the config."""

    config: ResistanceConfig
    table: pd.DataFrame
    curves: pd.DataFrame
    stage1: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(STAGE1_COLUMNS)))
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
            "stage1": _records(self.stage1),
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


MAX_SNAPSHOTS = 32
"""Stage 1 keeps at most this many evenly spaced snapshots to search for the behaviour milestones (a copy per step of a
hub model would not fit in memory; the micro-world's stage 1 has about this many steps)."""


MIN_MOVE = 0.1
"""Stage 1 must change the aligned share by at least this much (and by more than one query) for its checkpoints to be
cut at behaviour milestones; below it, a few queries' noise would decide where the cuts fall, so the steps do."""


def milestone_steps(share_at: Callable[[int], float], n_points: int, fractions: Sequence[float], *,
                    tolerance: float = 0.0) -> tuple[list[int], bool]:
    """Indices 1..``n_points`` of the stage-1 snapshots to cut θ₁-θ₃ at: for each fraction f, the first snapshot whose
    aligned share has gone f of the way from the base's (index 0) to the last snapshot's.

    ``share_at(i)`` measures snapshot i (0: the base). The search is a bisection, so it assumes the share moves
    monotonically along the run (where it does not, it finds *a* crossing); measuring costs one generation, and a
    bisection needs about log2(n_points) of them per milestone instead of n_points. The indices are made strictly
    increasing (a jump in behaviour between two snapshots would otherwise cut two checkpoints at one step). Returns
    the indices and whether stage 1 moved the share by more than ``tolerance``; where it did not, there is no
    change of behaviour to cut and the indices fall back to the fractions of the steps.
    """
    s0, s_end = share_at(0), share_at(n_points)
    moved = abs(s_end - s0) > tolerance
    if not moved:
        picks = [max(1, round(f * n_points)) for f in fractions]
    else:
        sign = 1.0 if s_end > s0 else -1.0
        picks = []
        for f in fractions:
            target = s0 + f * (s_end - s0)
            lo, hi = 0, n_points  # the share at lo has not reached the target, at hi it has
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if sign * (share_at(mid) - target) >= -1e-12:
                    hi = mid
                else:
                    lo = mid
            picks.append(hi)
    for j in range(1, len(picks)):
        picks[j] = max(picks[j], picks[j - 1] + 1)
    for j in range(len(picks) - 1, -1, -1):
        picks[j] = min(picks[j], n_points - (len(picks) - 1 - j))
        if j + 1 < len(picks):
            picks[j] = min(picks[j], picks[j + 1] - 1)
    return picks, moved


def cut_checkpoints(model: Any, tokenizer: Any, train: Sequence[tuple[str, str]], config: ResistanceConfig, seed: int, *,
                    world: Any = None, task: str | None = None, queries: Sequence[str] = ()) -> tuple[dict[int, Any], dict[str, Any]]:
    """θ₁, θ₂, θ₃ cut from one SFT run of the base (LoRA adapters merged), and the record of where.

    ``cut_at="behaviour"`` with a world: at ``config.fractions`` of the way from the base's aligned share on
    ``queries`` to the share at the end of stage 1 (greedy answers, the world's exact judge; see
    :func:`milestone_steps`). Otherwise at ``config.fractions`` of the steps. The record holds the total steps, the
    measured shares per step, the cut steps, their targets, and ``moved`` (stage 1 changed the share by more
    than :data:`MIN_MOVE`).
    """
    total = max(1, math.ceil(config.epochs * config.n_train / config.batch_size))
    by_behaviour = config.cut_at == "behaviour" and world is not None and task is not None and len(queries) > 0
    if by_behaviour:
        steps = sorted({max(1, round(x)) for x in np.linspace(1, total, min(total, MAX_SNAPSHOTS))})
    else:
        steps = [max(1, round(f * total)) for f in config.fractions]
    result = sft(model, tokenizer, train, config.sft_config(seed), checkpoint_fractions=tuple(s / total for s in steps), progress=False)
    snaps = {round(f * total): m for f, m in result.checkpoints.items()}
    record: dict[str, Any] = {"total_steps": total, "shares": {}, "cut_at": "steps", "moved": None, "targets": [None] * 3}
    if by_behaviour:
        shares: dict[int, float] = {}

        def share_at(i: int) -> float:
            if i not in shares:
                m = model if i == 0 else snaps[steps[i - 1]]
                out = generate(m, tokenizer, list(queries), max_new_tokens=config.max_new_tokens, seed=seed, greedy=True)
                shares[i] = float(world.score(task, list(queries), out))
            return shares[i]

        picks, moved = milestone_steps(share_at, len(steps), config.fractions, tolerance=max(MIN_MOVE, 1.0 / len(queries)))
        if moved:
            for i in picks:
                share_at(i)
        s0, s_end = shares[0], shares[len(steps)]
        cuts = [steps[i - 1] for i in picks]
        record.update(cut_at="behaviour" if moved else "steps", moved=moved,
                      shares={str(0 if i == 0 else steps[i - 1]): v for i, v in sorted(shares.items())},
                      targets=[s0 + f * (s_end - s0) if moved else None for f in config.fractions])
    else:
        cuts = steps
    record["steps"] = cuts
    return {i + 1: merged_copy(snaps[s]).eval() for i, s in enumerate(cuts)}, record


def answer(model: Any, tokenizer: Any, queries: Sequence[str], mode: str, config: ResistanceConfig, seed: int) -> list[str]:
    """One checkpoint's answers to Q in an answer mode (seeded)."""
    kw = ANSWER_MODES[mode]
    return generate(model, tokenizer, list(queries), max_new_tokens=config.max_new_tokens, seed=seed, **kw)


def _run_mode(ckpts: dict[int, Any], tok: Any, world: Any, task: str, queries: list[str], mode: str,
              config: ResistanceConfig, seed: int, base: str, stage1: dict[str, Any], base_seed: int | None) -> dict[str, Any]:
    """All pairs × both directions for one answer mode: rows and curves, and stage 1's record (JSON-able, the cached unit)."""
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
                "n_examples": len(data), "steps": len(run.curve), "base_seed": base_seed,
                "student_step": stage1["steps"][student - 1], "teacher_step": stage1["steps"][teacher - 1],
                "base_share": stage1["shares"].get("0"), "final_share": stage1["shares"].get(str(stage1["total_steps"])),
            })
            curves += [{"base": base, "task": task, "answer_mode": mode, "seed": int(seed), "pair": f"{k}-{l}", "direction": direction,
                        "step": int(s), "loss": float(v)} for s, v in zip(run.curve["step"], run.curve["loss"])]
    return {"rows": rows, "curves": curves, "stage1": stage1, "answers": {str(k): v[:8] for k, v in answers.items()}, "queries": queries[:8]}


def unit_spec(text: str, seed: int, config: ResistanceConfig) -> BaseSpec:
    """The base a seed starts from: with ``config.seed_bases``, a micro-world base pre-trained with that seed
    (``BaseSpec(base, seed=seed)``: seed 0 is the shipped one); otherwise, and for hub models, the one base."""
    spec = parse_base(text)
    return BaseSpec.parse(text, seed=int(seed)) if config.seed_bases and spec.micro_world else spec


def run_resistance(config: ResistanceConfig | None = None, *, progress: bool = True, refresh: bool = False) -> ResistanceResult:
    """Run (or read from the cache) every base × task × seed × answer mode of ``config``.

    Stage 1 (the checkpoints) runs once per (base, task, seed) and serves every answer mode; each
    mode's results are written to the cache as soon as they exist, so an interrupted run resumes.
    """
    config = config or ResistanceConfig()
    for b in config.bases:
        parse_base(b)
    units = [(b, t, seed) for b in config.bases for t in config.tasks for seed in config.seeds]
    rows: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    stage1: list[dict[str, Any]] = []
    loaded: dict[tuple[str, int], Base] = {}
    bar = progress_bar(units, desc="resistance", enabled=progress)
    for text, task, seed in bar:
        bar.set_postfix_str(f"{text} · {task} · seed {seed}")
        spec = unit_spec(text, seed, config)
        keys = {m: _unit_key(config, spec, task, seed, m) for m in config.answer_modes}
        missing = [m for m in config.answer_modes if refresh or not is_cached("resistance", keys[m])]
        ckpts: dict[int, Any] = {}
        queries: list[str] = []
        world = None
        tok = None
        record: dict[str, Any] = {}
        if missing:
            if (spec.text, spec.seed) not in loaded:
                loaded[(spec.text, spec.seed)] = load_base(spec, device=_device_of(config, spec))
            base = loaded[(spec.text, spec.seed)]
            model, tok, world = base.model, base.tokenizer, base.world
            train, queries = _task_data(spec, world, config, task, seed)
            ckpts, record = cut_checkpoints(model, tok, train, config, seed, world=world, task=task, queries=queries)
        base_seed = spec.seed if spec.micro_world else None
        for i, mode in enumerate(config.answer_modes):
            compute = (lambda m=mode: _run_mode(ckpts, tok, world, task, queries, m, config, seed, text, record, base_seed))
            unit = cached_json("resistance", keys[mode], compute, refresh=refresh and mode in missing)
            rows += unit["rows"]
            curves += unit["curves"]
            if i == 0:
                stage1 += _stage1_rows(unit["stage1"], text, task, seed)
    return ResistanceResult(config, pd.DataFrame(rows, columns=list(COLUMNS)), pd.DataFrame(curves, columns=list(CURVE_COLUMNS)),
                            pd.DataFrame(stage1, columns=list(STAGE1_COLUMNS)))


def _stage1_rows(record: dict[str, Any], base: str, task: str, seed: int) -> list[dict[str, Any]]:
    """Stage 1's record as rows of :data:`STAGE1_COLUMNS` (the measured steps; the cut steps even where unmeasured)."""
    shares = {int(k): v for k, v in record.get("shares", {}).items()}
    cut = {s: (k + 1, t) for k, (s, t) in enumerate(zip(record["steps"], record["targets"]))}
    cut[0] = (0, None)
    out = []
    for step in sorted(set(shares) | set(cut)):
        k, target = cut.get(step, (None, None))
        out.append({"base": base, "task": task, "seed": int(seed), "step": step, "share": shares.get(step, math.nan),
                    "checkpoint": math.nan if k is None else k, "target": math.nan if target is None else target})
    return out


# --------------------------------------------------------------------------- CLI


def cli_result(scale: str, n_seeds: int | None = None) -> dict[str, Any]:
    """``python -m elasticity_lab run resistance``: every run of the scale, and the verdicts (JSON-able, words for
    what was not run or cannot be decided)."""
    configs = default_configs(scale, n_seeds)
    out: dict[str, Any] = {"scale": scale}
    results = {name: run_resistance(cfg) for name, cfg in configs.items()}
    for name, result in results.items():
        out[name] = result.to_dict()
    main = out["main"]
    out["config"] = main["config"]
    out["table"] = main["table"]
    out["summary"] = main["summary"]
    pretrained = configs["main"].bases[0]
    ctl = configs.get("controls")
    table = pd.concat([results["main"].table] + ([results["controls"].table] if ctl is not None else []), ignore_index=True)
    verdicts, controls = verdict_rows(table, pretrained=pretrained, controls=ctl.bases if ctl is not None else ())
    out["verdicts"] = _records(verdicts)
    out["verdict_controls"] = _records(controls)
    return out
