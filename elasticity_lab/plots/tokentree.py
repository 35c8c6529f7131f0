"""Figures of chapter 2: a token tree drawn as a sunburst, rates against depth, mass distributions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from elasticity_lab.plots import styled
from elasticity_lab.info.pareto import ParetoFit
from elasticity_lab.info.tokentree import TokenTree

_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]


def tree_sunburst(tree: TokenTree, *, max_depth: int | None = None, token_names: Sequence[str] | None = None,
                  sizes: Sequence[float] | None = None, title: str | None = None) -> go.Figure:
    """The joint token tree as a sunburst (root in the middle, depth outwards, angle = weight), with a
    plotly slider that prunes it to depth d live in the static book (the ``maxdepth`` of the trace).

    A wedge's angle is its joint node weight; the gap left inside a parent's ring is the mass of the
    responses that end there (their EOS leaf).
    """
    depth = min(tree.max_depth, max_depth or tree.max_depth)
    ids, labels, parents, values, levels = ["root"], ["root"], [""], [1.0], [0]
    for level in range(1, depth + 1):
        w = tree.joint_node_weights(level, sizes)
        par = tree.parents[level - 1]
        toks = tree.sorted_tokens[tree.first_row[level - 1], level - 1]
        for j in range(w.size):
            ids.append(f"{level}:{j}")
            parents.append("root" if level == 1 else f"{level - 1}:{int(par[j])}")
            t = int(toks[j])
            labels.append(str(t) if token_names is None else token_names[t])
            values.append(float(w[j]))
            levels.append(level)
    fig = go.Figure()
    lv = np.asarray(levels)
    start = max(1, (depth + 1) // 2)  # open half-way, so that the slider can go both ways
    # one trace per pruning depth (shown one at a time), so the slider switches traces like every
    # other slider in the book instead of restyling a single trace
    for d in range(1, depth + 1):
        keep = np.flatnonzero(lv <= d)
        fig.add_trace(go.Sunburst(ids=[ids[i] for i in keep], labels=[labels[i] for i in keep],
                                  parents=[parents[i] for i in keep], values=[values[i] for i in keep],
                                  branchvalues="total", visible=(d == start), name=f"depth {d}",
                                  hovertemplate="path weight %{value:.4f}<extra>%{label}</extra>"))
    steps = [dict(method="update", label=str(d), args=[{"visible": [e == d for e in range(1, depth + 1)]}])
             for d in range(1, depth + 1)]
    fig.update_layout(sliders=[dict(active=start - 1, steps=steps, currentvalue=dict(prefix="pruned to depth d = "),
                                    pad=dict(t=20))])
    return styled(fig, title=title, height=520)


def rate_vs_depth(depths: Sequence[int], rates: dict[str, Sequence[float]], *, floor: float | None = None,
                  title: str | None = None) -> go.Figure:
    """Bits per token against model depth d, one line per series (e.g. the sample's Huffman rate)."""
    fig = go.Figure()
    for i, (name, ys) in enumerate(rates.items()):
        fig.add_scatter(x=list(depths), y=list(ys), mode="lines+markers", name=name, line=dict(color=_COLORS[i % 6]))
    if floor is not None:
        fig.add_hline(y=floor, line_dash="dash", annotation_text="source entropy rate", line_color="black")
    fig.update_layout(xaxis_title="model depth d (tokens per code symbol)", yaxis_title="bits per token")
    return styled(fig, title=title)


def joint_code_winner(size_ratios: Sequence[float], rates: dict[str, Sequence[float]], *,
                      title: str | None = None) -> go.Figure:
    """Each data set's excess bits per token (over its own best code) under the joint code, against
    the size ratio |D_1|/|D_2|: the larger data set decides the code."""
    fig = go.Figure()
    for i, (name, ys) in enumerate(rates.items()):
        fig.add_scatter(x=list(size_ratios), y=list(ys), mode="lines+markers", name=name, line=dict(color=_COLORS[i % 6]))
    fig.update_layout(xaxis=dict(title="size ratio |D₁| / |D₂|", type="log"),
                      yaxis=dict(title="extra bits per token vs own code"))
    return styled(fig, title=title)


def mass_loglog(samples: dict[str, np.ndarray], fits: dict[str, ParetoFit] | None = None, *,
                title: str | None = None) -> go.Figure:
    """Complementary CDF P(X ≥ x) of leaf probabilities on log-log axes, with each Pareto fit as a
    straight line from its x_min (a Pareto law is a straight line here; curvature is evidence against)."""
    fig = go.Figure()
    for i, (name, x) in enumerate(samples.items()):
        xs = np.sort(np.asarray(x, dtype=float))
        ccdf = 1.0 - np.arange(xs.size) / xs.size
        keep = np.unique(np.geomspace(1, xs.size, min(xs.size, 400)).astype(int) - 1)
        color = _COLORS[i % 6]
        fig.add_scatter(x=xs[keep], y=ccdf[keep], mode="markers", name=name, marker=dict(size=5, color=color))
        if fits and name in fits:
            f = fits[name]
            frac = f.n_tail / f.n_total
            xx = np.geomspace(f.x_min, xs[-1], 50)
            fig.add_scatter(x=xx, y=frac * (xx / f.x_min) ** (-f.alpha), mode="lines",
                            name=f"{name}: Pareto α = {f.alpha:.2f} ± {f.alpha_se:.2f}", line=dict(color=color, dash="dash"))
    fig.update_layout(xaxis=dict(title="leaf probability x", type="log"), yaxis=dict(title="P(X ≥ x)", type="log"))
    return styled(fig, title=title, height=460)
