"""The real-models verdicts: does the rebound grow with pre-training volume and with size, against its controls?

The measure of one curve is its **early drop**: the score right after stage 1 (``n = 0``) minus the score after the
first stage-2 batch (the grid's first ``n > 0``), the speed of the spring-back the paper describes. The claims and
their verdicts, all through :mod:`elasticity_lab.experiments.stats` (seeds as clusters, "shows" only where the
interval excludes the null on the claimed side):

- ``volume``: the drop rises with pre-training steps (Spearman per seed over the checkpoints, t over seeds);
  against the lightly pre-trained control, the last checkpoint's drop minus the earliest one's (Welch over seeds);
  against random init, the last checkpoint's drop minus its re-initialised copy's.
- ``size``: the drop rises with the parameter count (Spearman per seed).
- resistance: chapter 6's :func:`elasticity_lab.experiments.resistance.verdict_rows`, unchanged.

Two ways these rules can look surer than they are, both caught here and said in words:

- **Saturated scores.** A score pinned at its bound (the aligned answer's share at 1.000000 before and after the
  first batch) has no measurable drop: what is left is floating-point residue (1e-16 against 1e-12), and a rank
  correlation over residue is +1 or -1 by accident. A claim whose curves include one that is saturated
  (:data:`RESOLUTION`) is ``undecided (saturated: ...)``, whatever its interval says.
- **Few points, seeds that agree exactly.** With k bases per seed Spearman takes only a handful of values (k = 3:
  ±1 and ±0.5); when every seed gives the same value the t-interval has no width. That says the fine-tuning seeds
  agree on the order of *these* bases (the seeds re-run the fine-tune, never the pre-training), not that the
  order is certain, so the row's ``note`` says so and the prose repeats it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from elasticity_lab.experiments.stats import ABSENT, NOT_RUN, SHOWS, Interval, decide, difference_interval, trend_interval

DROP_COLUMNS: tuple[str, ...] = ("axis", "base", "base_kind", "x", "task", "n_align", "seed", "metric", "start", "after", "drop",
                                  "saturated")
RESOLUTION = 1e-6
"""A score within this of its bound (0 or 1) both before and after the first batch is saturated: its drop is not measured."""
UNDECIDED_SATURATED = "undecided (saturated)"


def early_drop(n: Sequence[float], y: Sequence[float]) -> float:
    """Score at ``n = 0`` minus the score at the smallest ``n > 0`` (rows in any order); NaN without both."""
    pts = sorted((float(a), float(b)) for a, b in zip(n, y))
    start = [b for a, b in pts if a == 0]
    later = [b for a, b in pts if a > 0]
    return start[0] - later[0] if start and later else math.nan


def drops(curves: pd.DataFrame, metrics: Sequence[str] = ("likelihood", "rule")) -> pd.DataFrame:
    """One row per curve and metric: the score after stage 1 (``start``), after the first batch (``after``), the drop."""
    rows = []
    if curves.empty:
        return pd.DataFrame(columns=list(DROP_COLUMNS))
    for key, c in curves.groupby(["axis", "base", "base_kind", "x", "task", "n_align", "seed"], sort=False):
        c = c.sort_values("n")
        for m in metrics:
            d = early_drop(c["n"], c[m])
            start = float(c[m].iloc[0])
            after = start - d if math.isfinite(d) else math.nan
            rows.append(dict(zip(("axis", "base", "base_kind", "x", "task", "n_align", "seed"), key), metric=m, start=start,
                             after=after, drop=d, saturated=_saturated(start, after)))
    return pd.DataFrame(rows, columns=list(DROP_COLUMNS))


def _saturated(start: float, after: float) -> bool:
    """Both scores within :data:`RESOLUTION` of the same bound (0 or 1): the curve cannot show a drop."""
    return bool(math.isfinite(after) and any(abs(start - b) < RESOLUTION and abs(after - b) < RESOLUTION for b in (0.0, 1.0)))


def _saturation(*parts: pd.DataFrame) -> tuple[int, int]:
    """(saturated curves, curves) among the rows a claim uses."""
    rows = pd.concat(parts) if parts else pd.DataFrame()
    sat = rows["saturated"].astype(bool) if "saturated" in rows else pd.Series(False, index=rows.index)
    return int(sat.sum()), len(rows)


def _trend_note(part: pd.DataFrame, interval: Interval) -> str:
    """Words for a rank trend that looks surer than it is: few bases per seed, or seeds that agree exactly."""
    if not len(part) or not interval.finite:
        return ""
    k = int(part.groupby("seed")["x"].nunique().min())
    notes = []
    if k < 4:
        notes.append(f"only {k} bases per seed, so each seed's Spearman can take only a few values")
    if interval.low == interval.high:
        notes.append(f"every seed gave {interval.estimate:+.3f}, so the interval has no width: the fine-tuning seeds agree on "
                     f"the order of these {k} bases, which says nothing about other models")
    return "; ".join(notes)


def _row(claim: str, interval: Interval, verdict: str, test: str, *, saturated: tuple[int, int] = (0, 0),
         note: str = "") -> dict[str, object]:
    k, n = saturated
    if k:  # no measurable drop in some curves: the interval is over floating-point residue there
        verdict = UNDECIDED_SATURATED
        note = (f"{k} of {n} curves score within {RESOLUTION:g} of their bound before and after the first batch, "
                "so their drops are rounding residue, not spring-back")
    return {"claim": claim, "estimate [95% interval]": interval.text(3), "test": test, "verdict": verdict, "note": note,
            "estimate": interval.estimate, "low": interval.low, "high": interval.high}


def verdict_rows(d: pd.DataFrame, *, metric: str = "likelihood") -> pd.DataFrame:
    """The claims of the volume and size studies with their intervals and verdicts (words, never NaN)."""
    d = d[d["metric"] == metric]
    out = []
    vol = d[(d["axis"] == "volume") & (d["base_kind"] == "pretrained")]
    trend = trend_interval(np.log(vol["x"].astype(float)), vol["drop"], vol["seed"]) if len(vol) else Interval(math.nan, math.nan, math.nan)
    finding = decide(trend, direction="greater")
    control = NOT_RUN
    if len(vol):
        first, last = vol["x"].min(), vol["x"].max()
        a, b = vol[vol["x"] == last], vol[vol["x"] == first]
        light = difference_interval(a["drop"], b["drop"], a["seed"], b["seed"])
        out.append(_row("the last checkpoint springs back faster than the earliest (light control)", light,
                        decide(light, direction="greater"), "last − earliest drop, Welch t over seed means",
                        saturated=_saturation(a, b)))
        rnd = d[(d["axis"] == "volume") & (d["base_kind"] == "random")]
        rand = difference_interval(a["drop"], rnd["drop"], a["seed"], rnd["seed"]) if len(rnd) else Interval(math.nan, math.nan, math.nan)
        out.append(_row("the last checkpoint springs back faster than its re-initialised copy (random init)", rand,
                        decide(rand, direction="greater"), "last − random drop, Welch t over seed means",
                        saturated=_saturation(a, rnd)))
        control = out[-1]["verdict"] if len(rnd) else NOT_RUN
    verdict = finding
    if finding == SHOWS:  # the trend counts only where pre-training beats random init (chapter 6's "survives its control")
        verdict = {SHOWS: "survives", ABSENT: "does not survive", NOT_RUN: "undecided (no random-init control)"}.get(
            control, "undecided (control undecided)")
    out.insert(0, _row("the drop rises with pre-training volume", trend, verdict, "Spearman(log steps, drop) per seed, t over seeds",
                       saturated=_saturation(vol), note=_trend_note(vol, trend)))
    size = d[(d["axis"] == "size") & (d["base_kind"] == "pretrained")]
    st = trend_interval(np.log(size["x"].astype(float)), size["drop"], size["seed"]) if len(size) else Interval(math.nan, math.nan, math.nan)
    out.append(_row("the drop rises with model size", st, decide(st, direction="greater"), "Spearman(log parameters, drop) per seed, t over seeds",
                    saturated=_saturation(size), note=_trend_note(size, st)))
    return pd.DataFrame(out)


def verdict_prose(rows: pd.DataFrame, *, stand_ins: bool) -> str:
    """The verdicts in sentences (Markdown), generated from :func:`verdict_rows`, saying where the numbers come from."""
    who = ("On the **stand-ins** (tiny local models, not real ones: these sentences test the prose, not the paper)"
           if stand_ins else "On the real models")
    lines = [f"{who}, {int((rows['verdict'].isin([SHOWS, 'survives'])).sum())} of {len(rows)} claims show."]
    for _, r in rows.iterrows():
        est = r["estimate [95% interval]"]
        word = r["verdict"] if r["verdict"] != NOT_RUN else "was not run"
        note = str(r.get("note", "") or "")
        lines.append(f"- *{r['claim']}*: {est} ({r['test']}): **{word}**" + (f"; {note}." if note else "."))
    return "\n".join(lines)


def saturation_sentence(curves: pd.DataFrame, metric: str = "likelihood") -> str:
    """One sentence on the bases whose ``metric`` already sits at its bound before any fine-tuning (``base_<metric>``),
    generated from the curves; empty where none does."""
    col = f"base_{metric}"
    if curves.empty or col not in curves:
        return ""
    base = curves.groupby("base", sort=False)[col].mean()
    flat = [b for b, v in base.items() if min(abs(v), abs(1.0 - v)) < RESOLUTION]
    if not flat:
        return ""
    return (f"Before any fine-tuning, the {metric} score of {len(flat)} of {len(base)} bases already sits at its bound "
            f"({', '.join(flat)}): their curves have no room to move, so their drops are not measured.")
