"""Figures of the algorithms section (chapter 8): the stage-1 calibration per algorithm, the rebound curves of
every algorithm on one figure (a button per base), and the verdicts' intervals against their margins.

They take the tables of :func:`elasticity_lab.experiments.algorithms.run_algorithms` and compute nothing new.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from elasticity_lab.plots import styled, visibility_steps
from elasticity_lab.plots.rebound import METRIC_LABEL, PALETTE, _band_traces

ALGORITHM_LABEL = {"sft": "SFT", "dpo": "DPO", "kto": "KTO", "simpo": "SimPO", "rloo": "RLOO (RL, judge as reward)"}
BASE_LABEL = {"pretrained": "pre-trained base", "light": "lightly pre-trained (control)", "random": "random init (control)"}


def _colors(algorithms: list[str]) -> dict[str, str]:
    return {a: PALETTE[i % len(PALETTE)] for i, a in enumerate(algorithms)}


def _label(a: str) -> str:
    return ALGORITHM_LABEL.get(a, a)


def calibration_figure(calibration: pd.DataFrame, lrs: Mapping[str, float], target: float, *, title: str | None = None) -> go.Figure:
    """Left: aligned score against the stage-1 learning rate per algorithm (mean over the calibration seeds), the
    target dashed and the chosen rate circled. Right: the KL to the base those rates reached."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=["aligned score after stage 1", "KL to the base after stage 1 (nats/token)"])
    if calibration.empty:
        fig.add_annotation(text="no calibration run (the rates were fixed)", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
        return styled(fig, title=title or "Stage-1 calibration", height=380)
    algs = list(dict.fromkeys(calibration["algorithm"]))
    colors = _colors(algs)
    means = calibration.groupby(["algorithm", "lr"], sort=False)[["rule", "kl"]].mean().reset_index()
    for a in algs:
        g = means[means["algorithm"] == a].sort_values("lr")
        # the chosen rate is interpolated in log(rate) between two rates of the grid: circle it where the curve passes
        lr = float(lrs.get(a, np.nan))
        inside = bool(len(g)) and np.isfinite(lr) and g["lr"].min() <= lr <= g["lr"].max()
        chosen = pd.DataFrame({"lr": [lr] if inside else [],
                               **{m: [float(np.interp(np.log(lr), np.log(g["lr"]), g[m]))] if inside else [] for m in ("rule", "kl")}})
        for col, metric in ((1, "rule"), (2, "kl")):
            fig.add_trace(go.Scatter(x=g["lr"], y=g[metric], mode="lines+markers", line=dict(color=colors[a]), name=_label(a),
                                     legendgroup=a, showlegend=col == 1,
                                     hovertemplate=f"{_label(a)}<br>lr = %{{x:.1e}}<br>{metric} = %{{y:.3f}}<extra></extra>"), row=1, col=col)
            fig.add_trace(go.Scatter(x=chosen["lr"], y=chosen[metric], mode="markers", legendgroup=a, showlegend=False,
                                     marker=dict(size=14, color="rgba(0,0,0,0)", line=dict(color=colors[a], width=2)),
                                     hovertemplate=f"{_label(a)}: chosen rate %{{x:.3g}} (on the line between the grid's rates)<extra></extra>"), row=1, col=col)
    fig.add_hline(y=target, line_dash="dash", line_color="black", row=1, col=1)
    fig.update_xaxes(type="log", title="stage-1 learning rate")
    fig.update_yaxes(range=[-0.03, 1.03], row=1, col=1)
    return styled(fig, title=title or f"Stage-1 calibration: each algorithm's rate chosen to reach about {target:g} (dashed; circled: chosen)",
                  height=400)


def curves_figure(curves: pd.DataFrame, *, metric: str = "rule", title: str | None = None) -> go.Figure:
    """The rebound curve of every algorithm (mean over seeds, ± one std band), one base at a time (buttons), each base's
    own level dashed: the algorithms compared on one figure."""
    algs = list(dict.fromkeys(curves["algorithm"]))
    kinds = [k for k in ("pretrained", "light", "random") if (curves["base_kind"] == k).any()]
    colors = _colors(algs)
    fig = go.Figure()
    groups: list[int | None] = []
    for i, kind in enumerate(kinds):
        sub = curves[curves["base_kind"] == kind]
        for a in algs:
            g = sub[sub["algorithm"] == a]
            if g.empty:
                continue
            for t in _band_traces(g, metric, colors[a], _label(a), legendgroup=a):
                t.visible = i == 0
                fig.add_trace(t)
                groups.append(i)
        level = float(sub[f"base_{metric}"].mean())
        fig.add_trace(go.Scatter(x=[sub["n"].min(), sub["n"].max()], y=[level, level], mode="lines", visible=i == 0,
                                 line=dict(color="black", dash="dash"), name="base level", hovertemplate=f"base level {level:.3f}<extra></extra>"))
        groups.append(i)
    if len(kinds) > 1:
        fig.update_layout(updatemenus=[dict(type="buttons", direction="right", x=0.0, y=1.13, xanchor="left", showactive=True,
                                            buttons=[dict(label=BASE_LABEL[k], method="update", args=s["args"])
                                                     for k, s in zip(kinds, visibility_steps(groups, kinds))])])
    fig.update_xaxes(title="negative examples in stage 2 (n)")
    fig.update_yaxes(title=METRIC_LABEL.get(metric, metric), range=[-0.03, 1.03])
    return styled(fig, title=title or "The rebound after each alignment algorithm (band: ± one std over seeds; dashed: the base's level)",
                  height=460)


def intervals_figure(verdicts: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """The intervals behind the independence verdict: each algorithm's difference from SFT (log2 n-to-halfway, settled
    level, aligned score) with its 95 % interval, and the margin within which it counts as the same (shaded)."""
    panels = [("same n-to-halfway as SFT", "log2(n-to-halfway) − SFT's"), ("same settled level as SFT", "settled score − SFT's"),
              ("matched alignment", "aligned score − SFT's")]
    fig = make_subplots(rows=1, cols=3, subplot_titles=[p[1] for p in panels], shared_yaxes=True)
    for c, (finding, _) in enumerate(panels, start=1):
        rows = verdicts[verdicts["finding"] == finding]
        if rows.empty:
            continue
        margin = float(rows["margin"].iloc[0])
        fig.add_vrect(x0=-margin, x1=margin, fillcolor="rgba(44,160,44,0.12)", line_width=0, row=1, col=c)
        fig.add_vline(x=0, line_color="gray", row=1, col=c)
        ok = rows[np.isfinite(rows["estimate"].astype(float))]
        y = [_label(a) for a in ok["algorithm"]]
        fig.add_trace(go.Scatter(
            x=ok["estimate"], y=y, mode="markers", marker=dict(size=10, color="#1f77b4"), showlegend=False,
            error_x=dict(type="data", symmetric=False, array=(ok["high"] - ok["estimate"]).fillna(0).tolist(),
                         arrayminus=(ok["estimate"] - ok["low"]).fillna(0).tolist()),
            customdata=ok["verdict"], hovertemplate="%{y}: %{x:.3f} (%{customdata})<extra></extra>"), row=1, col=c)
    return styled(fig, title=title or "Each algorithm against SFT: 95 % intervals (green: the margin within which it counts as the same)",
                  height=360)


def verdict_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The verdict rows for display: the interval as text (``not run`` / ``undecided``, never NaN), the margin, the verdict."""
    from elasticity_lab.experiments.algorithms.verdicts import against_controls
    from elasticity_lab.experiments.stats import Interval

    def interval(r: pd.Series) -> str:
        if not np.isfinite(float(r["estimate"])):
            if r["algorithm"] == "all" and r["verdict"] != "not run":
                return "combines the rows above"
            if str(r.get("detail", "")).startswith("not counted"):
                return "none: " + str(r["detail"])[len("not counted: "):] + " (no rebound to time)"
        iv = Interval(float(r["estimate"]), float(r["low"]), float(r["high"]), n=2 if np.isfinite(float(r["estimate"])) else 0)
        return iv.text(3)

    return pd.DataFrame({
        "finding": verdicts["finding"], "algorithm": verdicts["algorithm"], "base": verdicts["base_kind"],
        "statistic": verdicts["statistic"], "estimate [95 % interval]": verdicts.apply(interval, axis=1),
        "margin": [f"{m:g}" if np.isfinite(m) else "" for m in verdicts["margin"].astype(float)],
        "verdict": verdicts["verdict"], "against its controls": [against_controls(r) for _, r in verdicts.iterrows()]})
