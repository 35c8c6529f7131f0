"""What the mitigation curves say: per-curve rebound measures, paired differences from ``none``, and the theorem's prediction.

Measures per curve (rule score, on held-out harmful requests):

- ``auc``: the area under the curve over the perturbation, divided by its length (the mean aligned share
  while the perturbation runs; trapezoids over the grid): the study's measure of *protection*;
- ``end``: the level after the full perturbation;
- ``n_half``: the compliant examples after which the curve is first halfway from its start to its base's own
  level (:func:`elasticity_lab.experiments.rebound.n_to_halfway`; not reached within the grid: ``> n_max``);
- ``kept``: ``auc / start``, the share of its own starting level a curve keeps on average over the perturbation
  (left out where the start is at most :data:`MIN_START`): protection judged relative to where each condition
  started, so that a mitigation cannot look protective only because stage 1 left it higher.

Every difference is paired by seed (a mitigation and ``none`` with the same seed share their data streams),
so each seed gives one difference and the interval is a t-interval over the seeds
(:func:`elasticity_lab.experiments.stats.mean_interval`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from elasticity_lab.experiments.mitigation.config import BASELINE, CATALOGUE, MitigationConfig
from elasticity_lab.experiments.rebound import n_to_halfway
from elasticity_lab.experiments.stats import Interval, mean_interval
from elasticity_lab.info.theory import LeafModel, mixture

MEASURES: tuple[str, ...] = ("auc", "end", "start", "n_half", "bits_end", "other_end", "kept")
MIN_START = 0.05
"""Below this starting level the relative measure ``kept`` (area ÷ start) is a ratio of noise and is left out."""


def kept_share(auc: float, start: float) -> float:
    """``auc / start``, or NaN where the start is at most :data:`MIN_START` (no level to keep)."""
    return float(auc / start) if start > MIN_START else math.nan


def area_under_curve(n: Sequence[float], y: Sequence[float]) -> float:
    """Trapezoidal area under y(n) divided by the span of n: the mean level over the perturbation."""
    n, y = np.asarray(n, dtype=float), np.asarray(y, dtype=float)
    order = np.argsort(n)
    n, y = n[order], y[order]
    span = float(n[-1] - n[0])
    if len(n) < 2 or span <= 0:
        raise ValueError("n must hold at least two different sizes for an area under the curve.")
    return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(n)) / span)


def curve_measures(curves: pd.DataFrame, *, metric: str = "rule") -> pd.DataFrame:
    """One row per (mitigation, seed): protection measures and costs."""
    rows = []
    for (name, seed), g in curves.groupby(["mitigation", "seed"], sort=False):
        g = g.sort_values("n")
        base_level = float(g[f"base_{metric}"].iloc[0])
        rows.append({"mitigation": name, "family": g["family"].iloc[0], "seed": seed,
                     "start": float(g[metric].iloc[0]), "end": float(g[metric].iloc[-1]),
                     "auc": area_under_curve(g["n"], g[metric]), "base_level": base_level,
                     "n_half": n_to_halfway(g["n"], g[metric], base_level), "n_max": float(g["n"].max()),
                     "align_steps": int(g["align_steps"].iloc[0]),
                     **{k: float(g[k].iloc[0]) for k in ("bits_end", "other_end")},
                     "seconds": float(g["seconds"].iloc[0]) if "seconds" in g else math.nan})
    return pd.DataFrame(rows)


def paired_difference(per: pd.DataFrame, first: str, second: str, measure: str) -> Interval:
    """Interval of mean over seeds of ``measure(first) − measure(second)``, paired by seed."""
    a = per[per["mitigation"] == first].set_index("seed")[measure]
    b = per[per["mitigation"] == second].set_index("seed")[measure]
    both = a.index.intersection(b.index)
    d = (a.loc[both] - b.loc[both]).astype(float).dropna()
    return mean_interval(d.to_numpy(), list(d.index))


def summary_table(per: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """One row per mitigation (``none`` first): levels, and protection and costs as paired differences from ``none``.

    ``protection``: Δ area under the curve (aligned share, higher protects); ``start_change``: Δ starting level;
    ``protection_rel``: Δ ``kept`` (area ÷ start, protection relative to the condition's own start); ``cost_bits``: Δ bits per token on
    held-out pre-training text after the perturbation (higher costs); ``cost_other``: the drop in the other tasks'
    mean likelihood score (higher costs). Each with ``_low``/``_high``; ``none`` has 0 by construction.
    """
    per = per.assign(kept=[kept_share(a, s) for a, s in zip(per["auc"], per["start"])])
    rows = []
    for name in dict.fromkeys(per["mitigation"]):
        g = per[per["mitigation"] == name]
        row = {"mitigation": name, "family": g["family"].iloc[0], "seeds": int(g["seed"].nunique()),
               "start": float(g["start"].mean()), "auc": float(g["auc"].mean()), "end": float(g["end"].mean()),
               "base_level": float(g["base_level"].mean()),
               "n_half": float(g["n_half"].mean()) if g["n_half"].notna().all() else math.nan,
               "halfway_reached": int(g["n_half"].notna().sum()),
               "bits_end": float(g["bits_end"].mean()), "other_end": float(g["other_end"].mean()),
               "kept": float(g["kept"].mean()) if g["kept"].notna().any() else math.nan}
        for out, measure, sign in (("protection", "auc", 1), ("end_change", "end", 1), ("start_change", "start", 1),
                                   ("protection_rel", "kept", 1), ("cost_bits", "bits_end", 1),
                                   ("cost_other", "other_end", -1)):
            iv = paired_difference(per, name, baseline, measure)
            est, lo, hi = (sign * iv.estimate + 0.0, min(sign * iv.low, sign * iv.high) + 0.0, max(sign * iv.low, sign * iv.high) + 0.0)
            row.update({out: est, f"{out}_low": lo, f"{out}_high": hi})
        rows.append(row)
    return pd.DataFrame(rows)


def interval_of(row: pd.Series | dict, name: str) -> Interval:
    """The :class:`Interval` stored in a summary row's ``name``, ``name_low``, ``name_high`` columns."""
    est, lo, hi = float(row[name]), float(row[f"{name}_low"]), float(row[f"{name}_high"])
    return Interval(est, lo, hi, n=int(row.get("seeds", 0)) if math.isfinite(est) else 0)


# --------------------------------------------------------------------------- the theorem's prediction


def pretraining_examples(world, tokens: int, n_docs: int = 400) -> float:
    """How many harmful requests the pre-training corpus holds: tokens / mean document length × safety share × harmful share.

    The mean length is measured on ``n_docs`` sampled documents (an estimate; the world fixes the shares exactly).
    """
    docs = world.documents(n_docs)
    mean_len = float(np.mean([len(world.encode(d)) for d in docs]))
    share = dict(world.config.mix)["safety"] / sum(w for _, w in world.config.mix)
    return tokens / mean_len * share * world.config.harmful_share


def predicted_level(n_pretrain: float, n_align: float, n_perturb: float, base_rate: float) -> float:
    """The elasticity theorem's model (the optimum on the union of the three data sets) on the one behaviour that
    matters, refuse or comply: P_p(refuse) = base rate, P_a = always refuse, P_t = never refuse; the model's
    refusal share is the size-weighted mixture (k·P_p + P_a + l·P_t)/(k + 1 + l), with k = N_p/N_a, l = n/N_a."""
    two = LeafModel(p=np.array([base_rate, 1 - base_rate]), a=np.array([1.0, 0.0]), t=np.array([0.0, 1.0]),
                    vocab_size=2, depth=1)
    return float(mixture(two, n_pretrain / n_align, n_perturb / n_align)[0])


def needed_for(n_pretrain: float, n_perturb: float, base_rate: float, target: float) -> float:
    """The N_a for which the theorem's model keeps the refusal share at ``target`` after ``n_perturb`` compliant examples:
    solving (k·r + 1)/(k + 1 + l) = target with k = N_p/N_a, l = n/N_a gives N_a = (target·(N_p + n) − N_p·r)/(1 − target)."""
    if not 0.0 < target < 1.0:
        raise ValueError(f"target={target!r} is not allowed; it must be in (0, 1).")
    return float(max(0.0, (target * (n_pretrain + n_perturb) - n_pretrain * base_rate) / (1 - target)))


def theory_table(config: MitigationConfig, per: pd.DataFrame, world, tokens: int) -> pd.DataFrame:
    """Per stage-1 size N_a (the one-epoch data mitigations and ``none``): the theorem's predicted level after the full
    perturbation next to the measured one (mean and interval over seeds)."""
    n_p = pretraining_examples(world, tokens)
    rate = float(world.base_rate("safety", "harmful"))
    rows = []
    for name in dict.fromkeys(per["mitigation"]):
        m = CATALOGUE[name]
        if m.family not in ("baseline", "alignment data") or m.steps_factor is not None:
            continue
        n_a = config.n_align * m.data_factor
        g = per[per["mitigation"] == name]
        iv = mean_interval(g["end"].to_numpy(), g["seed"].tolist())
        rows.append({"mitigation": name, "n_align": n_a, "n_pretrain": n_p, "n_perturb": config.n_perturb[-1],
                     "predicted_start": predicted_level(n_p, n_a, 0, rate),
                     "predicted_end": predicted_level(n_p, n_a, config.n_perturb[-1], rate),
                     "measured_start": float(g["start"].mean()), "measured_end": iv.estimate,
                     "measured_end_low": iv.low, "measured_end_high": iv.high})
    out = pd.DataFrame(rows)
    if len(out):
        out["n_align_needed_for_half"] = needed_for(n_p, config.n_perturb[-1], rate, (1 + rate) / 2)
    return out
