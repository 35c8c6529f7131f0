"""The algorithms study's verdicts, computed from the per-curve summary with :mod:`elasticity_lab.experiments.stats`.

Three findings, each able to come out either way (tests/test_algorithms.py feeds synthetic summaries
with known answers):

- **matched alignment** (per algorithm other than SFT): its aligned score minus SFT's, a Welch interval
  over seed means, lies within ± ``match_margin`` (shows), entirely outside it (does not show), or
  neither (undecided). The comparison of rebounds is fair only at matched alignment.
- **rebounds** (per algorithm): the share of the alignment gain undone after ``n_align`` negative
  examples exceeds ``rebound_share`` (shows: the seed interval lies above it; does not show: below it),
  and whether the finding survives its controls: the same algorithm on the lightly pre-trained and
  random-init bases must *not* show it (a control counts only where stage 1 lifted its score by at
  least ``min_gain`` on average; :func:`~elasticity_lab.experiments.stats.survives`).
- **independent of the algorithm** (one row): for every algorithm, its n-to-halfway is within a factor
  ``halfway_factor`` of SFT's (log2 difference within ± log2 of it; curves that never got halfway counted
  at twice the grid's end) and its settled level within ± ``level_margin`` of SFT's. Shows where every
  interval lies inside its band; does not show where any lies entirely outside; otherwise undecided.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from elasticity_lab.experiments.algorithms.analysis import censored_log2
from elasticity_lab.experiments.algorithms.config import AlgorithmsConfig
from elasticity_lab.experiments.stats import (ABSENT, NOT_RUN, SHOWS, UNDECIDED, Interval, decide, difference_interval,
                                              mean_interval, survives)

COLUMNS = ["finding", "algorithm", "base_kind", "statistic", "estimate", "low", "high", "margin", "verdict", "survives_controls", "detail"]


def within(interval: Interval, margin: float) -> str:
    """An equivalence claim "|effect| < margin": shows where the interval lies inside (−margin, margin), does not
    show where it lies entirely outside, otherwise undecided (two one-sided :func:`decide` calls)."""
    inside = (decide(interval, null=margin, direction="less") == SHOWS
              and decide(interval, null=-margin, direction="greater") == SHOWS)
    if decide(interval) == NOT_RUN:
        return NOT_RUN
    if inside:
        return SHOWS
    if decide(interval, null=margin, direction="greater") == SHOWS or decide(interval, null=-margin, direction="less") == SHOWS:
        return ABSENT
    return UNDECIDED


def _row(finding: str, algorithm: str, base_kind: str, statistic: str, iv: Interval, margin: float, verdict: str,
         survives_controls: str = "", detail: str = "") -> dict[str, Any]:
    return {"finding": finding, "algorithm": algorithm, "base_kind": base_kind, "statistic": statistic,
            "estimate": iv.estimate, "low": iv.low, "high": iv.high, "margin": margin, "verdict": verdict,
            "survives_controls": survives_controls, "detail": detail}


def _of(summary: pd.DataFrame, algorithm: str, base_kind: str) -> pd.DataFrame:
    return summary[(summary["algorithm"] == algorithm) & (summary["base_kind"] == base_kind)]


def verdicts(summary: pd.DataFrame, config: AlgorithmsConfig) -> pd.DataFrame:
    """Every verdict row (see the module docstring) from :func:`~elasticity_lab.experiments.algorithms.analysis.curve_summary`."""
    need = {"algorithm", "base_kind", "seed", "aligned", "gain", "lost_share", "n_half", "settled", "kl_aligned"}
    if not need <= set(summary.columns):
        raise ValueError(f"summary needs the columns {sorted(need)}; it has {sorted(summary.columns)}.")
    rows: list[dict[str, Any]] = []
    algs = [a for a in config.algorithms if a in set(summary["algorithm"])]
    sft = _of(summary, "sft", "pretrained")
    limit = 2.0 * config.n_perturb[-1]
    # matched alignment
    for a in algs:
        if a == "sft":
            continue
        g = _of(summary, a, "pretrained")
        iv = difference_interval(g["aligned"], sft["aligned"], g["seed"], sft["seed"])
        kl = difference_interval(g["kl_aligned"], sft["kl_aligned"], g["seed"], sft["seed"])
        rows.append(_row("matched alignment", a, "pretrained", "aligned score − SFT's", iv, config.match_margin,
                         within(iv, config.match_margin), detail=f"KL after stage 1 − SFT's: {kl.text(3)} nats/token"))
    # rebounds, per algorithm, with its controls
    for a in algs:
        decisions: dict[str, tuple[Interval, str, bool]] = {}
        gains: dict[str, float] = {}
        for kind in config.bases:
            g = _of(summary, a, kind)
            iv = mean_interval(g["lost_share"], g["seed"])
            gains[kind] = float(np.nanmean(g["gain"])) if len(g) and np.isfinite(g["gain"].to_numpy(float)).any() else math.nan
            moved = bool(len(g)) and gains[kind] >= config.min_gain
            decisions[kind] = (iv, decide(iv, null=config.rebound_share, direction="greater"), moved)
        iv, finding, _ = decisions["pretrained"]
        counted = [d for k, (_, d, moved) in decisions.items() if k != "pretrained" and moved]
        left_out = [k for k, (_, _, moved) in decisions.items() if k != "pretrained" and not moved]
        controls = "; ".join(f"{k}: {d}" + (f" ({i.text()})" if i.finite else "")
                             + ("" if m else f", not counted: stage 1 lifted it by {_gain(gains[k])}, less than {config.min_gain:g}")
                             for k, (i, d, m) in decisions.items() if k != "pretrained")
        rows.append(_row("rebounds", a, "pretrained", f"share of the gain undone after n = {config.n_align}", iv,
                         config.rebound_share, finding, survives(finding, counted),
                         detail=f"controls: {controls or 'none run'}" + (f"; left out: {', '.join(left_out)}" if left_out else "")))
        for k, (civ, d, moved) in decisions.items():
            if k != "pretrained":
                rows.append(_row("rebounds", a, k, f"share of the gain undone after n = {config.n_align}", civ,
                                 config.rebound_share, d, detail="counted" if moved else
                                 f"not counted: stage 1 lifted it by {_gain(gains[k])}, less than {config.min_gain:g}"))
    # independence of the algorithm
    parts: list[str] = []
    sub: list[str] = []
    for a in algs:
        if a == "sft":
            continue
        g = _of(summary, a, "pretrained")
        half = difference_interval(censored_log2(g["n_half"], limit), censored_log2(sft["n_half"], limit), g["seed"], sft["seed"])
        level = difference_interval(g["settled"], sft["settled"], g["seed"], sft["seed"])
        vh, vl = within(half, math.log2(config.halfway_factor)), within(level, config.level_margin)
        rows.append(_row("same n-to-halfway as SFT", a, "pretrained", "log2 n-to-halfway − SFT's", half,
                         math.log2(config.halfway_factor), vh))
        rows.append(_row("same settled level as SFT", a, "pretrained", "settled score − SFT's", level, config.level_margin, vl))
        sub += [vh, vl]
        parts.append(f"{a}: log2 ratio {half.text()}, level {level.text()}")
    overall = _combine(sub)
    rows.append(_row("the rebound is independent of the alignment algorithm", "all", "pretrained",
                     "every algorithm within the margins of SFT", Interval(math.nan, math.nan, math.nan, n=len(sub)),
                     math.nan, overall, detail="; ".join(parts)))
    return pd.DataFrame(rows, columns=COLUMNS)


def _gain(g: float) -> str:
    return f"{g:+.3f} on average" if math.isfinite(g) else "nothing measurable"


def _combine(verdicts_: Sequence[str]) -> str:
    """All shows → shows; any does not show → does not show; nothing run → not run; otherwise undecided."""
    run = [v for v in verdicts_ if v != NOT_RUN]
    if not run:
        return NOT_RUN
    if any(v == ABSENT for v in run):
        return ABSENT
    return SHOWS if all(v == SHOWS for v in run) and len(run) == len(verdicts_) else UNDECIDED


def verdict_text(table: pd.DataFrame) -> str:
    """The verdicts as Markdown sentences, generated from the rows so the prose cannot disagree with the numbers."""
    out = []
    ind = table[table["finding"] == "the rebound is independent of the alignment algorithm"]
    if len(ind):
        out.append(f"**The rebound is independent of the alignment algorithm:** {ind['verdict'].iloc[0]} "
                   f"(every algorithm compared with SFT: {ind['detail'].iloc[0] or 'no other algorithm run'}).")
    reb = table[(table["finding"] == "rebounds") & (table["base_kind"] == "pretrained")]
    uncontrolled = [str(r["algorithm"]) for _, r in reb.iterrows()
                    if r["verdict"] == SHOWS and r["survives_controls"] == UNDECIDED and "left out" in str(r["detail"])]
    for _, r in reb.iterrows():
        iv = Interval(r["estimate"], r["low"], r["high"], n=1 if np.isfinite(r["estimate"]) else 0)
        share = f", share {iv.text()}" if iv.finite else " (stage 1 lifted nothing to undo)"
        against = ("not measurable here: no control was lifted enough to count" if str(r["algorithm"]) in uncontrolled
                   else str(r["survives_controls"]))
        out.append(f"**{r['algorithm']} rebounds** (more than {r['margin']:.0%} of the gain undone): {r['verdict']}{share}; "
                   f"against its controls: {against} ({r['detail']}).")
    if uncontrolled:
        over = [str(r["algorithm"]) for _, r in reb.iterrows() if np.isfinite(r["estimate"]) and r["estimate"] > 1]
        out.append(f"**Against the controls, not measurable here** ({', '.join(uncontrolled)}): stage 1 lifted neither control base "
                   "by enough to count (the gains are in the rows above), so there is no rebound on a base without a "
                   "pre-trained distribution to set these against. The rebound on the pre-trained base may then come from "
                   "stage 2 itself, fine-tuning on the unaligned answers, which moves any model it can move, elastic or not"
                   + (f"; for {', '.join(over)} more than the whole gain was undone, so the score ended below the base's own "
                      "level rather than settling at it" if over else "")
                   + ". What would test it: control bases lifted as high as the pre-trained base before stage 2 (more steps, "
                   "or a stage-1 rate of their own where the study did not calibrate one), so that their rebound can be "
                   "timed the same way.")
    m = table[table["finding"] == "matched alignment"]
    unmatched = [str(a) for a in m.loc[m["verdict"] != SHOWS, "algorithm"]]
    if len(ind) and unmatched:
        out.insert(1, f"Read it with care: matched alignment with SFT is not shown for {', '.join(unmatched)}, so a difference "
                      "in the rebound may come from how high stage 1 lifted the model rather than from the algorithm.")
    if len(m):
        out.append("**Matched alignment** (aligned score within ±" + f"{m['margin'].iloc[0]:g} of SFT's): "
                   + "; ".join(f"{r['algorithm']} {r['verdict']} "
                               f"({Interval(r['estimate'], r['low'], r['high'], n=1).text()})" for _, r in m.iterrows()) + ".")
    return "\n\n".join(out)
