"""What the scale study's curves say: per-curve measures as a tidy table, and their mean ± spread per point."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from elasticity_lab.core.config import check_choice
from elasticity_lab.experiments.rebound.analysis import n_to_halfway
from elasticity_lab.experiments.rebound.config import METRICS
from elasticity_lab.experiments.scale.config import MEASURES, ScaleConfig
from elasticity_lab.experiments.stats import fit_plateau

POINT = ["axis", "base_kind", "preset", "params", "tokens", "seed"]
"""The columns that name one curve (one point of an axis, one pre-training seed)."""


def curve_measures(curves: pd.DataFrame, *, metric: str = "likelihood") -> pd.DataFrame:
    """Tidy: one row per curve × measure (``value``; NaN where a curve never got halfway), with the point's columns.

    ``lift`` (stage-1 score minus the base's own) rides along on every row: a curve whose base stage 1 did not
    move has no rebound to measure.
    """
    check_choice("metric", metric, METRICS)
    rows: list[dict[str, Any]] = []
    for key, g in curves.groupby(POINT, sort=False):
        g = g.sort_values("n")
        n, y = g["n"].to_numpy(float), g[metric].to_numpy(float)
        base_level = float(g[f"base_{metric}"].iloc[0])
        fit = fit_plateau(n, y)
        settled = min(max(fit.plateau, 0.0), 1.0)  # both scores are shares: a fitted level outside [0, 1] is unreachable
        values = {"lift": float(y[0] - base_level), "n_half": n_to_halfway(n, y, base_level), "settled": settled,
                  "settle_gap": abs(settled - base_level), "kl_stage1": float(g["kl"].iloc[0])}
        point = dict(zip(POINT, key))
        for m in MEASURES:
            rows.append({**point, "metric": metric, "measure": m, "value": float(values[m]), "base_level": base_level,
                         "lift": float(y[0] - base_level)})
    return pd.DataFrame(rows)


def sweep_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """Mean ± spread (sample standard deviation over seeds) of each measure at each point; ``seeds`` counts the finite values."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        g = tidy.groupby(["axis", "base_kind", "preset", "params", "tokens", "measure"], sort=False)["value"]
        out = g.agg(mean="mean", spread="std", seeds="count").reset_index()
    out["spread"] = out["spread"].fillna(0.0)
    out["runs"] = g.size().to_numpy()
    return out


def wide_table(sweep: pd.DataFrame, *, digits: int = 3) -> pd.DataFrame:
    """The sweep as the chapter prints it: one row per point, one ``mean ± spread`` column per measure
    (``n/a (k of m)`` where only k of m seeds gave a finite value)."""
    def cell(r: pd.Series) -> str:
        if r["seeds"] == 0:
            return f"n/a (0 of {r['runs']})"
        text = f"{r['mean']:.{digits}g} ± {r['spread']:.2g}"
        return text if r["seeds"] == r["runs"] else f"{text} ({r['seeds']} of {r['runs']})"

    s = sweep.assign(cell=sweep.apply(cell, axis=1))
    wide = s.pivot_table(index=["axis", "base_kind", "preset", "params", "tokens"], columns="measure", values="cell",
                         aggfunc="first", sort=False)
    wide = wide[[m for m in MEASURES if m in wide.columns]]
    wide.columns.name = None
    return wide.reset_index()


def learnt_table(pre: pd.DataFrame, volume_tokens: Any) -> pd.DataFrame:
    """Held-out bits per token of the bases the study's axes actually use (mean and spread over seeds): the size
    axis's final checkpoints, and the volume axis's checkpoints at ``volume_tokens`` (not its run's last one)."""
    used = pre[((pre["axis"] == "size") & (pre["tokens"] == pre["run_tokens"]))
               | ((pre["axis"] == "volume") & pre["tokens"].isin([int(t) for t in volume_tokens]))]
    out = used.groupby(["axis", "preset", "params", "tokens"], sort=False)["heldout_bits_per_token"].agg(
        mean="mean", spread="std").reset_index()
    out["spread"] = out["spread"].fillna(0.0)
    out["above_floor"] = out["mean"] - float(pre["source_bits_per_token"].iloc[0]) if len(pre) else math.nan
    return out


def learnt_text(learnt: pd.DataFrame, floor: float) -> str:
    """What each base of the axes has left to learn (held-out bits per token above the world's exact entropy rate)."""
    if learnt.empty:
        return "No pre-training run was measured."
    def part(axis: str) -> str:
        sub = learnt[learnt["axis"] == axis]
        if axis == "size":
            return (f"size axis (each at {int(sub['tokens'].iloc[0]):,} tokens): "
                    + ", ".join(f"{r['preset']} {r['above_floor']:+.2f}" for _, r in sub.iterrows()))
        return "volume axis: " + ", ".join(f"{int(r['tokens']):,} tokens {r['above_floor']:+.2f}" for _, r in sub.iterrows())
    parts = [part(a) for a in ("size", "volume") if (learnt["axis"] == a).any()]
    return (f"Left to learn, in held-out bits per token above the world's exact {floor:.3f} (mean over seeds): "
            + "; ".join(parts) + ".")


@dataclass
class ScaleResult:
    """One scale study: the raw curves, the tidy measures, their sweep table, the verdict rows and a summary."""

    config: ScaleConfig
    curves: pd.DataFrame
    measures: pd.DataFrame
    sweep: pd.DataFrame
    verdicts: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        """Compute time of every curve (pre-training of a base counted in its first curve), as cached with them."""
        per_curve = self.curves.groupby(POINT, sort=False)["seconds"].first() if "seconds" in self.curves else pd.Series(dtype=float)
        return float(per_curve.sum()) if len(per_curve) else math.nan


def finite(values: Any) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    return v[np.isfinite(v)]
