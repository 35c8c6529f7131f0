"""Has a base learnt a task? Its behaviour rate set against the world's exact pre-training rate, and what a verdict may count.

Why: elasticity is a pull back toward the distribution pre-training left. Where a base's rate of a behaviour
is far from the rate of its pre-training text, it never learnt that distribution, and a rebound (or a
resistance) on that task tests nothing about pre-training: it can only be about fine-tuning. So every
chapter that draws a verdict from a task first asks whether its base learnt the task, and counts only
the tasks it did not clearly fail to learn.

The rule (tested both ways on synthetic rates in ``tests/test_learnt.py``): per world and behaviour, the
base's rule rate (answers sampled at temperature 1 to held-out prompts, labelled by the world's exact judge,
:func:`elasticity_lab.lm.metrics.behaviour_table`) minus the pre-training text's rate, one estimate per
pre-training seed, with the interval of :func:`elasticity_lab.experiments.stats.mean_interval` (a t-interval
over the seeds' rates; with a single seed, the bootstrap over its prompts, which holds only sampling noise).

- **learnt**: the whole interval lies within ± :data:`TOLERANCE` (0.05) of the pre-training rate;
- **not learnt**: the whole interval lies beyond it, on one side;
- **undecided**: otherwise (the data cannot tell); such a task is counted, and the chapters say so.

A task a chapter uses counts as not learnt where any behaviour it is scored on is not learnt (safety with
mixed requests: harmful *and* benign), and as learnt only where all of them are.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from elasticity_lab.core.cache import cached_json
from elasticity_lab.core.config import check_choice, check_int, check_positive, check_range
from elasticity_lab.core.progress import progress_bar
from elasticity_lab.experiments.stats import ABSENT, NOT_RUN, SHOWS, UNDECIDED, Interval, decide, mean_interval
from elasticity_lab.lm.bases import BaseSpec, load_base
from elasticity_lab.lm.presets import choose_device, device_tag

TOLERANCE = 0.05
"""A base has learnt a behaviour where its rate lies within this of the pre-training text's (0 → 1 scale)."""
LEARNT, NOT_LEARNT = "learnt", "not learnt"
"""The answers besides ``undecided`` and ``not run`` (:mod:`elasticity_lab.experiments.stats`)."""

N_PROMPTS: dict[str, int] = {"smoke": 32, "reader": 512, "full": 512}
"""Held-out prompts per behaviour and base, per scale (512: a sampling error of about 0.02 on a rate of 0.3)."""

BEHAVIOURS: dict[str, tuple[str, ...]] = {"safety": ("safety (harmful)", "safety (benign)"), "safety/harmful": ("safety (harmful)",)}
"""The behaviour rows (of :func:`elasticity_lab.lm.metrics.behaviour_table`) a task is scored on, where not just its name:
``safety`` with mixed requests is two behaviours, ``safety/harmful`` (harmful requests only) one."""


def behaviours_of(task: str) -> tuple[str, ...]:
    """The behaviour rows a chapter's ``task`` is scored on (see :data:`BEHAVIOURS`)."""
    return BEHAVIOURS.get(task, (task,))


# --------------------------------------------------------------------------- measuring


def _world_task(task: str) -> str:
    return task.split("/")[0]


def measure_rates(bases: Mapping[str, Sequence[BaseSpec | str]], tasks: Sequence[str], *, n_prompts: int = 512,
                  seed: int = 0, device: Any = None, progress: bool = True) -> pd.DataFrame:
    """The rule rate of every base on every behaviour of ``tasks``, beside the pre-training text's rate.

    ``bases`` maps a world's label to its bases, one per pre-training seed (micro-world bases only: a hub
    model has no exact pre-training rate). One row per (world, base, behaviour): ``pretrain_seed``,
    ``model_rate``, ``likelihood_score``, ``pretraining_rate``, ``n_prompts``. Each base × task is cached
    (keyed by the base's weights), so chapters that check the same base share the work. ``device``: as
    :func:`elasticity_lab.lm.bases.load_base` (the one device choice).
    """
    from elasticity_lab.lm.metrics import behaviour_table

    check_int("n_prompts", n_prompts, 1)
    if not bases or not tasks:
        raise ValueError("bases and tasks must be non-empty; give e.g. {'micro': ['micro', 'micro-seed1']} and ('safety',).")
    world_tasks = list(dict.fromkeys(_world_task(t) for t in tasks))
    specs = {label: [BaseSpec.parse(s, name="bases entry") for s in group] for label, group in bases.items()}
    for label, group in specs.items():
        if not group:
            raise ValueError(f"bases[{label!r}] is empty; give one base per pre-training seed.")
        for spec in group:
            if not spec.micro_world:
                raise ValueError(f"bases[{label!r}] contains {spec.text!r}, which is not a micro-world base; only those have an "
                                 "exact pre-training rate to learn.")
    dev = choose_device(device)
    units = [(label, spec, task) for label, group in specs.items() for spec in group for task in world_tasks]
    rows: list[dict[str, Any]] = []
    loaded: dict[str, Any] = {}
    for label, spec, task in progress_bar(units, enabled=progress, desc="is the base learnt?", unit="base × task"):
        def compute(spec: BaseSpec = spec, task: str = task) -> list[dict[str, Any]]:
            if spec.text + str(spec.seed) not in loaded:
                loaded.clear()
                loaded[spec.text + str(spec.seed)] = load_base(spec, device=dev)
            base = loaded[spec.text + str(spec.seed)]
            table = behaviour_table(base.model, base.tokenizer, base.world, tasks=(task,), n_prompts=n_prompts, seed=seed)
            return table[["task", "model_rate", "likelihood_score", "pretraining_rate"]].to_dict("records")
        key = {"kind": "learnt", "base": {**spec.key(), **device_tag(dev)}, "task": task, "n_prompts": int(n_prompts), "seed": int(seed)}
        # the rates depend on the base's weights (in the key) and the scoring code (lm.metrics and what it imports), not on
        # this module's words: its prose can change without measuring every base again
        for r in cached_json("learnt", key, compute, code="elasticity_lab.lm.metrics"):
            rows.append({"world": label, "base": spec.text, "pretrain_seed": int(spec.pretrain_config().seed),
                         "behaviour": r["task"], **{k: float(r[k]) for k in ("model_rate", "likelihood_score", "pretraining_rate")},
                         "n_prompts": int(n_prompts)})
    return pd.DataFrame(rows, columns=["world", "base", "pretrain_seed", "behaviour", "model_rate", "likelihood_score",
                                       "pretraining_rate", "n_prompts"])


# --------------------------------------------------------------------------- deciding


def gap_interval(rates: Sequence[float], pretraining_rate: float, *, seeds: Sequence[Any] | None = None,
                 n_prompts: int | None = None) -> Interval:
    """The interval of (base's rate − ``pretraining_rate``): a t-interval over the pre-training seeds' rates where
    there are several, else the bootstrap over the one base's ``n_prompts`` prompts (its sampling noise only).

    With several seeds and ``n_prompts`` given, the t-interval is widened, where it is narrower, to the bootstrap over
    every prompt of every seed: two or three seeds can agree by chance (at the ``smoke`` scale they often do), and an
    interval narrower than the prompts' own sampling noise would claim more than was measured.
    """
    check_range("pretraining_rate", pretraining_rate, 0, 1)
    r = np.asarray(rates, dtype=float)
    labels = list(seeds) if seeds is not None else list(range(len(r)))
    if n_prompts is not None:
        check_int("n_prompts", n_prompts, 1)
    if len(r) == 0 or not np.isfinite(r).any():
        return Interval(math.nan, math.nan, math.nan, n=0)
    prompts = None
    if n_prompts is not None:
        k = [int(round(float(x) * n_prompts)) for x in r if math.isfinite(x)]
        outcomes = np.concatenate([np.r_[np.ones(j), np.zeros(n_prompts - j)] for j in k]) - pretraining_rate
        prompts = mean_interval(outcomes)  # every prompt one unit: the sampling noise alone
    if len(set(labels)) >= 2:
        iv = mean_interval(r - pretraining_rate, labels)
        if prompts is not None and iv.finite and (prompts.low < iv.low or prompts.high > iv.high):
            return Interval(iv.estimate, min(iv.low, prompts.low), max(iv.high, prompts.high), iv.level, iv.n,
                            f"{iv.method} (pre-training seeds), widened to the sampling noise of their {len(outcomes)} prompts")
        return Interval(iv.estimate, iv.low, iv.high, iv.level, iv.n, f"{iv.method} (pre-training seeds)")
    if prompts is None:
        return Interval(float(r[0] - pretraining_rate), -math.inf, math.inf, n=1, method="one pre-training seed")
    return Interval(prompts.estimate, prompts.low, prompts.high, prompts.level, prompts.n, "bootstrap over the prompts of one pre-training seed")


def decide_learnt(interval: Interval, *, tolerance: float = TOLERANCE) -> str:
    """``learnt`` where the whole gap interval lies within ± ``tolerance`` of 0, ``not learnt`` where it lies wholly
    beyond, ``undecided`` otherwise, ``not run`` where nothing was measured (:func:`stats.decide` on both edges)."""
    check_positive("tolerance", tolerance)
    if interval.n == 0 or not math.isfinite(interval.estimate):
        return NOT_RUN
    if decide(interval, null=-tolerance) == SHOWS and decide(interval, null=tolerance, direction="less") == SHOWS:
        return LEARNT
    if decide(interval, null=-tolerance, direction="less") == SHOWS or decide(interval, null=tolerance) == SHOWS:
        return NOT_LEARNT
    return UNDECIDED


def learnt_table(rates: pd.DataFrame, *, tolerance: float = TOLERANCE) -> pd.DataFrame:
    """Per world and behaviour (from :func:`measure_rates`): the base's rate (mean [interval] over pre-training
    seeds), the pre-training text's rate, their difference with its interval, and the decision; the numbers
    as columns too (``rate``, ``estimate``, ``low``, ``high``) for the prose."""
    rows = []
    for (world, behaviour), g in rates.groupby(["world", "behaviour"], sort=False):
        p = float(g["pretraining_rate"].iloc[0])
        gap = gap_interval(g["model_rate"].to_numpy(), p, seeds=g["pretrain_seed"].tolist(), n_prompts=int(g["n_prompts"].iloc[0]))
        rate = Interval(gap.estimate + p, max(gap.low + p, 0.0), min(gap.high + p, 1.0), gap.level, gap.n, gap.method)  # a rate lies in [0, 1]
        rows.append({"world": world, "behaviour": behaviour, "seeds": int(g["pretrain_seed"].nunique()),
                     "base's rate": rate.text(2).replace("+", ""), "pre-training rate": f"{p:.2f}",
                     "base − pre-training": gap.text(2), "decision": decide_learnt(gap, tolerance=tolerance),
                     "rate": rate.estimate, "pretraining": p, "estimate": gap.estimate, "low": gap.low, "high": gap.high})
    return pd.DataFrame(rows, columns=["world", "behaviour", "seeds", "base's rate", "pre-training rate", "base − pre-training",
                                       "decision", "rate", "pretraining", "estimate", "low", "high"])


def _reason(row: pd.Series) -> str:
    rate, pre = row["base's rate"], row["pre-training rate"]
    return f"rate {rate} vs {pre}"


def task_status(table: pd.DataFrame, tasks: Sequence[str], *, world: str | None = None) -> pd.DataFrame:
    """Per task a chapter uses: ``decision`` (not learnt where any behaviour it is scored on is not learnt, learnt
    where all are, else undecided or not run) and ``why`` (the rates behind it), in ``world`` (default: the first)."""
    if table.empty:
        return pd.DataFrame({"task": list(tasks), "decision": NOT_RUN, "why": "not measured"})
    world = world if world is not None else str(table["world"].iloc[0])
    check_choice("world", world, list(dict.fromkeys(table["world"])))
    t = table[table["world"] == world].set_index("behaviour")
    rows = []
    for task in tasks:
        parts = [b for b in behaviours_of(task)]
        missing = [b for b in parts if b not in t.index]
        decisions = [t.loc[b, "decision"] for b in parts if b in t.index]
        if missing:
            decision = NOT_RUN if not decisions else (NOT_LEARNT if NOT_LEARNT in decisions else NOT_RUN)
        elif NOT_LEARNT in decisions:
            decision = NOT_LEARNT
        elif all(d == LEARNT for d in decisions):
            decision = LEARNT
        else:
            decision = UNDECIDED if UNDECIDED in decisions else NOT_RUN
        focus = [b for b in parts if b in t.index and (decision == LEARNT or t.loc[b, "decision"] == decision)] or parts
        why = "; ".join(f"{b}: {_reason(t.loc[b])}" if b in t.index else f"{b}: not measured" for b in focus)
        rows.append({"task": _world_task(task), "world": world, "decision": decision, "why": why})
    return pd.DataFrame(rows, columns=["task", "world", "decision", "why"])


def unlearnt(status: pd.DataFrame, *, strict: bool = False) -> dict[str, str]:
    """Task → why, for the tasks of :func:`task_status` that a verdict leaves out: those the base has not learnt; with
    ``strict``, every task not shown to be learnt (undecided and not run too: the burden of proof on "learnt")."""
    out = status["decision"] != LEARNT if strict else status["decision"] == NOT_LEARNT
    s = status[out]
    return {t: (w if d == NOT_LEARNT else f"{d}: {w}") for t, d, w in zip(s["task"], s["decision"], s["why"])}


def counted_rows(table: pd.DataFrame, left_out: Iterable[str], *, column: str = "task") -> pd.DataFrame:
    """``table`` without the rows of tasks in ``left_out`` (a verdict's input: the tables shown keep every row)."""
    if column not in table:
        raise ValueError(f"column={column!r} is not allowed; the table has no such column ({', '.join(map(str, table.columns))}).")
    return table[~table[column].isin(list(left_out))].reset_index(drop=True)


# --------------------------------------------------------------------------- rows of a computed verdict


NOT_COUNTED = "not counted"
"""A verdict row whose task the base has not learnt: shown, and left out of every count."""


ATTRACTOR = "attractor"
"""The key of the attractor test's rows (refusal of harmful requests in every world of the test) in ``left_out``."""


def task_of_finding(finding: str) -> str:
    """The task a verdict row is about: the words before its first colon (``"safety: returns to ..."``), or
    :data:`ATTRACTOR` for the attractor test's rows, which ask about refusal in several worlds at once."""
    return ATTRACTOR if finding.startswith("attractor") else finding.split(":", 1)[0].strip()


def mark_not_counted(rows: Sequence[dict[str, Any]], left_out: Mapping[str, str]) -> list[dict[str, Any]]:
    """Verdict rows (``finding``, ``shows``, ``survives_controls``, ``estimate``, ``evidence``) with those about a task in
    ``left_out`` (task → why) marked ``not counted``: the row stays, with its estimate, out of every count."""
    out = []
    for r in rows:
        task = task_of_finding(str(r["finding"]))
        if task in left_out:
            r = {**r, "shows": NOT_COUNTED, "survives_controls": NOT_COUNTED, "not_counted_why": left_out[task],
                 "evidence": f"not counted: the base has not learnt this task ({left_out[task]}); measured: {r['shows']}. "
                             + str(r.get("evidence", ""))}
        out.append(dict(r))
    return out


def count_verdicts(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """How many rows say each answer (``shows``, ``does not show``, ``undecided``, ``not run``, ``not counted``)."""
    counts = {k: 0 for k in (SHOWS, ABSENT, UNDECIDED, NOT_RUN, NOT_COUNTED)}
    for r in rows:
        counts[str(r["shows"])] = counts.get(str(r["shows"]), 0) + 1
    return counts


# --------------------------------------------------------------------------- words


WHY = ("a rebound toward a distribution the base never learnt, or a resistance to leaving it, tests nothing about "
       "pre-training")


def learnt_prose(table: pd.DataFrame, *, tolerance: float = TOLERANCE) -> str:
    """Which behaviours the base has learnt, per world, in sentences generated from :func:`learnt_table` (Markdown)."""
    if table.empty:
        return "Whether the base learnt its tasks was not measured at this scale."
    parts = []
    for world, g in table.groupby("world", sort=False):
        seeds = int(g["seeds"].max())
        how = (f"over {seeds} pre-training seeds" if seeds > 1 else "on one pre-training seed (the interval holds only the "
               "sampling noise of its prompts)")
        said = []
        for decision, words in ((LEARNT, "learnt"), (NOT_LEARNT, "**not learnt**"), (UNDECIDED, "undecided"), (NOT_RUN, "not run")):
            h = g[g["decision"] == decision]
            if len(h):
                said.append(f"{words}: " + "; ".join(f"{b} (rate {r} against {p})" for b, r, p in
                                                      zip(h["behaviour"], h["base's rate"], h["pre-training rate"])))
        parts.append(f"- **{world}** ({how}): " + " · ".join(said) + ".")
    return (f"A behaviour is **learnt** where the 95 % interval of the base's rate minus the pre-training text's lies within "
            f"± {tolerance:.2f}, **not learnt** where it lies wholly beyond, and undecided otherwise.\n\n" + "\n".join(parts))


def _why_words(task: str, why: str) -> str:
    """``why`` of :func:`task_status` without a leading behaviour name that only repeats ``task``
    (``instruction: rate 0.21 vs 0.30`` for the task *instruction* reads ``rate 0.21 vs 0.30``)."""
    return why[len(task) + 2:] if why.startswith(f"{task}: ") and ";" not in why else why


def exclusion_prose(status: pd.DataFrame, *, what: str = "the verdicts", item: str = "task") -> str:
    """What a chapter's verdicts count and why, from :func:`task_status` (Markdown); ``item``: what its rows are
    (``task``, or ``world`` where a verdict compares worlds on one task)."""
    if status.empty:
        return f"No {item} was checked, so {what} counts every {item}."
    out = status[status["decision"] == NOT_LEARNT]
    unsure = status[status["decision"].isin([UNDECIDED, NOT_RUN])]
    learnt = status[status["decision"] == LEARNT]
    lines = []
    if len(out) and len(out) == len(status):
        lines.append(f"**No {item} is left to count, so there is no verdict** at this scale: the base has learnt none of the "
                     f"{item}s of {what} (" + "; ".join(f"*{t}*: {_why_words(t, w)}" for t, w in zip(out["task"], out["why"])) + f"), and {WHY}.")
        return " ".join(lines)
    if len(out):
        lines.append(f"**Not counted in {what}**: " + "; ".join(f"*{t}*, the base has not learnt this task ({_why_words(t, w)})"
                                                                  for t, w in zip(out["task"], out["why"]))
                     + f". Its rows stay in the tables above, but {WHY}.")
    else:
        lines.append(f"Every {item} of {what} is counted: no base has been shown to fail to learn its task.")
    if len(learnt):
        lines.append("Learnt, within the tolerance: " + ", ".join(f"*{t}*" for t in learnt["task"]) + ".")
    if len(unsure):
        lines.append("Counted, though the data cannot tell whether the base learnt it: "
                     + "; ".join(f"*{t}* ({_why_words(t, w)}" + ("" if d == UNDECIDED else f"; {d}") + ")"
                               for t, d, w in zip(unsure["task"], unsure["decision"], unsure["why"])) + ".")
    return " ".join(lines)


def not_counted_text(rows: Sequence[dict[str, Any]]) -> str:
    """The verdict rows left out of the counts, in one sentence (Markdown; empty where none was)."""
    left = [r for r in rows if r["shows"] == NOT_COUNTED]
    if not left:
        return ""
    return (f"**Not counted** (the base has not learnt the task, so {WHY}): "
            + "; ".join(f"*{r['finding']}* ({r.get('not_counted_why', 'not learnt')})" for r in left) + ".")
