"""Figures of chapter 5: the world's vocabulary, pre-training curves, base behaviour across checkpoints.

Figures that the static book must keep interactive use plotly's own sliders (no kernel needed).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from elasticity_lab.plots import styled


def zipf_figure(words: Sequence[str], probabilities: Sequence[float], *, title: str = "The world's nouns follow Zipf's law") -> go.Figure:
    """Rank–probability of a word class on log–log axes (a straight line is Zipf's law)."""
    p = np.asarray(probabilities, dtype=float)
    ranks = np.arange(1, len(p) + 1)
    fig = go.Figure(go.Scatter(x=ranks, y=p, mode="markers+lines", text=list(words),
                               hovertemplate="rank %{x}: %{text}<br>p = %{y:.4f}<extra></extra>"))
    fig.update_xaxes(type="log", title="rank")
    fig.update_yaxes(type="log", title="probability")
    return styled(fig, title=title)


def pretraining_curve_figure(curve: pd.DataFrame, source_bits: float, *, window: int = 20,
                             title: str = "Pre-training: bits per token against tokens seen") -> go.Figure:
    """Training loss (smoothed) and held-out bits per token at checkpoints, with the source entropy as the floor."""
    fig = go.Figure()
    smooth = curve["bits_per_token"].rolling(window, min_periods=1).mean()
    fig.add_trace(go.Scatter(x=curve["tokens"], y=smooth, mode="lines", name=f"training loss (mean of {window} steps)"))
    held = curve.dropna(subset=["heldout_bits_per_token"])
    fig.add_trace(go.Scatter(x=held["tokens"], y=held["heldout_bits_per_token"], mode="markers+lines",
                             name="held-out, at checkpoints", marker=dict(size=9)))
    fig.add_hline(y=source_bits, line_dash="dash", line_color="black",
                  annotation_text=f"source entropy ≈ {source_bits:.3f} bits/token", annotation_position="top right")
    fig.update_xaxes(type="log", title="tokens seen")
    fig.update_yaxes(title="bits per token", type="log")
    return styled(fig, title=title)


def behaviour_checkpoints_figure(table: pd.DataFrame, *, value: str = "model_rate",
                                 title: str = "How the base model behaves, checkpoint by checkpoint") -> go.Figure:
    """One line per task: the model's rate of the aligned behaviour against pre-training tokens.

    Dotted lines: the pre-training text's rate (what a perfectly learnt base shows). The aligned data's
    rate is 1 (0 for refusing benign requests), far from both.
    """
    fig = go.Figure()
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    for i, (task, rows) in enumerate(table.groupby("task", sort=False)):
        color = palette[i % len(palette)]
        fig.add_trace(go.Scatter(x=rows["tokens"], y=rows[value], mode="lines+markers", name=task, line=dict(color=color)))
        fig.add_trace(go.Scatter(x=rows["tokens"], y=rows["pretraining_rate"], mode="lines", line=dict(color=color, dash="dot"),
                                 name=f"{task}: pre-training rate", showlegend=False, hoverinfo="skip"))
    fig.update_xaxes(type="log", title="pre-training tokens")
    label = "rate of the aligned behaviour (sampled, T = 1)" if value == "model_rate" else "likelihood score"
    fig.update_yaxes(title=label, range=[-0.03, 1.03])
    return styled(fig, title=title)


def next_token_slider_figure(distributions: dict[int, dict[str, float]], *, prompt: str, top: int = 8,
                             title: str | None = None) -> go.Figure:
    """Bar chart of the first response token's distribution, with a slider over checkpoints (works in the static book)."""
    budgets = sorted(distributions)
    words: list[str] = []
    for b in budgets:
        for w, _ in sorted(distributions[b].items(), key=lambda kv: -kv[1])[:top]:
            if w not in words:
                words.append(w)

    def bar(b: int) -> go.Bar:
        return go.Bar(x=words, y=[distributions[b].get(w, 0.0) for w in words], marker_color="#1f77b4")

    fig = go.Figure(data=[bar(budgets[-1])], frames=[go.Frame(data=[bar(b)], name=str(b)) for b in budgets])
    steps = [dict(method="animate", label=f"{b:,}", args=[[str(b)], dict(mode="immediate", frame=dict(duration=0, redraw=True), transition=dict(duration=0))])
             for b in budgets]
    fig.update_layout(sliders=[dict(active=len(budgets) - 1, steps=steps, currentvalue=dict(prefix="pre-training tokens: "), pad=dict(t=40))])
    fig.update_yaxes(title="probability of the first response token", range=[0, 1])
    fig.update_xaxes(title="token")
    return styled(fig, title=title or f"What comes after “{prompt}”", height=460)
