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
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from elasticity_lab.experiments.stats import ABSENT, NOT_RUN, SHOWS, Interval, decide, difference_interval, trend_interval

DROP_COLUMNS: tuple[str, ...] = ("axis", "base", "base_kind", "x", "task", "n_align", "seed", "metric", "start", "after", "drop")


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
            rows.append(dict(zip(("axis", "base", "base_kind", "x", "task", "n_align", "seed"), key), metric=m, start=start,
                             after=start - d if math.isfinite(d) else math.nan, drop=d))
    return pd.DataFrame(rows, columns=list(DROP_COLUMNS))


def _row(claim: str, interval: Interval, verdict: str, test: str) -> dict[str, object]:
    return {"claim": claim, "estimate [95% interval]": interval.text(3), "test": test, "verdict": verdict,
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
                        decide(light, direction="greater"), "last − earliest drop, Welch t over seed means"))
        rnd = d[(d["axis"] == "volume") & (d["base_kind"] == "random")]
        rand = difference_interval(a["drop"], rnd["drop"], a["seed"], rnd["seed"]) if len(rnd) else Interval(math.nan, math.nan, math.nan)
        out.append(_row("the last checkpoint springs back faster than its re-initialised copy (random init)", rand,
                        decide(rand, direction="greater"), "last − random drop, Welch t over seed means"))
        control = decide(rand, direction="greater") if len(rnd) else NOT_RUN
    verdict = finding
    if finding == SHOWS:  # the trend counts only where pre-training beats random init (chapter 6's "survives its control")
        verdict = {SHOWS: "survives", ABSENT: "does not survive", NOT_RUN: "undecided (no random-init control)"}.get(
            control, "undecided (control undecided)")
    out.insert(0, _row("the drop rises with pre-training volume", trend, verdict, "Spearman(log steps, drop) per seed, t over seeds"))
    size = d[(d["axis"] == "size") & (d["base_kind"] == "pretrained")]
    st = trend_interval(np.log(size["x"].astype(float)), size["drop"], size["seed"]) if len(size) else Interval(math.nan, math.nan, math.nan)
    out.append(_row("the drop rises with model size", st, decide(st, direction="greater"), "Spearman(log parameters, drop) per seed, t over seeds"))
    return pd.DataFrame(out)


def verdict_prose(rows: pd.DataFrame, *, stand_ins: bool) -> str:
    """The verdicts in sentences (Markdown), generated from :func:`verdict_rows`, saying where the numbers come from."""
    who = ("On the **stand-ins** (tiny local models, not real ones: these sentences test the prose, not the paper)"
           if stand_ins else "On the real models")
    lines = [f"{who}, {int((rows['verdict'].isin([SHOWS, 'survives'])).sum())} of {len(rows)} claims show."]
    for _, r in rows.iterrows():
        est = r["estimate [95% interval]"]
        word = r["verdict"] if r["verdict"] != NOT_RUN else "was not run"
        lines.append(f"- *{r['claim']}*: {est} ({r['test']}): **{word}**.")
    return "\n".join(lines)
