"""Does the resistance finding show, and does it survive its controls? Pooled paired gaps with intervals, in words.

The claim (Ji et al.'s Table 1): inverse alignment is easier than forward, i.e. the paired gap
inverse − forward is below 0. Per base, answer mode and metric, the gap of every (task, pair, seed) is
pooled; the seeds are the clusters (with ``seed_bases`` a seed is a pre-training seed *and* a fine-tuning
seed, so the interval includes pre-training's variation), and the interval and the decision come from
:mod:`elasticity_lab.experiments.stats`: the finding **shows** only where the interval excludes 0 on the
side of inverse < forward.

Two things are left out before pooling, and counted in the output:

- **pairs whose checkpoints agree**: where θₖ and θₗ give the same answer to more than
  :data:`MAX_AGREEMENT` of the queries, both directions train on nearly the same data and the gap is a
  difference between students, not between directions;
- **controls that stage 1 never moved**: a control base (no or little pre-training) counts on a task only
  where stage 1 raised its aligned share by at least :data:`MIN_LIFT` (mean over seeds, greedy answers,
  the world's judge). A base whose behaviour never changed has no alignment to resist, and its identical
  checkpoints would decide the verdict on nothing.

The finding **survives** only if it shows and no counted control shows it too (:func:`stats.survives`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from elasticity_lab.core.config import check_choice, check_positive
from elasticity_lab.experiments.stats import ABSENT, NOT_RUN, SHOWS, UNDECIDED, Interval, decide, mean_interval, survives

MIN_LIFT = 0.3
"""A control counts on a task only where stage 1 raised its aligned share by at least this much (0 → 1 scale)."""
MAX_AGREEMENT = 0.9
"""A pair whose two checkpoints give the same answer to more than this share of the queries is left out."""
VERDICT_METRICS: tuple[str, ...] = ("mean_loss", "excess_loss", "kl_start")
"""The versions of the finding: the paper's average loss, the loss above the answers' own entropy, the KL at the start."""
_KEYS = ["base", "answer_mode", "task", "pair", "seed"]


def paired_gaps(table: pd.DataFrame, metric: str, *, max_agreement: float = MAX_AGREEMENT) -> pd.DataFrame:
    """One row per (base, answer mode, task, pair, seed): ``gap`` = inverse − forward of ``metric``, the checkpoints'
    ``agreement``, ``flagged`` (agreement > ``max_agreement``) and stage 1's ``lift`` (final − base aligned share)."""
    check_choice("metric", metric, [c for c in table.columns if c not in _KEYS])
    if not 0.0 < max_agreement <= 1.0:
        raise ValueError(f"max_agreement={max_agreement!r} is not allowed; it must be in (0, 1].")
    t = table.copy()
    for col in ("base_share", "final_share"):
        if col not in t:
            t[col] = math.nan
    t[["base_share", "final_share"]] = t[["base_share", "final_share"]].astype(float)
    wide = t.pivot_table(index=_KEYS, columns="direction", values=metric, aggfunc="mean")
    extra = t.groupby(_KEYS)[["agreement", "base_share", "final_share"]].mean()
    out = pd.concat([wide, extra], axis=1).reset_index()
    out["gap"] = out["inverse"] - out["forward"]
    out["lift"] = out["final_share"] - out["base_share"]
    out["flagged"] = out["agreement"] > max_agreement
    return out[_KEYS + ["forward", "inverse", "gap", "agreement", "flagged", "lift"]].dropna(subset=["gap"])


def stage1_lift(table: pd.DataFrame, *, min_lift: float = MIN_LIFT) -> pd.DataFrame:
    """Per base and task: stage 1's lift of the aligned share (mean over seeds), the seeds, and ``moved`` (≥ ``min_lift``).
    A lift that was not measured (a hub model has no judge) is NaN and does not count as moved."""
    check_positive("min_lift", min_lift)
    g = paired_gaps(table, "mean_loss").groupby(["base", "task", "seed"], sort=False)["lift"].first()
    out = g.groupby(["base", "task"], sort=False).agg(lift="mean", seeds="size").reset_index()
    out["moved"] = out["lift"] >= min_lift
    return out


def pooled_gap(gaps: pd.DataFrame, *, tasks: Sequence[str] | None = None) -> tuple[Interval, int, int]:
    """The pooled gap of the unflagged rows (of ``tasks``, if given), clustered by seed; and the rows used and left out."""
    g = gaps if tasks is None else gaps[gaps["task"].isin(list(tasks))]
    used = g[~g["flagged"]]
    return mean_interval(used["gap"].to_numpy(), used["seed"].tolist()), int(len(used)), int(g["flagged"].sum())


def _word(verdict: str, interval: Interval) -> str:
    return f"{verdict}: {interval.text(3)}" if interval.finite else verdict


def verdict_rows(table: pd.DataFrame, *, pretrained: str, controls: Sequence[str] = (), metrics: Sequence[str] = VERDICT_METRICS,
                 min_lift: float = MIN_LIFT, max_agreement: float = MAX_AGREEMENT) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The verdicts, as two tables (every cell a number or words, never NaN):

    ``verdicts``: per metric and answer mode of the pre-trained base, the pooled gap with its interval, the
    pair-seeds used and left out (checkpoints agree), the finding, the counted controls and the verdict;
    ``controls``: per metric, answer mode and control base, whether it counted (and why), its gap and decision.
    """
    check_choice("pretrained", pretrained, sorted(set(table["base"])))
    lifts = stage1_lift(table, min_lift=min_lift)
    rows, ctl_rows = [], []
    for metric in metrics:
        gaps = paired_gaps(table, metric, max_agreement=max_agreement)
        for mode in dict.fromkeys(gaps.loc[gaps["base"] == pretrained, "answer_mode"]):
            main = gaps[(gaps["base"] == pretrained) & (gaps["answer_mode"] == mode)]
            interval, used, flagged = pooled_gap(main)
            finding = decide(interval, direction="less")
            decisions, notes = [], []
            for ctl in controls:
                g = gaps[(gaps["base"] == ctl) & (gaps["answer_mode"] == mode)]
                lift = lifts[lifts["base"] == ctl]
                moved = [t for t, m in zip(lift["task"], lift["moved"]) if m and t in set(g["task"])]
                lift_text = ", ".join(f"{t} {v:+.2f}" if math.isfinite(v) else f"{t} not measured" for t, v in zip(lift["task"], lift["lift"]))
                if g.empty:
                    why, counted, ci, word, n_used, n_flag = "not run in this answer mode", False, None, NOT_RUN, 0, 0
                elif not moved:
                    why, counted, ci, word, n_used, n_flag = f"not counted: stage 1 never moved it (lift {lift_text}; needs ≥ {min_lift:.2f})", False, None, NOT_RUN, 0, 0
                else:
                    ci, n_used, n_flag = pooled_gap(g, tasks=moved)
                    word = decide(ci, direction="less")
                    counted = word != NOT_RUN
                    why = (f"counted on {', '.join(moved)} (lift {lift_text})" if counted
                           else f"not counted: every pair left out (checkpoints agree on > {max_agreement:.0%} of queries)")
                    if counted:
                        decisions.append(word)
                ctl_rows.append({"metric": metric, "answer_mode": mode, "control": ctl, "counted": counted, "why": why,
                                 "gap (inverse − forward)": ci.text(3) if ci is not None else NOT_RUN, "pair-seeds": n_used,
                                 "left out (agree)": n_flag, "decision": word if counted else "not counted"})
                notes.append(f"{ctl}: {_word(word, ci) if counted and ci is not None else 'not counted'}")
            verdict = survives(finding, decisions)
            if finding == SHOWS and verdict == UNDECIDED:
                verdict = "undecided (no counted control)"
            rows.append({"metric": metric, "answer_mode": mode, "gap (inverse − forward)": interval.text(3), "pair-seeds": used,
                         "left out (agree)": flagged, "finding": finding, "controls": "; ".join(notes) or "none run", "verdict": verdict,
                         "estimate": interval.estimate, "low": interval.low, "high": interval.high})
    cols = ["metric", "answer_mode", "gap (inverse − forward)", "pair-seeds", "left out (agree)", "finding", "controls", "verdict"]
    verdicts = pd.DataFrame(rows, columns=cols + ["estimate", "low", "high"])
    return verdicts, pd.DataFrame(ctl_rows, columns=["metric", "answer_mode", "control", "counted", "why", "gap (inverse − forward)",
                                                     "pair-seeds", "left out (agree)", "decision"])


def verdict_table(table: pd.DataFrame, **kw) -> pd.DataFrame:
    """:func:`verdict_rows`' first table without its numeric columns: what the chapter prints."""
    return verdict_rows(table, **kw)[0].drop(columns=["estimate", "low", "high"])


METRIC_WORDS = {"mean_loss": "the paper's average training loss", "excess_loss": "the loss above the answers' own entropy",
                "kl_start": "the KL at the start of the fine-tune", "final_loss": "the final training loss"}


def verdict_prose(verdicts: pd.DataFrame, controls: pd.DataFrame) -> str:
    """The chapter's verdict in sentences, generated from :func:`verdict_rows` (Markdown)."""
    if verdicts.empty:
        return "No verdict: the pre-trained base was not run."
    lines = []
    for _, r in verdicts.iterrows():
        gap = r["gap (inverse − forward)"]
        s = (f"- **{METRIC_WORDS.get(r['metric'], r['metric'])}, {r['answer_mode']} answers**: pooled gap inverse − forward "
             f"{gap} nats over {r['pair-seeds']} pair-seeds ({r['left out (agree)']} left out: the checkpoints agree); "
             f"the finding **{r['finding']}**")
        if r["finding"] == SHOWS:
            s += f", and it **{r['verdict']}**" if r["verdict"] in ("survives", "does not survive") else f"; {r['verdict']}"
        elif r["finding"] == ABSENT:
            s += " (the interval lies on the side of inverse ≥ forward)"
        elif r["finding"] == UNDECIDED:
            s += " (the interval includes 0)"
        lines.append(s + ".")
    shown = verdicts[verdicts["finding"] == SHOWS]
    head = (f"The finding shows in {len(shown)} of {len(verdicts)} versions (metric × answer mode)"
            + (f" and survives its counted controls in {int((verdicts['verdict'] == 'survives').sum())}." if len(shown) else "."))
    c = controls.drop_duplicates(["control", "why"])
    ctl = "; ".join(f"{x} {w}" for x, w in zip(c["control"], c["why"])) if not c.empty else "no control was run"
    return head + "\n\n" + "\n".join(lines) + f"\n\nControls: {ctl}."


def milestone_summary(stage1: pd.DataFrame) -> pd.DataFrame:
    """Per base and task: in how many seeds the checkpoints were cut by behaviour, and the share of the way from the
    base's aligned share to the end of stage 1 that θ₁-θ₃ reached (mean over those seeds; targets in the
    config's ``fractions``)."""
    rows = []
    for (base, task), g in stage1.groupby(["base", "task"], sort=False):
        reached: dict[int, list[float]] = {1: [], 2: [], 3: []}
        by_behaviour = 0
        for _, s in g.groupby("seed"):
            s0 = s.loc[s["step"] == 0, "share"]
            s_end = s.loc[s["step"] == s["step"].max(), "share"]
            cut = s[s["checkpoint"].isin([1, 2, 3])]
            if s0.empty or s_end.empty or cut["target"].isna().all():
                continue
            by_behaviour += 1
            span = float(s_end.iloc[0] - s0.iloc[0])
            for k, v in zip(cut["checkpoint"], cut["share"]):
                reached[int(k)].append((float(v) - float(s0.iloc[0])) / span)
        row = {"base": base, "task": task, "seeds": int(g["seed"].nunique()), "cut by behaviour": by_behaviour}
        for k in (1, 2, 3):
            row[f"θ{k} reached"] = f"{np.mean(reached[k]):.0%}" if reached[k] else "cut by steps"
        rows.append(row)
    return pd.DataFrame(rows)
