"""What the resistance table says: per-cell forward and inverse statistics, the paper's table, and which versions survive."""

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
                     "forward (θk→θl)": f"{r['forward_mean']:.{digits}f} ± {r['forward_std']:.{digits}f}",
                     "inverse (θl→θk)": f"{r['inverse_mean']:.{digits}f} ± {r['inverse_std']:.{digits}f}",
                     "inverse vs forward": f"{'↓' if r['inverse_lower'] else '↑'} {r['seeds_inverse_lower']}/{r['n_seeds']} seeds",
                     "sign p": round(r["sign_p"], 3), "t p": round(r["t_p"], 3)})
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    keep = [c for c in ("base", "answer_mode") if df[c].nunique() > 1]
    return df[keep + ["task", "pair", "forward (θk→θl)", "inverse (θl→θk)", "inverse vs forward", "sign p", "t p"]].reset_index(drop=True)


def survival_table(summary: pd.DataFrame, *, pretrained: str, no_pretraining: str, metrics: Sequence[str] = ("mean_loss", "excess_loss", "kl_start")) -> pd.DataFrame:
    """Which version of the finding (metric × answer mode) survives its controls, as measured.

    Per version: the fraction of cells with inverse < forward from the pre-trained base and from the
    base with no pre-training, and two verdicts: ``holds`` (a majority of the pre-trained base's cells)
    and ``survives`` (holds, and more often than without pre-training: a pattern that a random
    initialisation shows as often is no evidence that pre-training resists).
    """
    check_choice("pretrained", pretrained, sorted(set(summary["base"])))
    check_choice("no_pretraining", no_pretraining, sorted(set(summary["base"])))
    rows = []
    for metric in metrics:
        for mode in dict.fromkeys(summary["answer_mode"]):
            s = summary[(summary["metric"] == metric) & (summary["answer_mode"] == mode)]
            a, b = s[s["base"] == pretrained], s[s["base"] == no_pretraining]
            if a.empty or b.empty:
                continue
            fa, fb = float(a["inverse_lower"].mean()), float(b["inverse_lower"].mean())
            rows.append({"metric": metric, "answer_mode": mode, "cells": len(a), "pre-trained": round(fa, 3), "no pre-training": round(fb, 3),
                         "holds": fa > 0.5, "survives": fa > 0.5 and fa > fb})
    return pd.DataFrame(rows)


