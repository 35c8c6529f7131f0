"""Figures of chapter 1: code lengths, and compressors learning a source."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from elasticity_lab.plots import styled, visibility_steps

_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]


def code_length_bars(p: Sequence[float], labels: Sequence[str] | None = None) -> go.Figure:
    """Probability of each symbol next to its ideal code length -log2 p (bits)."""
    p = np.asarray(p, dtype=float)
    labels = list(labels) if labels is not None else [f"s{i}" for i in range(p.size)]
    fig = go.Figure()
    fig.add_bar(x=labels, y=p, name="probability p", yaxis="y", marker_color=_COLORS[0], offsetgroup=0)
    fig.add_bar(x=labels, y=-np.log2(p), name="code length −log₂ p (bits)", yaxis="y2", marker_color=_COLORS[1], offsetgroup=1)
    fig.update_layout(
        yaxis=dict(title="probability"),
        yaxis2=dict(title="bits", overlaying="y", side="right", rangemode="tozero"),
        barmode="group",
        legend=dict(orientation="h", y=1.12),
    )
    return styled(fig, height=360)


def learning_curves_slider(table: pd.DataFrame) -> go.Figure:
    """Running bits per token of each compressor as it reads the sequence, one slider step per source.

    ``table`` is :func:`elasticity_lab.info.compression.compression_table`'s output. Adaptive models are
    lines (their cost falls as they learn); general-purpose compressors are markers at the end; the
    dashed line is the source's entropy rate, the floor no compressor can beat on average. The
    slider switches sources with plotly's own buttons, so it works in the static book.
    """
    # ~150 log-spaced positions per curve keep the page light; the curves are smooth on a log axis
    positions = np.unique(np.geomspace(1, table["position"].max(), 150).astype(int))
    table = table[table["position"].isin(positions)]  # includes the last position, where the baselines sit
    concs = sorted(table["concentration"].unique())
    names = list(dict.fromkeys(table["compressor"]))
    fig = go.Figure()
    groups: list[list[int]] = []
    for conc in concs:
        sub = table[table["concentration"] == conc]
        idx = []
        for j, name in enumerate(names):
            rows = sub[sub["compressor"] == name]
            incremental = len(rows) > 1
            fig.add_scatter(
                x=rows["position"], y=rows["bits_per_token"], name=name,
                mode="lines" if incremental else "markers",
                marker=dict(size=11, symbol="diamond", color=_COLORS[j % len(_COLORS)]),
                line=dict(color=_COLORS[j % len(_COLORS)]),
                visible=bool(conc == concs[0]), legendgroup=name,
            )
            idx.append(len(fig.data) - 1)
        h = float(sub["entropy_rate"].iloc[0])
        n = int(sub["position"].max())
        fig.add_scatter(x=[1, n], y=[h, h], mode="lines", name="entropy rate (floor)",
                        line=dict(dash="dash", color="black"), visible=bool(conc == concs[0]))
        idx.append(len(fig.data) - 1)
        groups.append(idx)
    owner: list[int | None] = [None] * len(fig.data)
    for g, idx in enumerate(groups):
        for i in idx:
            owner[i] = g
    steps = visibility_steps(owner, [f"{conc:g}" for conc in concs])
    fig.update_layout(
        sliders=[dict(active=0, steps=steps, currentvalue=dict(prefix="source concentration: "), pad=dict(t=50))],
        xaxis=dict(title="tokens read", type="log"),
        yaxis=dict(title="bits per token so far"),
    )
    return styled(fig, title="Compressors learning a Markov source", height=480)
