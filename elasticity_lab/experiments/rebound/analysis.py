"""What a set of rebound curves says: per-curve fits, thresholds, trends and the attractor levels and slopes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.stats import spearmanr

from elasticity_lab.core.config import check_choice, check_positive
from elasticity_lab.experiments.rebound.config import METRICS, ReboundConfig

# --------------------------------------------------------------------------- analysis


def fit_two_stage(n: Sequence[float], y: Sequence[float], *, n_grid: int = 200) -> dict[str, float]:
    """Least-squares fit of a continuous two-segment line: slope ``early`` up to the break, ``late`` after.

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


GROUP = ["study", "task", "order", "base_kind", "step_mode", "n_align", "seed"]


def curve_fits(curves: pd.DataFrame, *, metric: str = "rule") -> pd.DataFrame:
    """One row per curve: the two-stage fit, n-to-halfway (toward the base's own level), and the stage-1 KL."""
    check_choice("metric", metric, METRICS)
    rows = []
    for key, g in curves.groupby(GROUP, sort=False):
        g = g.sort_values("n")
        fit = fit_two_stage(g["n"], g[metric])
        base_level = float(g[f"base_{metric}"].iloc[0])
        rows.append({**dict(zip(GROUP, key)), "metric": metric, **fit,
                     "start": float(g[metric].iloc[0]), "end": float(g[metric].iloc[-1]), "base_level": base_level,
                     "n_half": n_to_halfway(g["n"], g[metric], base_level),
                     "kl_stage1": float(g["kl"].iloc[0]), "kl_min": float(g["kl"].min()),
                     "align_steps": int(g["align_steps"].iloc[0])})
    return pd.DataFrame(rows)


def mean_std(df: pd.DataFrame, by: list[str], cols: Sequence[str]) -> pd.DataFrame:
    """Mean and standard deviation over seeds (ddof 1; 0 with one seed) of ``cols``, one row per group."""
    agg = df.groupby(by, sort=False)[list(cols)].agg(["mean", "std", "count"])
    agg.columns = [f"{c}_{s}" for c, s in agg.columns]
    for c in cols:
        agg[f"{c}_std"] = agg[f"{c}_std"].fillna(0.0)
    return agg.reset_index()


def kl_table(curves: pd.DataFrame, epsilon: float, *, study: str = "main") -> pd.DataFrame:
    """The Table-3 analogue per task and N_a: KL after stage 1 and the smallest n bringing it below ε (mean ± std).

    ``reached`` counts the seeds whose curve got below ε at all; ``n_to_epsilon`` averages those only.
    """
    check_positive("epsilon", epsilon)
    sub = curves[(curves["study"] == study)]
    rows = []
    for key, g in sub.groupby(GROUP, sort=False):
        rows.append({**dict(zip(GROUP, key)), "kl_stage1": float(g.sort_values("n")["kl"].iloc[0]),
                     "kl_min": float(g["kl"].min()), "n_to_epsilon": kl_threshold_n(g["n"], g["kl"], epsilon)})
    per = pd.DataFrame(rows)
    if per.empty:
        return per
    out = mean_std(per, ["task", "n_align"], ["kl_stage1", "kl_min", "n_to_epsilon"])
    out["reached"] = per.groupby(["task", "n_align"], sort=False)["n_to_epsilon"].apply(lambda s: int(s.notna().sum())).to_numpy()
    out["seeds"] = per.groupby(["task", "n_align"], sort=False)["seed"].count().to_numpy()
    out["epsilon"] = epsilon
    return out


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


def attractor_levels(curves: pd.DataFrame, *, metric: str = "rule", last: int = 2) -> pd.DataFrame:
    """Settling level of each attractor curve: the mean score over its last ``last`` grid points."""
    check_choice("metric", metric, METRICS)
    rows = []
    for key, g in curves.groupby(["base_kind", "direction", "base_rate", "seed"], sort=False):
        g = g.sort_values("n")
        rows.append({**dict(zip(["base_kind", "direction", "base_rate", "seed"], key)), "metric": metric,
                     "start": float(g[metric].iloc[0]), "settled": float(g[metric].iloc[-last:].mean()),
                     "base_model_level": float(g[f"base_{metric}"].iloc[0])})
    return pd.DataFrame(rows)


def _clean(x: float) -> float:
    """Round away float noise (|x| < 1e-10, and -0.0): a slope that is 0 by construction must print as 0 in every run."""
    return float(round(x, 10)) + 0.0 if np.isfinite(x) else x


def attractor_slopes(levels: pd.DataFrame) -> pd.DataFrame:
    """Slope of the settling level on the world's base rate, per base kind and direction (1 = perfect attraction, 0 = none).

    The slope is fitted per seed (over the worlds), then averaged: mean ± std over seeds. A random-init
    base is the same model for every world (the worlds differ only in pre-training text), so its
    slope is 0 by construction; it is reported for its level.
    """
    rows = []
    for (kind, direction), g in levels.groupby(["base_kind", "direction"], sort=False):
        per_seed = []
        for _, s in g.groupby("seed"):
            if s["base_rate"].nunique() >= 2:
                per_seed.append(float(np.polyfit(s["base_rate"], s["settled"], 1)[0]))
        pooled = float(np.polyfit(g["base_rate"], g["settled"], 1)[0]) if g["base_rate"].nunique() >= 2 else float("nan")
        rows.append({"base_kind": kind, "direction": direction, "slope_mean": _clean(float(np.mean(per_seed))) if per_seed else float("nan"),
                     "slope_std": _clean(float(np.std(per_seed, ddof=1))) if len(per_seed) > 1 else 0.0, "slope_pooled": _clean(pooled),
                     "settled_mean": float(g["settled"].mean()), "seeds": len(per_seed)})
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
