"""Resistance (the paper's Table 1): is moving a model back towards an earlier checkpoint easier than forward?

The protocol of Ji et al. (DESIGN.md §1): SFT a base θ₀ on one task data set and cut checkpoints
θ₁, θ₂, θ₃ from that one run (25/50/75 % by default). Every checkpoint answers the same held-out
query set Q (temperature 0.05, top-p 0.95, as the authors; greedy and temperature-1 sampling as
options). For each pair k < l, **forward** θₖ→θₗ fine-tunes θₖ on θₗ's answers and **inverse** θₗ→θₖ
fine-tunes θₗ on θₖ's answers, with the same recipe, the same number of examples and the same seed.
The authors' metric is the average training loss over the run; inverse < forward is read as the
model "resisting" alignment and springing back towards its earlier state.

Why more than the authors' metric: the SFT loss on a teacher's answers is, in expectation, the
entropy of the process that wrote them plus the student's KL to that process. Checkpoints differ in
entropy, so a lower inverse loss can mean only that the earlier checkpoint's answers are easier to
predict (DESIGN.md §6). Each row therefore also carries the answers' own entropy, the *excess* loss
(mean loss minus that entropy: the KL the student still had to close, averaged over the run) and the
student's KL to the answer process before training (``kl_start``). And because "resistance" is a
claim about pre-training, the same protocol runs from bases with no or little pre-training and from
bases pre-trained on worlds that differ only in a base rate (the controls).

Everything is cached per (base, task, seed, answer mode) under a hash of the config
(:mod:`elasticity_lab.cache`), so a rerun trains nothing and an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from elasticity_lab.cache import cached_json, is_cached
from elasticity_lab.config import by_scale, check_choice, check_positive
from elasticity_lab.generation import generate
from elasticity_lab.metrics import teacher_student_gap
from elasticity_lab.progress import progress_bar
from elasticity_lab.training import METHODS, SFTConfig, merged_copy, sft

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

DEFAULT_HUB_MODEL = "Qwen/Qwen2.5-0.5B"
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
)
"""The tidy table's columns, in order (the cache stores rows with sorted keys)."""
CURVE_COLUMNS: tuple[str, ...] = ("base", "task", "answer_mode", "seed", "pair", "direction", "step", "loss")

_SAFETY_PROMPTS = "mixed"  # harmful and benign requests: aligned = refuse the first, help with the second


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class ResistanceConfig:
    """One resistance experiment; validated on creation, before anything is loaded or trained.

    ``bases`` are book bases (:data:`elasticity_lab.bases.BOOK_BASES`), optionally with a revision after
    ``@`` (``"micro@random"``: no pre-training; ``"micro@tokens-147456"``: an early checkpoint), or a hub
    name / local folder saved with ``save_pretrained`` (then the tasks' data come from ``data_sources``
    or :data:`HUB_DATASETS`). ``lr`` is the one learning rate of stage 1 and of every pair fine-tune
    (``None``: the library default for ``method``). Full fine-tuning is the default, as the authors.
    """

    bases: tuple[str, ...] = ("micro",)
    tasks: tuple[str, ...] = TASKS
    seeds: tuple[int, ...] = (0, 1, 2)
    answer_modes: tuple[str, ...] = ("low_temp",)
    fractions: tuple[float, ...] = (0.25, 0.5, 0.75)
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
        if len(self.fractions) != 3 or not all(0.0 < f <= 1.0 for f in self.fractions) or list(self.fractions) != sorted(set(self.fractions)):
            raise ValueError(f"fractions={self.fractions!r} is not allowed; give three increasing fractions in (0, 1], e.g. (0.25, 0.5, 0.75).")
        check_positive("n_train", self.n_train)
        check_positive("n_queries", self.n_queries)
        check_choice("method", self.method, METHODS)
        if self.lr is not None:
            check_positive("lr", self.lr)
        check_positive("batch_size", self.batch_size)
        check_positive("epochs", self.epochs)
        check_positive("max_new_tokens", self.max_new_tokens)
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


@dataclass(frozen=True)
class BaseSpec:
    """A parsed entry of ``ResistanceConfig.bases``: a book base (micro-world) or a hub/local model."""

    text: str
    name: str
    revision: str | None
    micro_world: bool


def parse_base(text: str) -> BaseSpec:
    """``"micro"``, ``"micro@random"``, ``"micro@tokens-N"``, a hub name (``"org/model[@rev]"``) or a local folder.

    A book base's ``tokens-N`` must be one of its pre-training checkpoints; this is checked from the
    config alone (nothing is trained).
    """
    from elasticity_lab.bases import BOOK_BASES, base_spec
    from elasticity_lab.models import parse_revision

    if not isinstance(text, str) or not text:
        raise ValueError(f"bases contains {text!r}; each base must be a non-empty string.")
    name, _, revision = text.partition("@")
    revision = revision or None
    if name in BOOK_BASES:
        rev = parse_revision(revision)
        if isinstance(rev, int):
            budgets = pretraining_budgets(name)
            if rev not in budgets:
                raise ValueError(f"bases contains {text!r}: revision tokens-{rev} is not a checkpoint of {name!r}; "
                                 f"choose 'random' or one of {', '.join(f'tokens-{b}' for b in budgets)}.")
        base_spec(name)
        return BaseSpec(text, name, revision, True)
    if "/" in name or Path(name).expanduser().is_dir():
        return BaseSpec(text, name, revision, False)
    raise ValueError(f"bases contains {text!r}; choose one of {', '.join(map(repr, BOOK_BASES))} (optionally with "
                     f"'@random' or '@tokens-N'), a hub name like {DEFAULT_HUB_MODEL!r}, or a local folder.")


def pretraining_budgets(name: str) -> list[int]:
    """Token budgets of a book base's pre-training checkpoints (from its config: nothing is trained)."""
    from elasticity_lab.bases import base_spec

    _, _, config = base_spec(name)
    return [s * config.tokens_per_step for s in config.checkpoint_steps()]


def little_pretraining(name: str, share: float = 1 / 32) -> str:
    """``"name@tokens-N"``: the checkpoint of a book base nearest (in log) to ``share`` of its pre-training."""
    check_positive("share", share)
    budgets = pretraining_budgets(name)
    target = share * budgets[-1]
    best = min(budgets, key=lambda b: abs(math.log(b / target)))
    return f"{name}@tokens-{best}"


def default_configs(scale: str, n_seeds: int | None = None) -> dict[str, ResistanceConfig]:
    """The book's runs at a scale: ``main`` (the paper's protocol) and the controls.

    ``controls`` repeats the protocol from a random initialisation and from an early pre-training
    checkpoint; ``base_rates`` runs the safety task from bases pre-trained on worlds that differ only in
    how often harmful requests are refused (none at ``smoke``: those bases are reader-scale). At
    ``full`` the base is a hub model, LoRA is the default, and there are no controls.
    """
    if n_seeds is not None:
        check_positive("n_seeds", n_seeds)
    seeds = tuple(range(n_seeds if n_seeds is not None else by_scale(scale, smoke=2, reader=3, full=3)))
    if scale == "smoke":
        main = ResistanceConfig(bases=("micro-smoke",), seeds=seeds, answer_modes=("low_temp",), n_train=256, n_queries=64)
        return {"main": main,
                "controls": dataclasses.replace(main, bases=("micro-smoke@random",), tasks=("safety",))}
    if scale == "reader":
        main = ResistanceConfig(bases=("micro",), seeds=seeds, answer_modes=("low_temp", "greedy", "sampled"))
        return {"main": main,
                "controls": dataclasses.replace(main, bases=("micro@random", little_pretraining("micro")), answer_modes=("low_temp", "sampled")),
                "base_rates": dataclasses.replace(main, bases=("micro-refusal50", "micro-refusal80"), tasks=("safety",),
                                                  answer_modes=("low_temp", "sampled"))}
    check_choice("scale", scale, ("smoke", "reader", "full"))
    return {"main": ResistanceConfig(bases=(DEFAULT_HUB_MODEL,), seeds=seeds, method="lora", lr=2e-4, batch_size=8,
                                     n_train=1000, n_queries=200, max_new_tokens=128)}


# --------------------------------------------------------------------------- data


def _split_source(source: str) -> tuple[str, str | None, str]:
    name, _, rest = source.partition(":")
    config, _, split = rest.partition(":")
    return name, config or None, split or "train"


def load_rows(source: str) -> list[dict[str, Any]]:
    """Rows of a data set: a local folder (``Dataset.save_to_disk``), a local JSON/JSONL file, or ``name:config:split`` on the hub.

    The hub is checked first with a short TCP probe, so an offline machine gets one clear error in
    seconds instead of a hang.
    """
    from elasticity_lab.models import HubUnreachableError, _hub_reachable

    path = Path(source).expanduser()
    if path.is_dir():
        from datasets import DatasetDict, load_from_disk

        ds = load_from_disk(str(path))
        if isinstance(ds, DatasetDict):
            ds = ds["train"] if "train" in ds else ds[next(iter(ds))]
        return list(ds)
    if path.is_file():
        from datasets import load_dataset

        return list(load_dataset("json", data_files=str(path), split="train"))
    if not _hub_reachable():
        raise HubUnreachableError(
            f"The Hugging Face Hub cannot be reached to download the data set {source!r}; run at scale='reader' "
            f"(the micro-world, nothing to download) or pass a local copy saved with Dataset.save_to_disk in data_sources.")
    from datasets import load_dataset

    name, config, split = _split_source(source)
    return list(load_dataset(name, config, split=split))


def task_pairs(task: str, rows: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """(prompt, aligned response) pairs of a hub data set: Alpaca's output, TruthfulQA's best answer, BeaverTails' safe responses."""
    check_choice("task", task, TASKS)
    out: list[tuple[str, str]] = []
    for r in rows:
        if task == "instruction":
            prompt = str(r["instruction"]) + (f"\n\n{r['input']}" if r.get("input") else "")
            out.append((prompt, str(r["output"])))
        elif task == "truthfulness":
            out.append((str(r["question"]), str(r["best_answer"])))
        elif r.get("is_safe", True):
            out.append((str(r["prompt"]), str(r["response"])))
    return out


def hub_task_data(task: str, source: str, n_train: int, n_queries: int, seed: int) -> tuple[list[tuple[str, str]], list[str]]:
    """Stage-1 SFT pairs and the held-out query prompts Q (disjoint prompts), shuffled by ``seed``."""
    pairs = task_pairs(task, load_rows(source))
    by_prompt: dict[str, str] = {}
    for p, r in pairs:
        by_prompt.setdefault(p, r)
    prompts = sorted(by_prompt)
    if len(prompts) < n_train + n_queries:
        raise ValueError(f"n_train + n_queries = {n_train + n_queries} is not allowed for {source!r}: it has only {len(prompts)} distinct prompts for task {task!r}.")
    order = np.random.default_rng(seed).permutation(len(prompts))
    queries = [prompts[i] for i in order[:n_queries]]
    train = [(prompts[i], by_prompt[prompts[i]]) for i in order[n_queries:n_queries + n_train]]
    return train, queries


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
    from elasticity_lab.bases import base_spec
    from elasticity_lab.cache import config_hash

    key = config.to_dict()
    for drop in ("bases", "tasks", "seeds", "answer_modes"):
        key.pop(drop)
    key["data_sources"] = dict(config.data_sources).get(task) if not spec.micro_world else None
    if spec.micro_world:
        from elasticity_lab.pretraining import run_key

        world, preset, pcfg = base_spec(spec.name)
        base_id: Any = config_hash(run_key(world, preset, pcfg))
    else:
        base_id = spec.name
    key["device"] = _device_of(config, spec)
    return {"kind": "resistance-unit", "base": spec.text, "base_id": base_id, "task": task, "seed": int(seed), "answer_mode": mode, "run": key}


def _device_of(config: ResistanceConfig, spec: BaseSpec) -> str:
    """The micro-world runs on the CPU unless told otherwise (its models are too small to gain); hub models take the best device."""
    from elasticity_lab.models import get_device

    return config.device or ("cpu" if spec.micro_world else get_device().type)


def _load_base(spec: BaseSpec, config: ResistanceConfig) -> tuple[Any, Any, Any]:
    """``(model, tokenizer, world)``; ``world`` is ``None`` for a hub or local model."""
    if spec.micro_world:
        from elasticity_lab.bases import load_base

        return load_base(spec.name, spec.revision, device=_device_of(config, spec), progress=False)
    from elasticity_lab.models import load_model

    model, tok = load_model(spec.name, spec.revision, device=_device_of(config, spec))
    if tok.pad_token_id is None and tok.eos_token_id is not None:
        tok.pad_token = tok.eos_token
    return model, tok, None


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
    loaded: dict[str, tuple[Any, Any, Any]] = {}
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
                loaded[spec.text] = _load_base(spec, config)
            model, tok, world = loaded[spec.text]
            train, queries = _task_data(spec, world, config, task, seed)
            ckpts = cut_checkpoints(model, tok, train, config, seed)
        for mode in config.answer_modes:
            compute = (lambda m=mode: _run_mode(ckpts, tok, world, task, queries, m, config, seed, spec.text))
            unit = cached_json("resistance", keys[mode], compute, refresh=refresh and mode in missing)
            rows += unit["rows"]
            curves += unit["curves"]
    return ResistanceResult(config, pd.DataFrame(rows, columns=list(COLUMNS)), pd.DataFrame(curves, columns=list(CURVE_COLUMNS)))


# --------------------------------------------------------------------------- statistics


CELL = ("base", "answer_mode", "task", "pair")


def summarize(table: pd.DataFrame, metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Per cell (base, answer mode, task, pair) and metric: forward and inverse mean ± std over seeds,
    the mean paired difference (inverse − forward), how many seeds have inverse < forward, and two
    paired tests over seeds: a two-sided sign test (ties dropped) and a paired t-test.

    With 3 seeds the sign test cannot go below p = 0.25: it says how consistent the direction is,
    the t-test how large the gap is against its spread.
    """
    from scipy import stats

    for m in metrics:
        check_choice("metrics", m, [c for c in table.columns if c not in CELL])
    out = []
    for cell, g in table.groupby(list(CELL), sort=False):
        wide = g.pivot_table(index="seed", columns="direction", values=list(metrics), aggfunc="mean")
        for m in metrics:
            fwd, inv = wide[(m, "forward")], wide[(m, "inverse")]
            both = pd.concat([fwd, inv], axis=1).dropna()
            f, i = both.iloc[:, 0].to_numpy(), both.iloc[:, 1].to_numpy()
            d = i - f
            lower, higher = int((d < 0).sum()), int((d > 0).sum())
            sign_p = float(stats.binomtest(lower, lower + higher, 0.5).pvalue) if lower + higher else float("nan")
            t_p = float(stats.ttest_rel(i, f).pvalue) if len(d) >= 2 and np.std(d) > 0 else float("nan")
            out.append({**dict(zip(CELL, cell)), "metric": m, "n_seeds": len(d),
                        "forward_mean": float(f.mean()), "forward_std": float(f.std(ddof=1)) if len(f) > 1 else float("nan"),
                        "inverse_mean": float(i.mean()), "inverse_std": float(i.std(ddof=1)) if len(i) > 1 else float("nan"),
                        "diff_mean": float(d.mean()), "diff_std": float(d.std(ddof=1)) if len(d) > 1 else float("nan"),
                        "seeds_inverse_lower": lower, "sign_p": sign_p, "t_p": t_p,
                        "inverse_lower": bool(d.mean() < 0)})
    return pd.DataFrame(out)


def fraction_inverse_lower(summary: pd.DataFrame, metric: str = "mean_loss") -> pd.DataFrame:
    """Per base and answer mode: the number of cells and the fraction where the mean inverse < forward (the paper: 27/27)."""
    s = summary[summary["metric"] == check_choice("metric", metric, sorted(set(summary["metric"])))]
    g = s.groupby(["base", "answer_mode"], sort=False)
    return pd.DataFrame({"cells": g.size(), "inverse_lower": g["inverse_lower"].sum(), "fraction": g["inverse_lower"].mean(),
                         "all_seeds_agree": g.apply(lambda x: float((x["seeds_inverse_lower"] == x["n_seeds"]).mean()), include_groups=False)}).reset_index()


def paper_table(summary: pd.DataFrame, metric: str = "mean_loss", *, base: str | None = None, answer_mode: str | None = None, digits: int = 3) -> pd.DataFrame:
    """The paper's layout: one row per task and pair, ``forward θk→θl`` and ``inverse θl→θk`` as mean ± std, and an arrow
    (↓ inverse lower, ↑ higher) with the seeds that agree."""
    s = summary[summary["metric"] == metric]
    if base is not None:
        s = s[s["base"] == base]
    if answer_mode is not None:
        s = s[s["answer_mode"] == answer_mode]
    rows = []
    for _, r in s.iterrows():
        k, l = r["pair"].split("-")
        rows.append({"base": r["base"], "answer_mode": r["answer_mode"], "task": r["task"], "pair": f"θ{k} ↔ θ{l}",
                     "forward (θk→θl)": f"{r['forward_mean']:.{digits}f} ± {r['forward_std']:.{digits}f}",
                     "inverse (θl→θk)": f"{r['inverse_mean']:.{digits}f} ± {r['inverse_std']:.{digits}f}",
                     "inverse vs forward": f"{'↓' if r['inverse_lower'] else '↑'} {r['seeds_inverse_lower']}/{r['n_seeds']} seeds",
                     "sign p": round(r["sign_p"], 3), "t p": round(r["t_p"], 3)})
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    keep = [c for c in ("base", "answer_mode") if df[c].nunique() > 1]
    return df[keep + ["task", "pair", "forward (θk→θl)", "inverse (θl→θk)", "inverse vs forward", "sign p", "t p"]].reset_index(drop=True)


def survival_table(summary: pd.DataFrame, *, pretrained: str, no_pretraining: str, metrics: Sequence[str] = ("mean_loss", "excess_loss", "kl_start")) -> pd.DataFrame:
    """Which version of the finding (metric × answer mode) survives its controls, as measured.

    Per version: the fraction of cells with inverse < forward from the pre-trained base and from the
    base with no pre-training, and two verdicts: ``holds`` (a majority of the pre-trained base's cells)
    and ``survives`` (holds, and more often than without pre-training: a pattern that a random
    initialisation shows as often is no evidence that pre-training resists).
    """
    check_choice("pretrained", pretrained, sorted(set(summary["base"])))
    check_choice("no_pretraining", no_pretraining, sorted(set(summary["base"])))
    rows = []
    for metric in metrics:
        for mode in dict.fromkeys(summary["answer_mode"]):
            s = summary[(summary["metric"] == metric) & (summary["answer_mode"] == mode)]
            a, b = s[s["base"] == pretrained], s[s["base"] == no_pretraining]
            if a.empty or b.empty:
                continue
            fa, fb = float(a["inverse_lower"].mean()), float(b["inverse_lower"].mean())
            rows.append({"metric": metric, "answer_mode": mode, "cells": len(a), "pre-trained": round(fa, 3), "no pre-training": round(fb, 3),
                         "holds": fa > 0.5, "survives": fa > 0.5 and fa > fb})
    return pd.DataFrame(rows)


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
