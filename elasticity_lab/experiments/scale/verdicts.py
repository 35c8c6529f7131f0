"""The scale study's computed verdicts: does elasticity grow with model size, with pre-training volume?

The rule, stated so a reader can disagree with it. For each axis and each measure: the trend of the measure
along the axis is Spearman's rank correlation within each pre-training seed, with a t-interval over the
seeds (:func:`elasticity_lab.experiments.stats.trend_interval`). The finding **shows** where that interval
lies wholly on the side that growing elasticity predicts (:data:`ELASTIC_DIRECTION`: every measure falls);
it **survives its controls** only if the same trend does *not* show on the axis's control bases (random
init of each size; the fine-tuning-only base matched to each checkpoint), measured the same way
(:func:`elasticity_lab.experiments.stats.survives`). The headline verdicts are those of ``n_half``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from elasticity_lab.experiments.scale.config import AXES, ELASTIC_DIRECTION, HEADLINE_MEASURE, SIZE_CONTROLS, VOLUME_CONTROLS
from elasticity_lab.experiments.stats import NOT_RUN, SHOWS, Interval, decide, survives, trend_interval

CONTROLS: dict[str, tuple[str, ...]] = {"size": SIZE_CONTROLS, "volume": VOLUME_CONTROLS}
X_COLUMN: dict[str, str] = {"size": "params", "volume": "tokens"}
CLAIM: dict[str, str] = {"size": "elasticity grows with model size", "volume": "elasticity grows with pre-training volume"}
MEASURE_WORDS: dict[str, str] = {
    "n_half": "rebound is faster (fewer negative examples to get halfway back)",
    "settle_gap": "the curve settles nearer the base's own level",
    "kl_stage1": "alignment moves the model less far from its base (KL after stage 1)",
}
CONTROL_WORDS: dict[str, str] = {"random": "random init of the same size", "light": "lightly pre-trained base of the same size",
                                  "finetuned": "fine-tuning-only base matched to each checkpoint"}


def _trend(measures: pd.DataFrame, axis: str, kind: str, measure: str) -> Interval:
    sub = measures[(measures["axis"] == axis) & (measures["base_kind"] == kind) & (measures["measure"] == measure)]
    return trend_interval(sub[X_COLUMN[axis]], sub["value"], sub["seed"])


MIN_LIFT = 0.01
"""A curve counts toward a verdict only if stage 1 lifted its score at least this far above the base's own level
(one percentage point of the likelihood share): a curve that never left its base has no rebound to measure, and its
n-to-halfway is noise. Set after the reader run showed random-init and lightly pre-trained controls lifted by
about 1e-6; every measure of every curve stays in the tables either way."""


def moved_only(measures: pd.DataFrame, min_lift: float = MIN_LIFT) -> pd.DataFrame:
    """The rows of curves that stage 1 moved by at least ``min_lift`` (all rows where the table has no ``lift`` measure)."""
    lift = measures[measures["measure"] == "lift"]
    if not len(lift):
        return measures
    keys = ["axis", "base_kind", "preset", "tokens", "seed"]
    moved = lift.loc[lift["value"].astype(float) >= min_lift, keys].drop_duplicates()
    return measures.merge(moved, on=keys, how="inner")


def _moved_text(measures: pd.DataFrame, axis: str, kind: str, min_lift: float) -> str:
    lift = measures[(measures["measure"] == "lift") & (measures["axis"] == axis) & (measures["base_kind"] == kind)]
    if not len(lift):
        return "no lift measured"
    return f"{int((lift['value'].astype(float) >= min_lift).sum())} of {len(lift)} curves moved by stage 1 (lift ≥ {min_lift:g})"


def verdicts(measures: pd.DataFrame, *, min_lift: float = MIN_LIFT) -> pd.DataFrame:
    """One row per axis × measure: the trend's interval, what it shows, each control's, and the verdict.

    ``measures`` is the tidy table of :func:`elasticity_lab.experiments.scale.analysis.curve_measures`
    (columns ``axis, base_kind, params, tokens, seed, measure, value``); any table of that shape works,
    which is how the rule is tested on synthetic data.
    """
    rows: list[dict[str, Any]] = []
    everything, measures = measures, moved_only(measures, min_lift)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant inputs inside a seed give rho 0, by design
        for axis in AXES:
            for measure, direction in ELASTIC_DIRECTION.items():
                iv = _trend(measures, axis, "pretrained", measure)
                finding = decide(iv, direction=direction)
                kinds = [k for k in CONTROLS[axis] if k in set(everything.loc[everything["axis"] == axis, "base_kind"])]
                ctl = {kind: _trend(measures, axis, kind, measure) for kind in kinds}
                ctl_find = {kind: decide(c, direction=direction) for kind, c in ctl.items()}
                rows.append({
                    "axis": axis, "measure": measure, "claim": CLAIM[axis], "headline": measure == HEADLINE_MEASURE,
                    "direction": direction, "trend": iv.estimate, "low": iv.low, "high": iv.high, "trend_text": _text(iv, finding),
                    "seeds": _seeds(measures, axis, "pretrained", measure), "finding": finding,
                    "moved": _moved_text(everything, axis, "pretrained", min_lift),
                    "controls_moved": "; ".join(_moved_text(everything, axis, k, min_lift) for k in kinds),
                    "controls": "; ".join(CONTROL_WORDS[k] for k in ctl),
                    "control_trend_text": "; ".join(_text(c, ctl_find[k]) for k, c in ctl.items()),
                    "control_finding": "; ".join(ctl_find.values()),
                    "verdict": survives(finding, list(ctl_find.values())),
                })
    return pd.DataFrame(rows)


def _text(iv: Interval, finding: str) -> str:
    """The interval in words; where no seed has three moved curves there is no trend, and it says so."""
    return "no trend (no seed has three curves that stage 1 moved)" if finding == NOT_RUN else iv.text()


def _seeds(measures: pd.DataFrame, axis: str, kind: str, measure: str) -> int:
    sub = measures[(measures["axis"] == axis) & (measures["base_kind"] == kind) & (measures["measure"] == measure)]
    return int(sub.loc[np.isfinite(sub["value"].astype(float)), "seed"].nunique())


def headline(rows: pd.DataFrame) -> dict[str, str]:
    """``{claim: verdict}`` of the headline measure, one per axis."""
    h = rows[rows["headline"]]
    return dict(zip(h["claim"], h["verdict"]))


def verdict_text(rows: pd.DataFrame, measures: pd.DataFrame | None = None) -> str:
    """The verdicts as Markdown sentences generated from the rows (the chapter's prose can never disagree with them).

    With the tidy ``measures`` (which carry each curve's ``lift``), a claim that could not be measured also says how
    far stage 1 lifted each pre-trained base of its axis, the reason, and what would test it.
    """
    out = []
    for _, r in rows[rows["headline"]].iterrows():
        if r["verdict"] == NOT_RUN and r["finding"] == NOT_RUN:
            out.append(_not_measurable(r, measures))
            continue
        answer = ("undecided: the trend shows, but stage 1 moved none of its controls, so it cannot be set against one"
                  if r["finding"] == SHOWS and r["verdict"] == "undecided" else _answer(r["verdict"]))
        trend = (f"there is no trend of n-to-halfway along {r['axis']} to measure ({r['moved']}; a trend needs three per "
                 "pre-training seed)" if r["finding"] == NOT_RUN else
                 f"the trend of n-to-halfway along {r['axis']} is {r['trend_text']} (Spearman per pre-training seed, "
                 f"t-interval over {r['seeds']} seeds; negative = faster rebound; {r['moved']}), so {_finding_words(r['finding'])}")
        out.append(f"**{r['claim'].capitalize()}:** {answer}. {trend[0].upper() + trend[1:]}; {_control_words(r)}.")
    others = rows[~rows["headline"]]
    lines = []
    for _, r in others.iterrows():
        if r["verdict"] == NOT_RUN and r["finding"] == NOT_RUN and all(f in (NOT_RUN, "") for f in str(r["control_finding"]).split("; ")):
            lines.append(f"- {r['axis']}, {MEASURE_WORDS[r['measure']]}: **not measurable here**, for the same reason "
                         "(no pre-training seed has three curves that stage 1 moved, on the bases or on their controls)")
        else:
            lines.append(f"- {r['axis']}, {MEASURE_WORDS[r['measure']]}: trend {r['trend_text']}, {r['finding']}; control "
                         f"{r['control_trend_text']} ({r['control_finding']}) → **{r['verdict']}**")
    return "\n\n".join(out) + ("\n\nThe other measures:\n\n" + "\n".join(lines) if lines else "")


def _not_measurable(r: Any, measures: pd.DataFrame | None) -> str:
    """A headline claim with no trend to measure, said plainly: why, from the curves' lifts, and what would test it."""
    lifts = ""
    if measures is not None and len(measures):
        lift = measures[(measures["measure"] == "lift") & (measures["axis"] == r["axis"]) & (measures["base_kind"] == "pretrained")]
        if len(lift):
            x = X_COLUMN[r["axis"]]
            per = lift.groupby(["preset", x], sort=False)["value"].mean().reset_index().sort_values(x)
            name = (lambda q: f"{q['preset']} ({int(q[x]):,} parameters)") if r["axis"] == "size" else (lambda q: f"{int(q[x]):,} tokens")
            lifts = (" Stage 1 lifted the pre-trained bases' score above their own level by (mean over seeds) "
                     + ", ".join(f"{_num(q['value'])} at {name(q)}" for _, q in per.iterrows()) + ".")
    controls = "; ".join(f"{name}: {moved}" for name, moved in zip(str(r["controls"]).split("; "), str(r["controls_moved"]).split("; "))
                         if name) or "no control was run"
    if r["moved"] == "no lift measured":
        return (f"**{r['claim'].capitalize()}:** not measurable here: no curve along {r['axis']} was measured "
                "(a trend needs three curves per pre-training seed).")
    return (f"**{r['claim'].capitalize()}:** not measurable here. A trend needs, within one pre-training seed, three curves "
            f"that stage 1 (alignment) moved, and no seed has three: on the pre-trained bases {r['moved']}; {controls}."
            f"{lifts} Stage 1 barely moved some of these bases, so their curves have no rebound to time, and fewer than three points "
            "per seed give no rank trend. This is no evidence either way about the claim. What would test it: a stage 1 "
            "that lifts every base of the axis (more positive examples than N_a, or a higher learning rate), or bases "
            "that have learnt more of the world before it (larger pre-training budgets and later checkpoints, as at the `full` scale).")


def _num(v: float) -> str:
    """Two significant figures below 1 (0.035, not 0.04 beside 0.0036), two decimals above."""
    return f"{v:.2g}" if abs(v) < 1 else f"{v:.2f}"


def _control_words(r: Any) -> str:
    """"on the <control> it is <interval> (<finding>)", one clause per control, or that no control was run."""
    if not r["controls"]:
        return "no control was run"
    parts = zip(r["controls"].split("; "), r["control_trend_text"].split("; "), r["control_finding"].split("; "),
                r["controls_moved"].split("; "))
    return "; ".join(f"on the {name} there is none to compare ({moved})" if finding == NOT_RUN else
                     f"on the {name} it is {text} ({finding}; {moved})" for name, text, finding, moved in parts)


def verdict_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The verdict rows for display, in the words of :func:`verdict_text`: a claim with no trend to measure reads
    ``not measurable here`` (as in the prose, not ``not run``), and each control is named beside its trend once."""
    def word(v: str) -> str:
        return "not measurable here" if v == NOT_RUN else v

    def controls(r: Any) -> str:
        if not r["controls"]:
            return "no control was run"
        parts = list(zip(r["controls"].split("; "), r["control_trend_text"].split("; "), r["control_finding"].split("; ")))
        if all(f == NOT_RUN for _, _, f in parts):
            return "no trend on any control (no seed has three curves that stage 1 moved)"
        return "; ".join(f"{name}: " + ("no trend" if f == NOT_RUN else f"{text} ({f})") for name, text, f in parts)

    return pd.DataFrame({
        "axis": rows["axis"], "measure": rows["measure"],
        "trend on the pre-trained bases": [t if f != NOT_RUN else "no trend (no seed has three curves that stage 1 moved)"
                                           for t, f in zip(rows["trend_text"], rows["finding"])],
        "finding": [word(f) for f in rows["finding"]],
        "on the controls": [controls(r) for _, r in rows.iterrows()],
        "verdict": [word(v) for v in rows["verdict"]]})


def _finding_words(finding: str) -> str:
    return {SHOWS: "the predicted fall shows", "does not show": "the predicted fall does not show",
            "undecided": "the interval cannot tell whether it falls", NOT_RUN: "there is no trend to measure"}.get(finding, finding)


def _answer(verdict: str) -> str:
    return {"survives": "yes, and it survives its controls",
            "does not survive": "the trend shows, but its control shows it too, so it is not credited to elasticity",
            SHOWS: "shows", NOT_RUN: "not measurable here (too few curves that stage 1 moved: a trend needs three per seed)", "undecided": "undecided (the data cannot tell)",
            "does not show": "no (the trend is absent or goes the other way)"}.get(verdict, verdict)


def summarize(result: Any) -> dict[str, Any]:
    """The headline verdicts and every verdict row, JSON-able."""
    rows = result.verdicts
    return {"headline": headline(rows), "verdicts": rows.to_dict("records"), "metric": result.config.metric}


def synthetic_measures(main_trend: float, control_trend: float, *, seeds: Sequence[int] = (0, 1, 2), noise: float = 0.05,
                       seed: int = 0) -> pd.DataFrame:
    """A tidy table of the right shape with known trends (slope per step along each axis, for every measure):
    the unit tests' and the chapter's exercise's input. ``control_trend`` is the controls' slope."""
    rng = np.random.default_rng(seed)
    rows = []
    sizes, budgets = (1e4, 1e5, 1e6), (1e3, 1e4, 1e5)
    for axis in AXES:
        for kind, slope in [("pretrained", main_trend)] + [(k, control_trend) for k in CONTROLS[axis]]:
            for s in seeds:
                for i in range(3):
                    for measure in ELASTIC_DIRECTION:
                        rows.append({"axis": axis, "base_kind": kind, "preset": f"p{i}", "params": sizes[i] if axis == "size" else sizes[1],
                                     "tokens": budgets[-1] if axis == "size" else budgets[i], "seed": s, "measure": measure,
                                     "value": 10 + slope * i + noise * rng.standard_normal()})
    return pd.DataFrame(rows)
