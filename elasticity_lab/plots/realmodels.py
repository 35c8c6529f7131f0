"""Figures of chapter 10: rebound curves per base on the pre-training-volume and size axes, and each base's early drop."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from elasticity_lab.plots import styled
from elasticity_lab.plots.rebound import METRIC_LABEL, PALETTE

AXIS_LABEL = {"volume": "pre-training steps", "size": "parameters"}


def curves_figure(curves: pd.DataFrame, axis: str, *, metric: str = "likelihood", title: str | None = None) -> go.Figure:
    """Mean score over seeds against the negative examples seen, one line per base of ``axis`` (dotted: random init)."""
    fig = go.Figure()
    c = curves[curves["axis"] == axis]
    for i, (base, g) in enumerate(c.groupby("base", sort=False)):
        m = g.groupby("n")[metric].agg(["mean", "std", "count"]).reset_index()
        random = (g["base_kind"] == "random").all()
        fig.add_trace(go.Scatter(x=m["n"], y=m["mean"], mode="lines+markers", name=str(base),
                                 line=dict(color=PALETTE[i % len(PALETTE)], dash="dot" if random else "solid"),
                                 error_y=dict(type="data", array=m["std"].fillna(0.0), visible=True, thickness=1)))
    fig.update_xaxes(title="negative examples seen in stage 2 (n)")
    fig.update_yaxes(title=METRIC_LABEL.get(metric, metric))
    return styled(fig, title=title or f"Rebound from each base ({AXIS_LABEL.get(axis, axis)} axis), mean ± std over seeds")


def drop_figure(drops: pd.DataFrame, axis: str, *, metric: str = "likelihood", title: str | None = None) -> go.Figure:
    """Each pre-trained base's early drop (mean ± std over seeds) against its position on ``axis`` (log scale)."""
    d = drops[(drops["axis"] == axis) & (drops["metric"] == metric) & (drops["base_kind"] == "pretrained")]
    m = d.groupby(["x", "base"], sort=True)["drop"].agg(["mean", "std"]).reset_index()
    fig = go.Figure(go.Scatter(x=m["x"], y=m["mean"], mode="lines+markers+text", text=m["base"], textposition="top center",
                               error_y=dict(type="data", array=m["std"].fillna(0.0), visible=True), name="pre-trained",
                               line=dict(color=PALETTE[0])))
    r = drops[(drops["axis"] == axis) & (drops["metric"] == metric) & (drops["base_kind"] == "random")]
    if len(r):
        fig.add_hline(y=float(r["drop"].mean()), line_dash="dot", annotation_text="re-initialised copy (random init)")
    fig.update_xaxes(title=AXIS_LABEL.get(axis, axis), type="log")
    fig.update_yaxes(title="early drop: score after stage 1 − after the first batch")
    return styled(fig, title=title or f"How fast each base springs back ({AXIS_LABEL.get(axis, axis)})")
