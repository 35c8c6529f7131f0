"""What a set of rebound curves says: per-curve plateau fits, thresholds, trends and the attractor levels and slopes.

Every interval comes from :mod:`elasticity_lab.experiments.stats`, with pre-training seeds as the clusters.
The two-segment fit (:func:`fit_two_stage`) is kept as a description of a curve's shape; it decides
nothing, because its early/late ratio is large for *any* decay (to 0 as much as to the base).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.stats import spearmanr

from elasticity_lab.core.config import check_choice, check_positive
from elasticity_lab.experiments.rebound.config import METRICS, ReboundConfig
from elasticity_lab.experiments.stats import NOT_RUN, Interval, difference_interval, fit_plateau, mean_interval

# --------------------------------------------------------------------------- analysis


def interval_words(iv: Interval, digits: int = 2, *, few: str | None = None) -> str:
    """An interval as the chapter prints it, never a verdict word inside another: ``+0.12 [+0.03, +0.20]``; a single
    seed's estimate with ``(one seed: no interval)``; ``few`` (default ``no estimate``) where values were measured but
    gave no estimate (a trend needs three per seed; a fraction recovered divides by a displacement of 0); ``not run``
    where nothing was measured.

    :meth:`stats.Interval.text` says ``undecided (n = 1)`` in the one-seed and no-estimate cases, which nested inside a verdict read
    "not run (undecided (n = 1))" and hid the one number there was."""
    if iv.finite:
        return iv.text(digits)
    if iv.n == 0:
        return NOT_RUN
    if math.isfinite(iv.estimate):
        return f"{iv.estimate:+.{digits}f} (one seed: no interval)"
    return few or "no estimate"



def fit_two_stage(n: Sequence[float], y: Sequence[float], *, n_grid: int = 200) -> dict[str, float]:
    """Least-squares fit of a continuous two-segment line: slope ``early`` up to the break, ``late`` after.

    A description only: an exponential decay to 0 and one to a base of 0.2 give the same ratio (54 on the
    chapter's grid), so a ratio threshold passes by itself; the verdicts use :func:`plateau_of` instead.

    y = a + early·min(n, b) + late·max(n − b, 0). The break b is searched on a fine grid strictly
    inside the data range (at least two points on each side), the three coefficients solved exactly
    for each b. Returns ``intercept, early_slope, late_slope, break_n, sse, ratio`` (|early|/|late|,
    ``inf`` when the late slope is exactly 0); NaN everywhere with fewer than four points.
    """
    n = np.asarray(n, dtype=float)
    y = np.asarray(y, dtype=float)
    order = np.argsort(n)
    n, y = n[order], y[order]
    nan = {k: float("nan") for k in ("intercept", "early_slope", "late_slope", "break_n", "sse", "ratio")}
    if len(n) < 4 or not np.all(np.isfinite(y)):
        return nan
    lo, hi = n[1], n[-2]
    candidates = np.unique(np.concatenate([np.linspace(lo, hi, n_grid), n[1:-1]]))

    def solve(b: float) -> tuple[float, np.ndarray]:
        X = np.column_stack([np.ones_like(n), np.minimum(n, b), np.maximum(n - b, 0.0)])
        coef, *_ = np.linalg.lstsq(X, y, rcond=None)
        return float(((X @ coef - y) ** 2).sum()), coef

    sses = [solve(b)[0] for b in candidates]
    i = int(np.argmin(sses))
    b = float(candidates[i])
    # refine between the neighbouring grid points (the SSE is smooth in b between data points)
    lo_b, hi_b = float(candidates[max(i - 1, 0)]), float(candidates[min(i + 1, len(candidates) - 1)])
    if hi_b > lo_b:
        r = minimize_scalar(lambda v: solve(v)[0], bounds=(lo_b, hi_b), method="bounded", options={"xatol": 1e-9 * max(1.0, hi_b)})
        if r.fun <= sses[i]:
            b = float(r.x)
    sse, coef = solve(b)
    coef = np.round(coef, 12) + 0.0  # float noise below 1e-12 (and -0.0) must not flip printed signs between runs
    early, late = float(coef[1]), float(coef[2])
    ratio = abs(early) / abs(late) if abs(late) > 1e-12 else float("inf")  # a flat late stage: unbounded
    return {"intercept": float(coef[0]), "early_slope": early, "late_slope": late, "break_n": float(b), "sse": sse, "ratio": ratio}


def n_to_halfway(n: Sequence[float], y: Sequence[float], base_level: float) -> float:
    """The number of examples at which the curve first gets halfway from its start to ``base_level``.

    Linear interpolation between grid points; NaN if it never gets there (or starts at the base).
    """
    n = np.asarray(n, dtype=float)
    y = np.asarray(y, dtype=float)
    start = y[0]
    target = (start + base_level) / 2
    sign = np.sign(start - target)
    if sign == 0:
        return float("nan")
    for i in range(1, len(n)):
        if sign * (y[i] - target) <= 0:
            y0, y1 = y[i - 1], y[i]
            return float(n[i - 1] + (n[i] - n[i - 1]) * (y0 - target) / (y0 - y1)) if y0 != y1 else float(n[i])
    return float("nan")


def kl_threshold_n(n: Sequence[float], kl: Sequence[float], epsilon: float) -> float:
    """The smallest ``n`` of a curve whose KL to the base is below ``epsilon`` (NaN if none is)."""
    check_positive("epsilon", epsilon)
    for ni, k in sorted(zip(n, kl)):
        if k < epsilon:
            return float(ni)
    return float("nan")


GROUP = ["study", "task", "order", "base_kind", "step_mode", "n_align", "pretrain_seed", "seed"]
ATTRACTOR_GROUP = ["perturbation", "base_kind", "direction", "base_rate", "pretrain_seed", "seed"]


def plateau_of(n: Sequence[float], y: Sequence[float], *, low: float = 0.0, high: float = 1.0) -> dict[str, float]:
    """Where one curve settles: :func:`elasticity_lab.experiments.stats.fit_plateau`'s plateau (clipped to the
    score's range [``low``, ``high``]: a curve still falling at its last point has its plateau beyond the
    data, not outside the possible scores), the fitted start and the time constant τ."""
    try:
        fit = fit_plateau(n, y)
    except ValueError:
        return {"plateau": float("nan"), "y0": float("nan"), "tau": float("nan")}
    return {"plateau": float(np.clip(fit.plateau, low, high)), "y0": fit.y0, "tau": fit.tau}


def recovered(start: float, settled: float, base_level: float) -> float:
    """(start − settled)/(start − base): 1 = settled at the base, 0 = never moved, > 1 = overshot past it."""
    gap = start - base_level
    return float((start - settled) / gap) if abs(gap) > 1e-9 else float("nan")


def curve_fits(curves: pd.DataFrame, *, metric: str = "rule", epsilon: float | None = None,
               epsilon_fraction: float = 0.05) -> pd.DataFrame:
    """One row per curve: the plateau fit and the fraction recovered toward the base's own level, n-to-halfway,
    the stage-1 KL and the n that brings the KL below this curve's ε (``epsilon``, or ``epsilon_fraction`` of
    the curve's own stage-1 KL)."""
    check_choice("metric", metric, METRICS)
    rows = []
    group = [c for c in GROUP if c in curves.columns]
    for key, g in curves.groupby(group, sort=False):
        g = g.sort_values("n")
        base_level = float(g[f"base_{metric}"].iloc[0])
        start = float(g[metric].iloc[0])
        plat = plateau_of(g["n"], g[metric])
        kl1 = float(g["kl"].iloc[0])
        eps = float(epsilon) if epsilon is not None else epsilon_fraction * kl1
        rows.append({**dict(zip(group, key)), "metric": metric, **plat,
                     "start": start, "end": float(g[metric].iloc[-1]), "base_level": base_level,
                     "displacement": start - base_level, "recovered": recovered(start, plat["plateau"], base_level),
                     "gap": plat["plateau"] - base_level, "n_half": n_to_halfway(g["n"], g[metric], base_level),
                     "kl_stage1": kl1, "kl_min": float(g["kl"].min()), "epsilon": eps,
                     "n_to_epsilon": kl_threshold_n(g["n"], g["kl"], eps) if eps > 0 else float("nan"),
                     "align_steps": int(g["align_steps"].iloc[0])})
    return pd.DataFrame(rows)


def mean_std(df: pd.DataFrame, by: list[str], cols: Sequence[str]) -> pd.DataFrame:
    """Mean and standard deviation over seeds (ddof 1; 0 with one seed) of ``cols``, one row per group."""
    agg = df.groupby(by, sort=False)[list(cols)].agg(["mean", "std", "count"])
    agg.columns = [f"{c}_{s}" for c, s in agg.columns]
    for c in cols:
        agg[f"{c}_std"] = agg[f"{c}_std"].fillna(0.0)
    return agg.reset_index()


def cluster_of(df: pd.DataFrame) -> list[Any]:
    """The independent unit of each row: its pre-training seed where there are several, else its fine-tuning seed."""
    if "pretrain_seed" in df.columns and df["pretrain_seed"].nunique() > 1:
        return df["pretrain_seed"].tolist()
    return df["seed"].tolist() if "seed" in df.columns else [0] * len(df)


def kl_table(fits: pd.DataFrame, *, study: str = "main") -> pd.DataFrame:
    """The Table-3 analogue per task and N_a: KL after stage 1 and the smallest n bringing it below each curve's ε,
    each with its interval over pre-training seeds (:func:`stats.mean_interval`).

    ``reached`` counts the curves that got below ε at all; ``n_to_epsilon`` averages those only.
    """
    sub = fits[(fits["study"] == study)]
    if "metric" in sub.columns and len(sub):
        sub = sub[sub["metric"] == sub["metric"].iloc[0]]  # the KL columns do not depend on the score
    rows = []
    for (task, na), g in sub.groupby(["task", "n_align"], sort=False):
        cl = cluster_of(g)
        row: dict[str, Any] = {"task": task, "n_align": int(na)}
        for col in ("kl_stage1", "kl_min", "n_to_epsilon", "epsilon"):
            iv = mean_interval(g[col], cl)
            row[f"{col}_mean"], row[f"{col}_low"], row[f"{col}_high"] = iv.estimate, iv.low, iv.high
            row[f"{col}_text"] = interval_words(iv, 3 if col != "n_to_epsilon" else 0)
        row["reached"], row["seeds"] = int(g["n_to_epsilon"].notna().sum()), int(len(g))
        rows.append(row)
    return pd.DataFrame(rows)


def trend(x: Sequence[float], y: Sequence[float]) -> dict[str, float]:
    """Least-squares slope of ``y`` on log10 ``x`` and the Spearman rank correlation (NaN-safe)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or len(np.unique(x[ok])) < 2:
        return {"slope_per_decade": float("nan"), "spearman": float("nan"), "points": int(ok.sum())}
    slope = float(np.polyfit(np.log10(x[ok]), y[ok], 1)[0])
    rho = float(spearmanr(x[ok], y[ok]).statistic) if len(np.unique(y[ok])) > 1 else float("nan")
    return {"slope_per_decade": slope, "spearman": rho, "points": int(ok.sum())}


def attractor_levels(curves: pd.DataFrame, *, metric: str = "rule") -> pd.DataFrame:
    """Settling level of each attractor curve: its plateau (:func:`plateau_of`), with its start, the base's own
    level and the fraction of the way back to the base it recovered."""
    check_choice("metric", metric, METRICS)
    rows = []
    c = curves.copy()
    for col, default in (("perturbation", "directional"), ("pretrain_seed", 0)):
        if col not in c.columns:
            c[col] = default
    for key, g in c.groupby(ATTRACTOR_GROUP, sort=False):
        g = g.sort_values("n")
        start, base = float(g[metric].iloc[0]), float(g[f"base_{metric}"].iloc[0])
        settled = plateau_of(g["n"], g[metric])["plateau"]
        rows.append({**dict(zip(ATTRACTOR_GROUP, key)), "metric": metric, "start": start, "settled": settled,
                     "base_model_level": base, "recovered": recovered(start, settled, base),
                     "kl_stage1": float(g["kl"].iloc[0])})
    return pd.DataFrame(rows)


def _clean(x: float) -> float:
    """Round away float noise (|x| < 1e-10, and -0.0): a slope that is 0 by construction must print as 0 in every run."""
    return float(round(x, 10)) + 0.0 if np.isfinite(x) else x


def _slopes_per_seed(g: pd.DataFrame) -> tuple[list[float], list[Any]]:
    """The slope of settling level on base rate within each (pre-training seed, fine-tuning seed), over the worlds."""
    slopes, labels = [], []
    for (ps, _), s in g.groupby(["pretrain_seed", "seed"], sort=True):
        if s["base_rate"].nunique() >= 2:
            slopes.append(_clean(float(np.polyfit(s["base_rate"], s["settled"], 1)[0])))
            labels.append(ps)
    return slopes, labels


def attractor_slopes(levels: pd.DataFrame) -> pd.DataFrame:
    """Slope of the settling level on the world's base rate per perturbation, base kind and arm (1 = perfect
    attraction, 0 = none), with its interval over pre-training seeds, and the statistic of the test: the
    pre-trained slope minus the lightly pre-trained slope, with its (Welch) interval.

    The slope is fitted per seed (over the worlds): each pre-training seed is one estimate.
    """
    rows = []
    lv = levels.copy()
    if "perturbation" not in lv.columns:
        lv["perturbation"] = "directional"
    if "pretrain_seed" not in lv.columns:
        lv["pretrain_seed"] = lv["seed"]
    per: dict[tuple, tuple[list[float], list[Any]]] = {}
    for (pert, kind, direction), g in lv.groupby(["perturbation", "base_kind", "direction"], sort=False):
        per[(pert, kind, direction)] = _slopes_per_seed(g)
    for (pert, kind, direction), (slopes, labels) in per.items():
        g = lv[(lv["perturbation"] == pert) & (lv["base_kind"] == kind) & (lv["direction"] == direction)]
        iv = mean_interval(slopes, labels) if slopes else Interval(float("nan"), float("nan"), float("nan"), n=0)
        # fraction recovered per seed as a ratio of means over the worlds (a per-curve ratio divides by small displacements)
        per_seed = g.groupby(["pretrain_seed", "seed"]).apply(
            lambda h: recovered(float(h["start"].mean()), float(h["settled"].mean()), float(h["base_model_level"].mean())),
            include_groups=False)
        rec = mean_interval(per_seed.to_numpy(), [k[0] for k in per_seed.index])
        row = {"perturbation": pert, "base_kind": kind, "direction": direction, "slope_mean": _clean(iv.estimate),
               "slope_low": iv.low, "slope_high": iv.high, "slope_std": _clean(float(np.std(slopes, ddof=1))) if len(slopes) > 1 else 0.0,
               "slope_text": interval_words(iv, 2), "settled_mean": float(g["settled"].mean()), "start_mean": float(g["start"].mean()),
               "displacement_mean": float((g["start"] - g["base_model_level"]).mean()),
               "abs_displacement": float((g["start"] - g["base_model_level"]).abs().mean()), "recovered_mean": rec.estimate,
               "recovered_low": rec.low, "recovered_high": rec.high, "recovered_text": interval_words(rec, 2), "seeds": len(slopes)}
        light = per.get((pert, "light", direction))
        lg = lv[(lv["perturbation"] == pert) & (lv["base_kind"] == "light") & (lv["direction"] == direction)]
        light_moved = float((lg["start"] - lg["base_model_level"]).abs().mean()) if len(lg) else float("nan")
        row["light_displacement"] = light_moved
        if kind == "pretrained" and light is not None and slopes and light[0]:
            d = difference_interval(slopes, light[0], labels, light[1])
            row.update({"difference": d.estimate, "difference_low": d.low, "difference_high": d.high, "difference_text": interval_words(d, 2)})
        else:
            row.update({"difference": float("nan"), "difference_low": float("nan"), "difference_high": float("nan"),
                        "difference_text": NOT_RUN if kind == "pretrained" else ""})
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass
class ReboundResult:
    """All tables of one study: raw curves, per-curve fits, the KL table, attractor levels and slopes, and a summary."""

    config: ReboundConfig
    curves: pd.DataFrame
    fits: pd.DataFrame
    kl: pd.DataFrame
    attractor: pd.DataFrame
    attractor_levels: pd.DataFrame
    attractor_slopes: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
