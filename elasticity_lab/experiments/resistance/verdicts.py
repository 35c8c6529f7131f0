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

The finding **survives** only if it shows, no counted control shows it too (:func:`stats.survives`), and on the tasks
where each control counts the pre-trained gap is below the control's with an interval (Welch t over seed means): a
control too noisy to tell leaves the verdict undecided instead of letting the finding survive by itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from elasticity_lab.core.config import check_choice, check_positive
from elasticity_lab.experiments.stats import (ABSENT, NOT_RUN, SHOWS, UNDECIDED, Interval, decide, difference_interval, mean_interval,
                                              survives)

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


ALL_AGREE = "every pair left out (checkpoints agree)"
"""What a gap says where the run was made but every pair's checkpoints agree: it was run, so never ``not run``."""


def gap_words(interval: Interval, used: int, left_out: int, *, direction: str = "less") -> tuple[str, str]:
    """The pooled gap as text and its decision; a gap whose pairs were all left out is ``undecided``, not ``not run``."""
    if used == 0 and left_out > 0:
        return ALL_AGREE, UNDECIDED
    return interval.text(3), decide(interval, direction=direction)


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
            gap_text, finding = gap_words(interval, used, flagged)
            decisions, notes, unresolved = [], [], []
            for ctl in controls:
                g = gaps[(gaps["base"] == ctl) & (gaps["answer_mode"] == mode)]
                lift = lifts[lifts["base"] == ctl]
                moved = [t for t, m in zip(lift["task"], lift["moved"]) if m and t in set(g["task"])]
                lift_text = ", ".join(f"{t} {v:+.2f}" if math.isfinite(v) else f"{t} not measured" for t, v in zip(lift["task"], lift["lift"]))
                sep_text = NOT_RUN if g.empty else "not counted"
                if g.empty:
                    why, counted, ci, word, n_used, n_flag = "not run in this answer mode", False, None, NOT_RUN, 0, 0
                elif not moved and len(lift) and not lift["lift"].apply(math.isfinite).any():  # no judge: nothing to say it moved
                    why, counted, ci, word, n_used, n_flag = (f"not counted: stage 1's lift was not measured (no judge for this base; "
                                                              f"needs ≥ {min_lift:.2f})"), False, None, NOT_RUN, 0, 0
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
                        # the pre-trained gap on the same tasks minus the control's: survival needs it below 0 with an
                        # interval, so a control too noisy to tell cannot let the finding survive by itself
                        a = main[main["task"].isin(moved) & ~main["flagged"]]
                        b = g[g["task"].isin(moved) & ~g["flagged"]]
                        sep = difference_interval(a["gap"].to_numpy(), b["gap"].to_numpy(), a["seed"].tolist(), b["seed"].tolist())
                        sep_text = sep.text(3)
                        if word != SHOWS and decide(sep, direction="less") != SHOWS:
                            unresolved.append(ctl)
                ctl_rows.append({"metric": metric, "answer_mode": mode, "control": ctl, "counted": counted, "why": why,
                                 "gap (inverse − forward)": ci.text(3) if ci is not None else ("not counted" if not g.empty else NOT_RUN),
                                 "pair-seeds": n_used, "left out (agree)": n_flag, "decision": word if counted else "not counted",
                                 "pre-trained − control": sep_text})
                notes.append(f"{ctl}: {_word(word, ci) if counted and ci is not None else 'not counted'}")
            verdict = survives(finding, decisions)
            if finding == SHOWS and verdict == UNDECIDED:
                verdict = "undecided (no counted control)"
            elif verdict == "survives" and unresolved:
                verdict = f"undecided (not separated from {', '.join(unresolved)})"
            rows.append({"metric": metric, "answer_mode": mode, "gap (inverse − forward)": gap_text, "pair-seeds": used,
                         "left out (agree)": flagged, "finding": finding, "controls": "; ".join(notes) or "none run", "verdict": verdict,
                         "estimate": interval.estimate, "low": interval.low, "high": interval.high})
    cols = ["metric", "answer_mode", "gap (inverse − forward)", "pair-seeds", "left out (agree)", "finding", "controls", "verdict"]
    verdicts = pd.DataFrame(rows, columns=cols + ["estimate", "low", "high"])
    return verdicts, pd.DataFrame(ctl_rows, columns=["metric", "answer_mode", "control", "counted", "why", "gap (inverse − forward)",
                                                     "pair-seeds", "left out (agree)", "decision", "pre-trained − control"])


def verdict_table(table: pd.DataFrame, **kw) -> pd.DataFrame:
    """:func:`verdict_rows`' first table without its numeric columns: what the chapter prints."""
    return verdict_rows(table, **kw)[0].drop(columns=["estimate", "low", "high"])


METRIC_WORDS = {"mean_loss": "the paper's average training loss", "excess_loss": "the loss above the answers' own entropy",
                "kl_start": "the KL at the start of the fine-tune", "final_loss": "the final training loss"}


def _finding_words(finding: str) -> str:
    return f"the finding is **{finding}**" if finding in (UNDECIDED, NOT_RUN) else f"the finding **{finding}**"


def _control_prose(controls: pd.DataFrame) -> str:
    """Per control base: where it was not run, where it was not counted and why, and what it showed where it counted."""
    if controls.empty:
        return "Controls: no control was run."
    parts = []
    for ctl, g in controls.groupby("control", sort=False):
        not_run = sorted(set(g.loc[g["why"] == "not run in this answer mode", "answer_mode"]))
        bits = [f"not run with {', '.join(not_run)} answers"] if not_run else []
        for why in dict.fromkeys(g.loc[~g["counted"] & (g["why"] != "not run in this answer mode"), "why"]):
            bits.append(why)
        counted = g[g["counted"]]
        if not counted.empty:
            where = counted["why"].iloc[0].split(" (lift")[0]
            shows = counted[counted["decision"] == SHOWS]
            listed = "; ".join(f"{METRIC_WORDS.get(m, m)}, {a} answers {x}" for m, a, x in
                               zip(shows["metric"], shows["answer_mode"], shows["gap (inverse − forward)"]))
            bits.append(f"{where}, where it shows inverse < forward in {len(shows)} of {len(counted)} versions"
                        + (f" ({listed})" if listed else ""))
        parts.append(f"- **{ctl}**: " + "; ".join(bits) + ".")
    return "Controls:\n\n" + "\n".join(parts)


def verdict_prose(verdicts: pd.DataFrame, controls: pd.DataFrame) -> str:
    """The chapter's verdict in sentences, generated from :func:`verdict_rows` (Markdown)."""
    if verdicts.empty:
        return "No verdict: the pre-trained base was not run."
    lines = []
    for _, r in verdicts.iterrows():
        gap = r["gap (inverse − forward)"]
        s = (f"- **{METRIC_WORDS.get(r['metric'], r['metric'])}, {r['answer_mode']} answers**: pooled gap inverse − forward "
             f"{gap}{' nats' if gap[:1] in '+-' else ''} over {r['pair-seeds']} pair-seeds ({r['left out (agree)']} left out: the checkpoints agree); "
             + _finding_words(r["finding"]))
        if r["finding"] == SHOWS:
            s += f", and it **{r['verdict']}**" if r["verdict"] in ("survives", "does not survive") else f"; {r['verdict']}"
        elif r["finding"] == ABSENT:
            s += " (the interval lies on the side of inverse ≥ forward)"
        elif r["finding"] == UNDECIDED:
            s += " (the interval includes 0)" if gap[:1] in "+-" else ""
        lines.append(s + ".")
    shown = verdicts[verdicts["finding"] == SHOWS]
    head = (f"The finding shows in {len(shown)} of {len(verdicts)} versions (metric × answer mode)"
            + (f" and survives its counted controls in {int((verdicts['verdict'] == 'survives').sum())}." if len(shown) else "."))
    return head + "\n\n" + "\n".join(lines) + "\n\n" + _control_prose(controls)


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


def milestone_prose(milestones: pd.DataFrame, *, close: float = 0.05) -> str:
    """One sentence from :func:`milestone_summary`: where θ₁-θ₃ landed per task, and which checkpoints reached the same
    point of the way (within ``close``: stage 1 changed behaviour in one jump, so they differ only in training time)."""
    if milestones.empty:
        return "No checkpoints were cut."
    parts, same = [], []
    for _, r in milestones.iterrows():
        reached = [r[f"θ{k} reached"] for k in (1, 2, 3)]
        if r["cut by behaviour"] == 0:
            parts.append(f"{r['task']} cut by steps (stage 1 did not move its behaviour, so its checkpoints differ only in training time)")
            continue
        parts.append(f"{r['task']} θ1-θ3 at {', '.join(reached)} of the way (cut by behaviour in {r['cut by behaviour']} of {r['seeds']} seeds)")
        vals = [float(x.rstrip("%")) / 100 for x in reached]
        twins = [f"θ{k}/θ{k + 1}" for k in (1, 2) if abs(vals[k] - vals[k - 1]) <= close]
        if twins:
            same.append(f"{r['task']} ({', '.join(twins)})")
    text = "Checkpoints: " + "; ".join(parts) + "."
    if same:
        text += (f" Checkpoints that reached the same point of the way, so that they differ in training time more than in "
                 f"behaviour: {', '.join(same)}.")
    return text


def world_gaps(table: pd.DataFrame, rate_of: dict[str, float], *, answer_modes: Sequence[str],
               metrics: Sequence[str] = VERDICT_METRICS) -> pd.DataFrame:
    """Per metric, answer mode and world (a base and its pre-training base rate): the pooled gap with its interval and
    decision, and the pair-seeds used and left out (never ``not run`` where the pairs were run but agree)."""
    rows = []
    for metric in metrics:
        gaps = paired_gaps(table, metric)
        for (mode, b), g in gaps[gaps["answer_mode"].isin(list(answer_modes))].groupby(["answer_mode", "base"], sort=False):
            ci, used, left = pooled_gap(g)
            text, word = gap_words(ci, used, left)
            rows.append({"metric": metric, "answer_mode": mode, "world": f"refusal {rate_of[b]:.0%}", "base": b, "rate": rate_of[b],
                         "gap (inverse − forward)": text, "decision": word, "pair-seeds": used, "left out (agree)": left})
    return pd.DataFrame(rows)


def world_order(table: pd.DataFrame, rate_of: dict[str, float], *, answer_modes: Sequence[str],
                metrics: Sequence[str] = VERDICT_METRICS) -> pd.DataFrame:
    """The prediction of the base-rate control: the inverse advantage is largest in the world stage 1 moved furthest,
    i.e. the gap of the lowest-rate world minus that of the highest-rate world is below 0 (Welch t over seed means)."""
    lo_b, hi_b = min(rate_of, key=rate_of.get), max(rate_of, key=rate_of.get)
    rows = []
    for metric in metrics:
        gaps = paired_gaps(table, metric)
        for mode in answer_modes:
            a = gaps[(gaps["base"] == lo_b) & (gaps["answer_mode"] == mode)]
            b = gaps[(gaps["base"] == hi_b) & (gaps["answer_mode"] == mode)]
            a, b, agree = a[~a["flagged"]], b[~b["flagged"]], (a["flagged"].any() or b["flagged"].any())
            ci = difference_interval(a["gap"].to_numpy(), b["gap"].to_numpy(), a["seed"].tolist(), b["seed"].tolist())
            text, word = (ALL_AGREE, UNDECIDED) if ci.n == 0 and agree else (ci.text(3), decide(ci, direction="less"))
            rows.append({"metric": metric, "answer_mode": mode,
                         "difference": f"refusal {rate_of[lo_b]:.0%} − refusal {rate_of[hi_b]:.0%}",
                         "gap difference": text, "prediction": word})
    out = pd.DataFrame(rows)
    lift = stage1_lift(table).groupby("base")["lift"].mean() if len(table) else pd.Series(dtype=float)
    # the premise (stage 1 moved the lowest-rate world further than the highest-rate one), for world_prose
    out.attrs["lift"] = {f"refusal {rate_of[b]:.0%}": float(lift.get(b, math.nan)) for b in (lo_b, hi_b)}
    return out


def world_prose(order: pd.DataFrame) -> str:
    """The base-rate control in one sentence, from :func:`world_order`."""
    if order.empty:
        return "The base-rate control was not run."
    shown = order[order["prediction"] == SHOWS]
    against = order[order["prediction"] == ABSENT]

    def listed(rows: pd.DataFrame) -> str:  # each count is followed by the versions it counts
        return (" (" + "; ".join(f"{METRIC_WORDS.get(m, m)}, {a} answers {x}" for m, a, x in
                                 zip(rows["metric"], rows["answer_mode"], rows["gap difference"])) + ")") if len(rows) else ""

    words = (f"The prediction (a larger inverse advantage in the world stage 1 moved furthest: {order['difference'].iloc[0]} "
             f"below 0) shows in {len(shown)} of {len(order)} versions (metric × answer mode){listed(shown)}, goes the other "
             f"way in {len(against)}{listed(against)}, and is undecided or not run in the rest.")
    lift = order.attrs.get("lift", {})
    if len(lift) == 2 and all(math.isfinite(v) for v in lift.values()):
        (lo, lo_lift), (hi, hi_lift) = lift.items()
        moved = f"stage 1 lifted the aligned share by {lo_lift:+.2f} in the {lo} world and by {hi_lift:+.2f} in the {hi} world"
        words += (f" Its premise holds: {moved}." if lo_lift > hi_lift else
                  f" **Its premise fails here**: {moved}, so the {lo} world is not the one moved furthest and the "
                  "prediction tests nothing.")
    return words
