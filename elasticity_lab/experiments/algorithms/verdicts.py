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
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from elasticity_lab.experiments.algorithms.analysis import censored_log2
from elasticity_lab.experiments.algorithms.config import AlgorithmsConfig
from elasticity_lab.experiments.stats import (ABSENT, NOT_RUN, SHOWS, UNDECIDED, Interval, decide, difference_interval,
                                              mean_interval, survives)

NOT_MEASURABLE = "not measurable here"
"""A rebounds row's answer against its controls where it shows but no control was lifted enough to count."""

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
                             + (f", lifted by {_gain(gains[k])}" if m else
                                f", not counted: stage 1 lifted it by {_gain(gains[k])}, less than {config.min_gain:g}")
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


def against_controls(row: pd.Series | Mapping[str, Any]) -> str:
    """A rebounds row's answer against its controls, as every table and sentence of the chapter shows it: ``not
    measurable here`` where the finding shows and no control was lifted enough to count (there
    :func:`~elasticity_lab.experiments.stats.survives` says undecided: nothing to set it against), otherwise the row's
    ``survives_controls`` (``""`` where the row has none)."""
    value = row.get("survives_controls", "")
    value = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    if row.get("verdict") == SHOWS and value == UNDECIDED and "left out" in str(row.get("detail", "")):
        return NOT_MEASURABLE
    return value


def _calibration_clause(control_calibration: pd.DataFrame | None, algorithms: Sequence[str]) -> str:
    """What the controls' own calibration reached for ``algorithms`` (best gain over each control's own score and
    its rate, and how far it moved the model), or ``""`` where the controls were not calibrated on their own."""
    if control_calibration is None or not len(control_calibration):
        return ""
    parts = []
    for a in algorithms:
        g = control_calibration[control_calibration["algorithm"] == a]
        if not len(g):
            continue
        means = g.groupby(["base_kind", "lr"], sort=False)[["rule", "kl", "base_rule"]].mean().reset_index()
        means["gain"] = means["rule"] - means["base_rule"]
        best = [f"{k} {r['gain']:+.3f} at {r['lr']:g}" for k, gk in means.groupby("base_kind", sort=False)
                for r in [gk.loc[gk["gain"].idxmax()]]]
        kl = float(means["kl"].max())
        parts.append(f"{a}: {', '.join(best)}" + (f", though it moved them (KL to the base up to {kl:.2g} nats per token)"
                                                  if kl > 1e-6 else ", and it left them unchanged (KL to the base 0)"))
    if not parts:
        return ""
    return (" Nor did any rate of the controls' own grid on the calibration seed (the largest gain over each control's "
            "own score, at its rate: " + "; ".join(parts) + "): calibrating a stage-1 rate for each control did not lift them.")


def control_calibration_text(control_calibration: pd.DataFrame, control_lrs: Mapping[str, Mapping[str, float]],
                             config: AlgorithmsConfig) -> str:
    """What each control base's own calibration reached (Markdown, from the table, so it cannot disagree with it):
    per control and algorithm, the best score over its grid against the control's own score, the rate used, and
    where no rate lifted it by ``config.min_gain``, how far it moved the model. ``""`` where no control was calibrated."""
    if control_calibration is None or not len(control_calibration):
        return ""
    seeds = ", ".join(str(s) for s in sorted(set(control_calibration["seed"])))
    lines = []
    for kind, g in control_calibration.groupby("base_kind", sort=False):
        means = g.groupby(["algorithm", "lr"], sort=False)[["rule", "kl", "base_rule"]].mean().reset_index()
        own = float(means["base_rule"].mean())
        parts, unlifted = [], []
        for a, ga in means.groupby("algorithm", sort=False):
            best = ga.loc[ga["rule"].idxmax()]
            chosen = control_lrs.get(str(kind), {}).get(str(a))
            used = f", rate used {chosen:.3g}" if chosen is not None else ""
            if best["rule"] - own >= config.min_gain:
                reach = "reached the target" if best["rule"] >= config.target else "short of the target"
                parts.append(f"{a} up to {best['rule']:.2f} at {best['lr']:g} ({reach}){used}")
            else:
                kl = float(ga["kl"].max())
                moved = f"KL to the base up to {kl:.2g} nats per token" if kl > 1e-6 else "KL to the base 0: it did not change the model"
                parts.append(f"{a} at most {best['rule']:.2f} ({moved}){used}")
                unlifted.append(str(a))
        grid = sorted(set(g["lr"]))
        lines.append(f"- **{kind}** (its own score {own:.2f}; rates {', '.join(f'{lr:g}' for lr in grid)}): " + "; ".join(parts)
                     + (f". No rate of the grid lifted it by {config.min_gain:g} for {', '.join(unlifted)}." if unlifted else "."))
    return (f"Each control's own calibration (seed {seeds}; the aligned score each algorithm reached at its best rate, "
            f"aiming at {config.target:g}):\n\n" + "\n".join(lines)
            + f"\n\nThe rate used is chosen from these scores as for the pre-trained base, even where none is near the target. "
            f"Whether a control counts in the verdicts is decided on the study's own seeds: its curves are left out where "
            f"stage 1 lifted it by less than {config.min_gain:g} on average there.")


def verdict_text(table: pd.DataFrame, control_calibration: pd.DataFrame | None = None) -> str:
    """The verdicts as Markdown sentences, generated from the rows so the prose cannot disagree with the numbers.

    ``control_calibration`` (the study's :attr:`AlgorithmsResult.control_calibration`, where each control base was
    calibrated on its own) lets the text say what the controls' own rates reached where no control counts."""
    out = []
    ind = table[table["finding"] == "the rebound is independent of the alignment algorithm"]
    if len(ind):
        out.append(f"**The rebound is independent of the alignment algorithm:** {ind['verdict'].iloc[0]} "
                   f"(every algorithm compared with SFT: {ind['detail'].iloc[0] or 'no other algorithm run'}).")
    reb = table[(table["finding"] == "rebounds") & (table["base_kind"] == "pretrained")]
    uncontrolled = [str(r["algorithm"]) for _, r in reb.iterrows() if against_controls(r) == NOT_MEASURABLE]
    for _, r in reb.iterrows():
        iv = Interval(r["estimate"], r["low"], r["high"], n=1 if np.isfinite(r["estimate"]) else 0)
        share = f", share {iv.text()}" if iv.finite else " (stage 1 lifted nothing to undo)"
        against = against_controls(r) + (": no control was lifted enough to count" if str(r["algorithm"]) in uncontrolled else "")
        out.append(f"**{r['algorithm']} rebounds** (more than {r['margin']:.0%} of the gain undone): {r['verdict']}{share}; "
                   f"against its controls: {against} ({r['detail']}).")
    if uncontrolled:
        over = [str(r["algorithm"]) for _, r in reb.iterrows() if np.isfinite(r["estimate"]) and r["estimate"] > 1]
        calibrated = _calibration_clause(control_calibration, uncontrolled)
        out.append(f"**Against the controls, not measurable here** ({', '.join(uncontrolled)}): stage 1 lifted neither control base "
                   "by enough to count (the gains are in the rows above), so there is no rebound on a base without a "
                   "pre-trained distribution to set these against." + calibrated + " The rebound on the pre-trained base may then come from "
                   "stage 2 itself, fine-tuning on the unaligned answers, which moves any model it can move, elastic or not"
                   + (f"; for {', '.join(over)} more than the whole gain was undone, so the score ended below the base's own "
                      "level rather than settling at it" if over else "")
                   + ". What would test it: control bases lifted as high as the pre-trained base before stage 2 ("
                   + ("more than one epoch of stage 1, or rates beyond the controls' grid" if calibrated else
                      "more steps, or a stage-1 rate of their own: `AlgorithmsConfig.control_lr_grid`")
                   + "), so that their rebound can be timed the same way.")
    failed = [str(r["algorithm"]) for _, r in reb.iterrows() if against_controls(r) == "does not survive"]
    if failed:
        share = float(reb["margin"].iloc[0])
        out.append(f"**Does not survive its controls** ({', '.join(failed)}): the same algorithm on a control base, one without a "
                   f"pre-trained distribution that stage 1 lifted enough to count, also lost more than {share:.0%} of its gain in "
                   "the same stage 2 (the rows above). A rebound that a base with nothing to spring back to shows too cannot be "
                   "credited to the pre-trained distribution: here stage 2 undoes this alignment on a base with little or no "
                   "pre-training too.")
    kept = [str(r["algorithm"]) for _, r in reb.iterrows() if against_controls(r) == "survives"]
    if kept:
        out.append(f"**Survives its controls** ({', '.join(kept)}): no control base that stage 1 lifted enough to count shows "
                   "the same rebound (each control that counts does not show it or is undecided), so of the bases measured "
                   "only the pre-trained one shows it.")
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
