"""What a set of algorithm curves says, one row per curve: how high stage 1 lifted the score, how far from the
base it moved the model, and how fast and how far stage 2 brought it back."""

from __future__ import annotations

import numpy as np
import pandas as pd

from elasticity_lab.core.config import check_positive
from elasticity_lab.experiments.rebound.analysis import n_to_halfway
from elasticity_lab.experiments.stats import difference_interval

CURVE = ["algorithm", "base_kind", "seed"]
"""The columns that name one curve."""


def curve_summary(curves: pd.DataFrame, n_align: int) -> pd.DataFrame:
    """Per curve: the stage-1 rate and steps; ``aligned`` (rule score at n = 0), ``kl_aligned`` (KL to the base
    after stage 1); ``gain`` (aligned − base); ``lost_share`` ((aligned − score at n = ``n_align``) / gain, the
    share of the alignment undone by as many negative examples as there were positive ones; NaN when stage 1
    lifted nothing); ``n_half`` (examples to get halfway back to the base; ``inf`` if never on the grid, NaN when
    stage 1 lifted nothing);
    ``settled`` (mean score over the last two grid points) and ``kl_end`` (the KL there)."""
    check_positive("n_align", n_align)
    need = set(CURVE) | {"n", "rule", "kl", "base_rule", "lr", "align_steps"}
    if not need <= set(curves.columns):
        raise ValueError(f"curves needs the columns {sorted(need)}; it has {sorted(curves.columns)}.")
    rows = []
    for key, g in curves.groupby(CURVE, sort=False):
        g = g.sort_values("n")
        if len(g) == 1 and float(g["n"].iloc[0]) == 0:  # a gated control: stage 1 only (runs.py), nothing to time
            y0 = float(g["rule"].iloc[0])
            base = float(g["base_rule"].iloc[0])
            rows.append({**dict(zip(CURVE, key)), "lr": float(g["lr"].iloc[0]), "align_steps": int(g["align_steps"].iloc[0]),
                         "base_rule": base, "aligned": y0, "kl_aligned": float(g["kl"].iloc[0]), "gain": y0 - base,
                         "lost_share": float("nan"), "n_half": float("nan"), "settled": float("nan"), "kl_end": float("nan")})
            continue
        if n_align not in set(g["n"]):
            raise ValueError(f"curve {dict(zip(CURVE, key))} has no point at n = n_align = {n_align}.")
        y, n = g["rule"].to_numpy(float), g["n"].to_numpy(float)
        base = float(g["base_rule"].iloc[0])
        aligned = float(y[0])
        gain = aligned - base
        at_na = float(g.loc[g["n"] == n_align, "rule"].iloc[0])
        rows.append({**dict(zip(CURVE, key)), "lr": float(g["lr"].iloc[0]), "align_steps": int(g["align_steps"].iloc[0]),
                     "base_rule": base, "aligned": aligned, "kl_aligned": float(g["kl"].iloc[0]), "gain": gain,
                     "lost_share": (aligned - at_na) / gain if gain > 1e-9 else float("nan"),
                     "n_half": _halfway(n, y, base) if gain > 1e-9 else float("nan"),
                     "settled": float(y[-2:].mean()), "kl_end": float(g["kl"].iloc[-1])})
    return pd.DataFrame(rows)


def _halfway(n: np.ndarray, y: np.ndarray, base: float) -> float:
    h = n_to_halfway(n, y, base)
    return h if np.isfinite(h) else float("inf")


def censored_log2(values: pd.Series | np.ndarray, limit: float) -> np.ndarray:
    """log2 of n-to-halfway, a curve that never got halfway on the grid (``inf``) counted at ``limit`` (beyond it);
    NaN (stage 1 lifted nothing, no rebound to time) stays NaN and is left out of the intervals."""
    check_positive("limit", limit)
    v = np.asarray(values, dtype=float)
    return np.log2(np.where(np.isinf(v), limit, v))


def algorithm_table(summary: pd.DataFrame, base_kind: str = "pretrained") -> pd.DataFrame:
    """Per algorithm on one base: mean ± std over seeds of the aligned score, the KL after stage 1, n-to-halfway
    (over the curves that got halfway, with how many did), the lost share and the settled level."""
    sub = summary[summary["base_kind"] == base_kind]
    rows = []
    for alg, g in sub.groupby("algorithm", sort=False):
        row: dict[str, object] = {"algorithm": alg, "lr": float(g["lr"].iloc[0]), "seeds": len(g)}
        for col in ("aligned", "kl_aligned", "n_half", "lost_share", "settled"):
            v = g[col].to_numpy(float)
            v = v[np.isfinite(v)]
            row[col] = float(v.mean()) if len(v) else float("nan")
            row[f"{col}_std"] = float(v.std(ddof=1)) if len(v) > 1 else float("nan")
        row["halfway_reached"] = int(np.isfinite(g["n_half"].to_numpy(float)).sum())
        row["nothing_lifted"] = int(np.isnan(g["n_half"].to_numpy(float)).sum())
        row["base_rule"] = float(g["base_rule"].mean())
        rows.append(row)
    return pd.DataFrame(rows)


def _pm(mean: float, std: float, digits: int) -> str:
    if not np.isfinite(mean):
        return "not reached"
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if np.isfinite(std) else "")


def alignment_text(table: pd.DataFrame, target: float, summary: pd.DataFrame | None = None) -> str:
    """What stage 1 reached per algorithm (from :func:`algorithm_table`), as a Markdown sentence: the aligned score
    and KL to the base (mean ± std over seeds), and how far apart the algorithms ended up on each. With the per-curve
    ``summary``, each algorithm's KL is compared with SFT's by a Welch interval over seeds, and only a difference whose
    interval excludes zero is called one."""
    if table.empty:
        return "Stage 1 was not run."
    parts = [f"{r['algorithm']} {_pm(r['aligned'], r['aligned_std'], 2)} (KL {_pm(r['kl_aligned'], r['kl_aligned_std'], 3)}, "
             f"lr {r['lr']:.3g})" for _, r in table.iterrows()]
    a, k = table["aligned"].to_numpy(float), table["kl_aligned"].to_numpy(float)
    text = (f"Aimed at an aligned score of {target:g} from a base at {float(table['base_rule'].mean()):.2f}, stage 1 reached "
            f"(mean ± std over {int(table['seeds'].max())} seeds; KL to the base in nats per token): " + "; ".join(parts) + ". "
            f"The aligned scores span {np.nanmax(a) - np.nanmin(a):.2f} from the lowest to the highest")
    if np.all(np.isfinite(k)) and np.nanmin(k) > 0:
        lo, hi = table["algorithm"].iloc[int(np.nanargmin(k))], table["algorithm"].iloc[int(np.nanargmax(k))]
        text += f"; the mean KLs a factor {np.nanmax(k) / np.nanmin(k):.1f} ({lo} lowest, {hi} highest)"
    return text + "." + (_kl_comparison(summary) if summary is not None else "")


def _kl_comparison(summary: pd.DataFrame) -> str:
    """Which algorithms' KL after stage 1 differs from SFT's beyond the seed interval (Welch, over seed means)."""
    pre = summary[summary["base_kind"] == "pretrained"]
    sft = pre[pre["algorithm"] == "sft"]
    if sft.empty:
        return ""
    apart, alike = [], []
    for alg, g in pre[pre["algorithm"] != "sft"].groupby("algorithm", sort=False):
        iv = difference_interval(g["kl_aligned"], sft["kl_aligned"], g["seed"], sft["seed"])
        if not iv.finite:
            continue
        (apart if iv.low > 0 or iv.high < 0 else alike).append(f"{alg} {iv.text(3)}")
    if not apart and not alike:
        return ""
    text = " KL after stage 1 minus SFT's (Welch 95 % interval over seeds): "
    if apart:
        text += "differs from zero for " + ", ".join(apart)
    if alike:
        text += ("; " if apart else "") + "cannot be told from zero for " + ", ".join(alike)
    return text + (". So not every algorithm moves the model as far from its base as SFT does."
                   if apart else ". No algorithm's KL differs from SFT's beyond the seed spread.")


def rebound_text(table: pd.DataFrame, n_align: int) -> str:
    """How each algorithm's model came back in stage 2 (from :func:`algorithm_table`), as a Markdown sentence."""
    if table.empty:
        return "Stage 2 was not run."
    def one(r: pd.Series) -> str:
        half = (f"{_pm(r['n_half'], r['n_half_std'], 0)} examples to halfway ({int(r['halfway_reached'])}/{int(r['seeds'])} "
                "seeds got there)") if r["halfway_reached"] else (
            "no rebound to time (stage 1 lifted nothing)" if r.get("nothing_lifted", 0) == r["seeds"] else "never halfway on the grid")
        lost = (f"{_pm(r['lost_share'], r['lost_share_std'], 2)} of the gain undone at n = {n_align}"
                if np.isfinite(r["lost_share"]) else "no gain to undo")
        return f"{r['algorithm']} {half}, {lost}, ending at {_pm(r['settled'], r['settled_std'], 2)}"

    parts = [one(r) for _, r in table.iterrows()]
    text = "In stage 2 (mean ± std over seeds): " + "; ".join(parts) + "."
    past = [str(r["algorithm"]) for _, r in table.iterrows() if np.isfinite(r["lost_share"]) and r["lost_share"] > 1]
    if past:
        text += (f" A share above 1 ({', '.join(past)}) means stage 2 undid more than the whole alignment gain: the score at "
                 f"n = {n_align} is below the base's own level ({float(table['base_rule'].mean()):.2f}), so the curve did not "
                 "stop at the base but went past it.")
    return text
