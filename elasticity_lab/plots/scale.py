"""Figures of chapter 8: each measure along the size and volume axes, the pre-trained bases beside their controls.

They take the scale study's sweep table (:func:`elasticity_lab.experiments.scale.sweep_table`): mean ± spread
over pre-training seeds per point. Interactive controls are plotly's own, so the static book keeps them.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from elasticity_lab.plots import styled, visibility_steps

PALETTE = {"pretrained": "#1f77b4", "random": "#d62728", "light": "#ff7f0e", "finetuned": "#2ca02c"}
KIND_LABEL = {"pretrained": "pre-trained", "random": "random init (control)", "light": "lightly pre-trained (control)",
              "finetuned": "fine-tuning only, matched steps (control)"}
MEASURE_LABEL = {"n_half": "negative examples to get halfway back (n-to-halfway)",
                 "settle_gap": "|settling level − base level| (plateau fit)",
                 "kl_stage1": "KL to the base after stage 1 (nats)",
                 "lift": "lift: score after stage 1 − the base's own (no verdict)"}
AXIS_LABEL = {"size": ("params", "parameters (log scale)"), "volume": ("tokens", "pre-training tokens (log scale)")}


def axis_figure(sweep: pd.DataFrame, axis: str, *, title: str | None = None) -> go.Figure:
    """One measure at a time (a dropdown picks it) along ``axis``: a line per kind of base, error bars = spread over seeds.

    A point whose seeds never got halfway has no marker (its value is not a number); the table beside says so.
    """
    x_col, x_title = AXIS_LABEL[axis]
    sub = sweep[sweep["axis"] == axis]
    measures = [m for m in MEASURE_LABEL if m in set(sub["measure"])]
    fig = go.Figure()
    group: list[int | None] = []
    for i, m in enumerate(measures):
        for kind, g in sub[sub["measure"] == m].groupby("base_kind", sort=False):
            g = g.sort_values(x_col)
            text = [f"{p}, {t:,} tokens, {int(s)} of {int(r)} seeds" for p, t, s, r in zip(g["preset"], g["tokens"], g["seeds"], g["runs"])]
            fig.add_trace(go.Scatter(x=g[x_col], y=g["mean"], error_y=dict(type="data", array=g["spread"]), mode="lines+markers",
                                     name=KIND_LABEL.get(kind, kind), line=dict(color=PALETTE.get(kind), dash="solid" if kind == "pretrained" else "dot"),
                                     text=text, hovertemplate="%{text}<br>%{y:.3g}<extra></extra>", visible=i == 0))
            group.append(i)
    steps = visibility_steps(group, [MEASURE_LABEL[m] for m in measures])
    fig.update_layout(updatemenus=[dict(buttons=steps, direction="down", x=0, xanchor="left", y=1.12, yanchor="bottom")])
    fig.update_xaxes(title=x_title, type="log")
    fig.update_yaxes(title="mean ± spread over pre-training seeds")
    name = "model size (equal pre-training tokens)" if axis == "size" else "pre-training volume (checkpoints of one run per seed)"
    return styled(fig, title=title or f"Along {name}: pick a measure", height=460)
