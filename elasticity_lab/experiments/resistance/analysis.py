"""What the resistance table says: per-cell forward and inverse statistics and the paper's table (the verdicts, with
intervals and controls, are in :mod:`elasticity_lab.experiments.resistance.verdicts`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from elasticity_lab.core.config import check_choice
from elasticity_lab.experiments.resistance.config import METRICS

# --------------------------------------------------------------------------- statistics


CELL = ("base", "answer_mode", "task", "pair")


def summarize(table: pd.DataFrame, metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Per cell (base, answer mode, task, pair) and metric: forward and inverse mean ± std over seeds,
    the mean paired difference (inverse − forward), how many seeds have inverse < forward, and two
    paired tests over seeds: a two-sided sign test (ties dropped) and a paired t-test.

    With 3 seeds the sign test cannot go below p = 0.25: it says how consistent the direction is,
    the t-test how large the gap is against its spread.
    """
    for m in metrics:
        check_choice("metrics", m, [c for c in table.columns if c not in CELL])
    out = []
    for cell, g in table.groupby(list(CELL), sort=False):
        wide = g.pivot_table(index="seed", columns="direction", values=list(metrics), aggfunc="mean")
        for m in metrics:
            fwd, inv = wide[(m, "forward")], wide[(m, "inverse")]
            both = pd.concat([fwd, inv], axis=1).dropna()
            f, i = both.iloc[:, 0].to_numpy(), both.iloc[:, 1].to_numpy()
            d = i - f
            lower, higher = int((d < 0).sum()), int((d > 0).sum())
            sign_p = float(stats.binomtest(lower, lower + higher, 0.5).pvalue) if lower + higher else float("nan")
            t_p = float(stats.ttest_rel(i, f).pvalue) if len(d) >= 2 and np.std(d) > 0 else float("nan")
            out.append({**dict(zip(CELL, cell)), "metric": m, "n_seeds": len(d),
                        "forward_mean": float(f.mean()), "forward_std": float(f.std(ddof=1)) if len(f) > 1 else float("nan"),
                        "inverse_mean": float(i.mean()), "inverse_std": float(i.std(ddof=1)) if len(i) > 1 else float("nan"),
                        "diff_mean": float(d.mean()), "diff_std": float(d.std(ddof=1)) if len(d) > 1 else float("nan"),
                        "seeds_inverse_lower": lower, "sign_p": sign_p, "t_p": t_p,
                        "inverse_lower": bool(d.mean() < 0)})
    return pd.DataFrame(out)


def fraction_inverse_lower(summary: pd.DataFrame, metric: str = "mean_loss") -> pd.DataFrame:
    """Per base and answer mode: the number of cells and the fraction where the mean inverse < forward (the paper: 27/27)."""
    s = summary[summary["metric"] == check_choice("metric", metric, sorted(set(summary["metric"])))]
    g = s.groupby(["base", "answer_mode"], sort=False)
    return pd.DataFrame({"cells": g.size(), "inverse_lower": g["inverse_lower"].sum(), "fraction": g["inverse_lower"].mean(),
                         "all_seeds_agree": g.apply(lambda x: float((x["seeds_inverse_lower"] == x["n_seeds"]).mean()), include_groups=False)}).reset_index()


def _mean_sd(mean: float, sd: float, digits: int) -> str:
    """``1.234 ± 0.010``; one seed has no spread: ``1.234 (one seed)``; nothing: ``not run`` (never NaN)."""
    if not np.isfinite(mean):
        return "not run"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}" if np.isfinite(sd) else f"{mean:.{digits}f} (one seed)"


def _p(p: float) -> str:
    """A p-value in words where there is none (one seed, no spread, every seed tied): never NaN."""
    return f"{p:.3f}" if np.isfinite(p) else "no test (too few seeds or no spread)"


def paper_table(summary: pd.DataFrame, metric: str = "mean_loss", *, base: str | None = None, answer_mode: str | None = None, digits: int = 3) -> pd.DataFrame:
    """The paper's layout: one row per task and pair, ``forward θk→θl`` and ``inverse θl→θk`` as mean ± std, and an arrow
    (↓ inverse lower, ↑ higher) with the seeds that agree."""
    s = summary[summary["metric"] == metric]
    if base is not None:
        s = s[s["base"] == base]
    if answer_mode is not None:
        s = s[s["answer_mode"] == answer_mode]
    rows = []
    for _, r in s.iterrows():
        k, l = r["pair"].split("-")
        rows.append({"base": r["base"], "answer_mode": r["answer_mode"], "task": r["task"], "pair": f"θ{k} ↔ θ{l}",
                     "forward (θk→θl)": _mean_sd(r["forward_mean"], r["forward_std"], digits),
                     "inverse (θl→θk)": _mean_sd(r["inverse_mean"], r["inverse_std"], digits),
                     "inverse vs forward": f"{'↓' if r['inverse_lower'] else '↑'} (inverse lower in {r['seeds_inverse_lower']}/{r['n_seeds']} seeds)",
                     "sign p": _p(r["sign_p"]), "t p": _p(r["t_p"])})
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    keep = [c for c in ("base", "answer_mode") if df[c].nunique() > 1]
    return df[keep + ["task", "pair", "forward (θk→θl)", "inverse (θl→θk)", "inverse vs forward", "sign p", "t p"]].reset_index(drop=True)
