"""Figures of chapters 3 and 4: the elasticity theorem computed, and springs in series.

Every interactive figure precomputes its states and switches between them with plotly's own
sliders and buttons, so that it works in the static book (no kernel behind the page).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from elasticity_lab.info import theory as th
from elasticity_lab.plots import styled

COLORS = {"p": "#1f77b4", "a": "#d62728", "t": "#2ca02c"}
LABELS = {"p": "pre-training D_p", "a": "alignment D_a", "t": "perturbation D_t"}

Placed = tuple[go.Scatter | go.Bar, int, int]
"""A trace and the (row, col) of the subplot it goes to."""


def two_control_figure(
    make_state: Callable[[int, int], list[Placed]],
    outer_labels: Sequence[str],
    inner_labels: Sequence[str],
    *,
    outer_prefix: str,
    inner_prefix: str,
    rows: int = 1,
    cols: int = 1,
    subplot_titles: Sequence[str] | None = None,
    inner_active: int = 0,
) -> go.Figure:
    """A figure with a slider (inner control) and a row of buttons (outer control), both plotly-native.

    ``make_state(i, j)`` returns the traces of state (outer i, inner j); every state has the same
    number of traces. All traces are added once and shown or hidden: each button switches the outer
    state *and* swaps in that state's slider, so the two controls combine without a kernel.
    """
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(subplot_titles) if subplot_titles else None,
                        horizontal_spacing=0.12)
    index: dict[tuple[int, int], list[int]] = {}
    for i in range(len(outer_labels)):
        for j in range(len(inner_labels)):
            idx = []
            for trace, r, c in make_state(i, j):
                trace.visible = (i == 0 and j == inner_active)
                if i or j:
                    trace.showlegend = False if (i, j) != (0, inner_active) else trace.showlegend
                fig.add_trace(trace, row=r, col=c)
                idx.append(len(fig.data) - 1)
            index[(i, j)] = idx
    n = len(fig.data)

    def visible(i: int, j: int) -> list[bool]:
        v = [False] * n
        for t in index[(i, j)]:
            v[t] = True
        return v

    def slider(i: int) -> dict:
        steps = [dict(method="update", label=lab, args=[{"visible": visible(i, j)}]) for j, lab in enumerate(inner_labels)]
        return dict(active=inner_active, steps=steps, currentvalue=dict(prefix=inner_prefix), pad=dict(t=55), x=0, len=1.0)

    fig.update_layout(sliders=[slider(0)])
    if len(outer_labels) > 1:
        buttons = [dict(method="update", label=lab, args=[{"visible": visible(i, inner_active)}, {"sliders": [slider(i)]}])
                   for i, lab in enumerate(outer_labels)]
        fig.update_layout(updatemenus=[dict(type="buttons", direction="right", buttons=buttons, x=0, xanchor="left",
                                            y=1.22, yanchor="top", showactive=True, pad=dict(r=4, t=0))],
                          annotations=list(fig.layout.annotations or [])
                          + [dict(text=outer_prefix, x=0, xref="paper", y=1.30, yref="paper", showarrow=False,
                                  xanchor="left")])
    return fig


def _room_for_buttons(fig: go.Figure, title: str | None) -> go.Figure:
    """Top margin for the row of buttons and its caption above the plots."""
    fig.update_layout(margin=dict(t=140 if title else 110))
    if title:
        fig.update_layout(title=dict(y=0.98, yanchor="top"))
    return fig


# ----------------------------------------------------------------------------------------------
# Chapter 3
# ----------------------------------------------------------------------------------------------


def rates_vs_l(model: th.LeafModel, ks: Sequence[float], ls: np.ndarray, model_depths: Sequence[int] | None = None,
               *, title: str | None = None) -> go.Figure:
    """Left: how far each data set's normalized rate has moved, |γ_i(l) − γ_i(0)|, against l (log-log).
    Right: the slope ratio −(dγ_a/dl)/(dγ_p/dl) divided by k. Slider over k, buttons over model depth d'."""
    depths = list(model_depths) if model_depths else [model.depth]
    ls = np.asarray(ls, dtype=float)

    def state(i: int, j: int) -> list[Placed]:
        d, k = depths[i], float(ks[j])
        moved = {n: [] for n in th.NAMES}
        ratio = []
        for l in ls:
            shift = th.rate_shifts(model, k, float(l), d)  # not a difference of rates: no cancellation
            for n in th.NAMES:
                moved[n].append(abs(shift[n]))
            ratio.append(th.slope_ratio(model, k, float(l), d) / k)
        out: list[Placed] = [
            (go.Scatter(x=ls, y=moved[n], mode="lines", name=LABELS[n], line=dict(color=COLORS[n]), legendgroup=n), 1, 1)
            for n in ("a", "p")
        ]
        out.append((go.Scatter(x=ls, y=ratio, mode="lines", name="slope ratio ÷ k", line=dict(color="black"),
                               legendgroup="r"), 1, 2))
        return out

    fig = two_control_figure(state, [f"d′ = {d}" for d in depths], [f"{k:g}" for k in ks],
                             outer_prefix="model depth:", inner_prefix="k = |D_p|/|D_a| = ", cols=2,
                             subplot_titles=["|Δγ| since l = 0 (bits per token)", "slope ratio ÷ k"],
                             inner_active=len(ks) // 2)
    fig.update_xaxes(type="log", title_text="l = |D_t| / |D_a|")
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_yaxes(type="log", row=1, col=2)
    fig.update_layout(legend=dict(orientation="h", y=-0.25))
    return _room_for_buttons(styled(fig, title=title, height=540), title)


def ratio_vs_k(ks: np.ndarray, ratios: dict[str, np.ndarray], *, fit: dict[str, tuple[float, float]] | None = None,
               title: str | None = None) -> go.Figure:
    """Slope ratio against k on log-log axes, one series per setting, the line y = k for reference."""
    fig = go.Figure()
    ks = np.asarray(ks, dtype=float)
    fig.add_scatter(x=ks, y=ks, mode="lines", name="ratio = k", line=dict(color="gray", dash="dot"))
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
    for i, (name, r) in enumerate(ratios.items()):
        label = name if not fit or name not in fit else f"{name} (fitted log-log slope {fit[name][0]:.3f})"
        fig.add_scatter(x=ks, y=np.abs(r), mode="markers+lines", name=label, line=dict(color=palette[i % 5]))
    fig.update_layout(xaxis=dict(title="k = |D_p| / |D_a|", type="log"),
                      yaxis=dict(title="|slope ratio| = |dγ_a/dl| / |dγ_p/dl|", type="log"),
                      legend=dict(orientation="h", y=-0.2))
    return styled(fig, title=title, height=480)


def absolute_slopes_figure(ks: np.ndarray, slopes: dict[str, dict[str, np.ndarray]], *,
                           fit: dict[str, tuple[float, float]] | None = None, title: str | None = None) -> go.Figure:
    """|dγ_a/dl| (solid) and |dγ_p/dl| (dashed) against k on log-log axes, one colour per perturbation.

    ``slopes`` is :func:`elasticity_lab.info.theory.absolute_slopes_vs_k`'s output (or any dict case →
    {"a": ..., "p": ...}); ``fit`` maps a case to the log-log slope and intercept of its |dγ_a/dl|,
    shown in the legend.
    """
    fig = go.Figure()
    ks = np.asarray(ks, dtype=float)
    palette = ["#d62728", "#9467bd", "#2ca02c", "#ff7f0e"]
    names = {"random": "random P_t", "like_pretraining": "P_t = P_p"}
    for i, (case, s) in enumerate(slopes.items()):
        label = names.get(case, case)
        a_label = f"|dγ_a/dl|, {label}"
        if fit and case in fit:
            a_label += f" (fitted log-log slope {fit[case][0]:.3f})"
        color = palette[i % len(palette)]
        fig.add_scatter(x=ks, y=s["a"], mode="markers+lines", name=a_label, line=dict(color=color))
        fig.add_scatter(x=ks, y=s["p"], mode="lines", name=f"|dγ_p/dl|, {label}", line=dict(color=color, dash="dash"))
    fig.update_layout(xaxis=dict(title="k = |D_p| / |D_a|", type="log", exponentformat="power"),
                      yaxis=dict(title="|slope| (bits per token per unit l)", type="log", exponentformat="power"),
                      legend=dict(orientation="h", y=-0.2))
    return styled(fig, title=title, height=500)


BENDS_AXIS = (-2.0, 3.0)  # the bends figure's y axis where a curve runs beyond it


def ratio_bends(ls: np.ndarray, curves: dict[str, np.ndarray], *, title: str | None = None) -> go.Figure:
    """Slope ratio ÷ k against l for several settings (depth, supports): where the theorem bends."""
    fig = go.Figure()
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]
    for i, (name, r) in enumerate(curves.items()):
        fig.add_scatter(x=ls, y=r, mode="lines", name=name, line=dict(color=palette[i % 7]))
    fig.add_hline(y=1.0, line_dash="dot", line_color="gray")
    yaxis = dict(title="slope ratio ÷ k")
    values = np.concatenate([np.asarray(r, dtype=float).ravel() for r in curves.values()])
    values = values[np.isfinite(values)]
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    if lo < BENDS_AXIS[0] or hi > BENDS_AXIS[1]:  # a ratio through a pole would squash every other curve into a line
        yaxis = dict(title=f"slope ratio ÷ k (axis cut at {BENDS_AXIS[0]:g} and {BENDS_AXIS[1]:g})",
                     range=[max(lo, BENDS_AXIS[0]) - 0.1, min(hi, BENDS_AXIS[1]) + 0.1])
    fig.update_layout(xaxis=dict(title="l = |D_t| / |D_a|", type="log"), yaxis=yaxis, legend=dict(orientation="h", y=-0.2))
    return styled(fig, title=title, height=460)


# ----------------------------------------------------------------------------------------------
# Chapter 4
# ----------------------------------------------------------------------------------------------


def _zigzag(x0: float, x1: float, y: float, turns: int = 10, amp: float = 0.12) -> tuple[list[float], list[float]]:
    xs = np.linspace(x0, x1, 2 * turns + 3)
    ys = np.full(xs.size, y)
    ys[1:-1] += amp * np.array([(-1) ** i for i in range(xs.size - 2)])
    ys[1] = ys[-2] = y
    return xs.tolist(), ys.tolist()


def _spring_traces(state: dict, stretch_scale: float) -> list[Placed]:
    """Wall | spring p | spring a | arrow pulled by D_t; each spring's length = rest + scaled |ΔKL|."""
    rest = 1.0
    deform = state["deformation"]
    ext = {n: stretch_scale * abs(deform[n]) for n in ("p", "a")}
    out: list[Placed] = [(go.Scatter(x=[0, 0], y=[-0.6, 0.6], mode="lines", line=dict(color="black", width=6),
                                     hoverinfo="skip", showlegend=False), 1, 1)]
    x = 0.0
    for n in ("p", "a"):
        width = 1 + 3 * np.log10(1 + state["stiffness"][n]) / 6
        xs, ys = _zigzag(x, x + rest + ext[n], 0.0)
        out.append((go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=COLORS[n], width=width), name=LABELS[n],
                               hovertemplate=f"{LABELS[n]}: stiffness {state['stiffness'][n]:g}, ΔKL {deform[n]:.3g}<extra></extra>"),
                    1, 1))
        x += rest + ext[n]
        out.append((go.Scatter(x=[x], y=[0], mode="markers", marker=dict(size=12, color="gray"), showlegend=False,
                               hoverinfo="skip"), 1, 1))
    out.append((go.Scatter(x=[x, x + 0.6], y=[0, 0], mode="lines+markers",
                           marker=dict(symbol=["circle", "triangle-right"], size=[1, 16], color=COLORS["t"]),
                           line=dict(color=COLORS["t"], width=3), name="pull of D_t", hoverinfo="skip"), 1, 1))
    return out


def springs_slider(model: th.LeafModel, size_pairs: Sequence[tuple[float, float]], n_ts: Sequence[float], *,
                   model_depth: int | None = None, title: str | None = None) -> go.Figure:
    """Chapter 4's spring picture: two springs in series (D_p, D_a) pulled by the perturbation D_t.

    Left: the springs, each stretched by its computed ΔKL (KL(data‖model) after minus before, per
    token). Right: the force |D_i|·|ΔKL_i| of each spring, equal where Hooke's series law holds.
    Buttons choose (|D_p|, |D_a|), the slider the pull |D_t|; everything is precomputed by
    :func:`elasticity_lab.info.theory.spring_state`.
    """
    states = [[th.spring_state(model, n_p, n_a, n_t, model_depth) for n_t in n_ts] for n_p, n_a in size_pairs]
    max_a = max(abs(s["deformation"]["a"]) for row in states for s in row) or 1.0
    scale = 4.0 / max_a

    def make(i: int, j: int) -> list[Placed]:
        s = states[i][j]
        traces = _spring_traces(s, scale)
        forces = [abs(s["force"][n]) for n in ("p", "a")]
        traces.append((go.Bar(x=["|D_p|·|ΔKL_p|", "|D_a|·|ΔKL_a|"], y=forces, marker_color=[COLORS["p"], COLORS["a"]],
                              showlegend=False, text=[f"{f:.3g}" for f in forces], textposition="outside"), 1, 2))
        return traces

    fig = two_control_figure(make, [f"|D_p|={p:g}, |D_a|={a:g}" for p, a in size_pairs], [f"{t:g}" for t in n_ts],
                             outer_prefix="data set sizes:", inner_prefix="pull |D_t| = ", cols=2,
                             subplot_titles=["springs in series (length = rest + ΔKL)", "force = stiffness × deformation"],
                             inner_active=len(n_ts) // 2)
    fig.update_xaxes(range=[-0.3, 8.5], visible=False, row=1, col=1)
    fig.update_yaxes(range=[-1, 1], visible=False, row=1, col=1)
    fig.update_yaxes(title_text="bits per token × examples", rangemode="tozero", row=1, col=2)
    fig.update_layout(legend=dict(orientation="h", y=-0.15))
    return _room_for_buttons(styled(fig, title=title, height=520), title)


def invariant_vs_pull(n_ts: np.ndarray, forces: dict[str, np.ndarray], *, title: str | None = None) -> go.Figure:
    """|D_i|·|ΔKL_i| against the pull |D_t| for each data set and KL order: equal where the analogy holds."""
    fig = go.Figure()
    palette = {"p": COLORS["p"], "a": COLORS["a"]}
    for name, ys in forces.items():
        key = "p" if "D_p" in name else "a"
        dash = "dash" if "model‖data" in name else "solid"
        fig.add_scatter(x=n_ts, y=np.abs(ys), mode="lines", name=name, line=dict(color=palette[key], dash=dash))
    fig.update_layout(xaxis=dict(title="pull |D_t| (examples)", type="log"),
                      yaxis=dict(title="|D_i| · |ΔKL_i|", type="log"), legend=dict(orientation="h", y=-0.2))
    return styled(fig, title=title, height=460)
