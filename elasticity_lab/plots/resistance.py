"""Figures of chapter 6: the protocol, the paper-style table, loss curves of a pair, the controls.

Every choice the reader can make (metric, answer mode, task, pair) is a plotly dropdown, so the
figures stay interactive in the static book, which has no kernel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from elasticity_lab.plots import styled, visibility_steps

METRIC_LABELS: dict[str, str] = {
    "mean_loss": "average training loss (the authors' metric)",
    "final_loss": "final training loss",
    "excess_loss": "average loss − answers' own entropy",
    "kl_start": "student's KL to the answers before training",
}
FORWARD, INVERSE = "#1f77b4", "#d62728"


def _dropdown(labels: Sequence[str], groups: Sequence[int], *, x: float = 0.0, y: float = 1.18) -> dict:
    """A dropdown whose i-th entry shows only the traces of group i."""
    return dict(buttons=visibility_steps(groups, labels), direction="down", x=x, y=y, xanchor="left", yanchor="top", showactive=True)


def protocol_figure() -> go.Figure:
    """The idea in one picture: checkpoints θ₀…θ₃ of one SFT run; forward arrows go later, inverse arrows go back."""
    fig = go.Figure()
    xs = [0, 1, 2, 3]
    fig.add_trace(go.Scatter(x=xs, y=[0] * 4, mode="markers+text", marker=dict(size=34, color=["#7f7f7f", "#9ecae1", "#4292c6", "#08519c"]),
                             text=["θ0", "θ1", "θ2", "θ3"], textposition="middle center", textfont=dict(color="white", size=14),
                             hoverinfo="skip", showlegend=False))
    fig.add_annotation(x=1.5, y=-0.42, text="one SFT run on the task's data, cut at 25 % · 50 % · 75 % of the way to its final behaviour", showarrow=False)
    for k, l, h in ((1, 2, 0.35), (2, 3, 0.35), (1, 3, 0.7)):
        fig.add_annotation(x=l - 0.12, y=0.12 + h * 0.3, ax=k + 0.12, ay=0.12 + h * 0.3, xref="x", yref="y", axref="x", ayref="y",
                           showarrow=True, arrowhead=3, arrowwidth=2, arrowcolor=FORWARD, text="")
        fig.add_annotation(x=k + 0.12, y=-0.12 - h * 0.3, ax=l - 0.12, ay=-0.12 - h * 0.3, xref="x", yref="y", axref="x", ayref="y",
                           showarrow=True, arrowhead=3, arrowwidth=2, arrowcolor=INVERSE, text="")
    fig.add_annotation(x=2.0, y=0.5, text="forward θk→θl: train θk on θl's answers", showarrow=False, font=dict(color=FORWARD))
    fig.add_annotation(x=2.0, y=-0.6, text="inverse θl→θk: train θl on θk's answers", showarrow=False, font=dict(color=INVERSE))
    fig.update_xaxes(visible=False, range=[-0.4, 3.4])
    fig.update_yaxes(visible=False, range=[-0.75, 0.65])
    return styled(fig, title="Forward and inverse alignment between checkpoints", height=330)


def _table_trace(s: pd.DataFrame, visible: bool) -> go.Table:
    pairs = [f"θ{p.split('-')[0]} ↔ θ{p.split('-')[1]}" for p in s["pair"]]
    fwd = [f"θ{p.split('-')[0]}→θ{p.split('-')[1]}  {m:.3f} ± {sd:.3f}" for p, m, sd in zip(s["pair"], s["forward_mean"], s["forward_std"].fillna(0))]
    inv = [f"θ{p.split('-')[1]}→θ{p.split('-')[0]}  {m:.3f} ± {sd:.3f}" for p, m, sd in zip(s["pair"], s["inverse_mean"], s["inverse_std"].fillna(0))]
    arrow = [f"{'↓ lower' if low else '↑ higher'} (lower in {n_low}/{n} seeds)" for low, n_low, n in zip(s["inverse_lower"], s["seeds_inverse_lower"], s["n_seeds"])]
    pvals = [f"{sp:.2f} · {tp:.3f}" if not np.isnan(tp) else f"{sp:.2f} · –" for sp, tp in zip(s["sign_p"].fillna(1.0), s["t_p"])]
    colour = ["#e5f5e0" if low else "#fde0dd" for low in s["inverse_lower"]]
    white = ["white"] * len(s)
    return go.Table(
        header=dict(values=["task", "pair", "forward", "inverse", "inverse vs forward", "p (sign · paired t)"], fill_color="#f0f0f0", align="left"),
        cells=dict(values=[list(s["task"]), pairs, fwd, inv, arrow, pvals], align="left", fill_color=[white, white, white, white, colour, white]),
        columnwidth=[1.1, 0.9, 2.0, 2.0, 1.6, 1.3], visible=visible,
    )


def paper_table_figure(summary: pd.DataFrame, *, base: str, metrics: Sequence[str] | None = None,
                       answer_modes: Sequence[str] | None = None, title: str | None = None) -> go.Figure:
    """The paper's Table 1 for one base: per task and pair, forward and inverse mean ± std over seeds, an arrow
    (green ↓: inverse lower, as the paper reports; red ↑: higher), the seeds that agree and two paired tests.
    A dropdown picks the metric and the answer mode."""
    s0 = summary[summary["base"] == base]
    metrics = list(metrics or [m for m in METRIC_LABELS if m in set(s0["metric"])])
    modes = list(answer_modes or list(dict.fromkeys(s0["answer_mode"])))
    fig = go.Figure()
    labels, groups = [], []
    for metric in metrics:
        for mode in modes:
            s = s0[(s0["metric"] == metric) & (s0["answer_mode"] == mode)]
            if s.empty:
                continue
            fig.add_trace(_table_trace(s, visible=not labels))
            groups.append(len(labels))
            labels.append(f"{METRIC_LABELS.get(metric, metric)} · answers: {mode}")
    fig.update_layout(updatemenus=[_dropdown(labels, groups, y=1.16)])
    return styled(fig, title=title or f"Inverse vs forward alignment, base {base}", height=140 + 34 * max(1, len(s0) // max(1, len(metrics) * len(modes))))


def pair_curves_figure(curves: pd.DataFrame, *, base: str, answer_mode: str, title: str | None = None) -> go.Figure:
    """Training loss per step of both directions of a pair (thin: each seed; thick: the mean), a dropdown per task and pair."""
    c0 = curves[(curves["base"] == base) & (curves["answer_mode"] == answer_mode)]
    fig = go.Figure()
    labels, groups = [], []
    for (task, pair), g in c0.groupby(["task", "pair"], sort=False):
        k, l = pair.split("-")
        first = not labels
        for direction, colour, name in (("forward", FORWARD, f"forward θ{k}→θ{l}"), ("inverse", INVERSE, f"inverse θ{l}→θ{k}")):
            d = g[g["direction"] == direction]
            for seed, ds in d.groupby("seed"):
                fig.add_trace(go.Scatter(x=ds["step"], y=ds["loss"], mode="lines", line=dict(color=colour, width=1), opacity=0.35,
                                         name=f"{name}, seed {seed}", showlegend=False, visible=first))
                groups.append(len(labels))
            mean = d.groupby("step")["loss"].mean()
            fig.add_trace(go.Scatter(x=mean.index, y=mean.values, mode="lines+markers", line=dict(color=colour, width=3), name=name, visible=first))
            groups.append(len(labels))
        labels.append(f"{task} · θ{k} ↔ θ{l}")
    fig.update_layout(updatemenus=[_dropdown(labels, groups)])
    fig.update_xaxes(title="step of the fine-tune")
    fig.update_yaxes(title="training loss (nats per response token)")
    return styled(fig, title=title or f"Loss curves of a pair (answers: {answer_mode})", height=440)


def control_figure(summary: pd.DataFrame, *, labels: dict[str, str] | None = None, metrics: Sequence[str] | None = None,
                   title: str = "The gap inverse − forward, base by base") -> go.Figure:
    """Mean paired gap (inverse − forward) per task and pair, one bar colour per base, ± its std over seeds.

    Below zero: inverse is easier, as the paper reports. If resistance came from pre-training, the bars
    of the pre-trained base should sit below those of the random and lightly pre-trained bases.
    A dropdown picks the metric and the answer mode.
    """
    labels = labels or {}
    metrics = list(metrics or [m for m in METRIC_LABELS if m in set(summary["metric"])])
    modes = list(dict.fromkeys(summary["answer_mode"]))
    bases = list(dict.fromkeys(summary["base"]))
    palette = ["#08519c", "#6baed6", "#bdbdbd", "#fd8d3c", "#a63603", "#31a354"]
    fig = go.Figure()
    names, groups = [], []
    for metric in metrics:
        for mode in modes:
            s = summary[(summary["metric"] == metric) & (summary["answer_mode"] == mode)]
            if s.empty:
                continue
            first = not names
            for i, base in enumerate(bases):
                b = s[s["base"] == base]
                if b.empty:
                    continue
                x = [f"{t} {p}" for t, p in zip(b["task"], b["pair"])]
                fig.add_trace(go.Bar(x=x, y=b["diff_mean"], error_y=dict(type="data", array=b["diff_std"].fillna(0)),
                                     name=labels.get(base, base), marker_color=palette[i % len(palette)], visible=first,
                                     hovertemplate="%{x}: %{y:.4f}<extra>" + labels.get(base, base) + "</extra>"))
                groups.append(len(names))
            names.append(f"{METRIC_LABELS.get(metric, metric)} · answers: {mode}")
    fig.update_layout(barmode="group", updatemenus=[_dropdown(names, groups)], legend=dict(orientation="h", y=-0.25))
    fig.add_hline(y=0, line_color="black", line_width=1)
    fig.update_yaxes(title="inverse − forward (nats per token)")
    fig.update_xaxes(title="task and pair (θk–θl)")
    return styled(fig, title=title, height=480)
