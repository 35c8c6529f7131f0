"""Figures of chapter 7: rebound curves with seed bands and fitted stages, the KL table next to the
paper's, the reversed order, the controls, the attractor test, and a slider over N_a.

Every interactive control is plotly's own (sliders, buttons), so the figures stay interactive in
the static book, which has no kernel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from elasticity_lab.plots import styled, visibility_steps

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]
METRIC_LABEL = {"rule": "aligned share of sampled answers (rule)", "likelihood": "likelihood score P(aligned)/(P(aligned)+P(unaligned))"}
TASK_LABEL = {"safety": "safety: refusal of harmful requests", "sentiment": "sentiment: positive continuations"}


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    return f"rgba({int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{alpha})"


def _colors(curves: pd.DataFrame) -> dict[int, str]:
    """One colour per N_a across every figure of the chapter (so N_a = 640 is the same colour everywhere)."""
    return {int(na): PALETTE[i % len(PALETTE)] for i, na in enumerate(sorted(curves["n_align"].unique()))}


def _select(curves: pd.DataFrame, *, study: str, task: str, base_kind: str | None = None) -> pd.DataFrame:
    sub = curves[(curves["study"] == study) & (curves["task"] == task)]
    return sub if base_kind is None else sub[sub["base_kind"] == base_kind]


def _band_traces(g: pd.DataFrame, metric: str, color: str, name: str, *, legendgroup: str, showlegend: bool = True) -> list[go.Scatter]:
    """Mean over seeds as a line, ± one standard deviation as a shaded band."""
    s = g.groupby("n")[metric].agg(["mean", "std", "count"]).reset_index().fillna({"std": 0.0})
    x = s["n"].tolist()
    lo, hi = (s["mean"] - s["std"]).tolist(), (s["mean"] + s["std"]).tolist()
    seeds = int(s["count"].max()) if len(s) else 0
    return [
        go.Scatter(x=x + x[::-1], y=hi + lo[::-1], mode="lines", fill="toself", fillcolor=_rgba(color, 0.15), line=dict(width=0),
                   hoverinfo="skip", showlegend=False, legendgroup=legendgroup, name=f"{name} ± std"),
        go.Scatter(x=x, y=s["mean"], mode="lines+markers", line=dict(color=color), name=name, legendgroup=legendgroup,
                   showlegend=showlegend,
                   hovertemplate=f"{name}<br>n = %{{x}}<br>mean = %{{y:.3f}} (over {seeds} seeds)<extra></extra>"),
    ]


def _fit_trace(fits: pd.DataFrame, n_max: float, color: str, name: str, legendgroup: str) -> go.Scatter | None:
    """The plateau fit y = c + (y0 − c)·exp(−n/τ) with the seed-averaged parameters, dotted (c: where it settles)."""
    if fits.empty or "plateau" not in fits.columns or not np.isfinite(fits["plateau"]).any():
        return None
    y0, c, tau = (float(np.nanmean(fits[k])) for k in ("y0", "plateau", "tau"))
    x = np.linspace(0.0, n_max, 60)
    y = c + (y0 - c) * np.exp(-x / tau)
    return go.Scatter(x=x, y=y, mode="lines", line=dict(color=color, dash="dot", width=1.5), legendgroup=legendgroup,
                      showlegend=False, name=f"{name}: fitted plateau",
                      hovertemplate=f"{name} fit: settles at {c:.2f}, time constant τ ≈ {tau:.0f} examples<extra></extra>")


def rebound_figure(curves: pd.DataFrame, task: str, *, metric: str = "rule", study: str = "main", base_kind: str = "pretrained",
                   fits: pd.DataFrame | None = None, title: str | None = None) -> go.Figure:
    """The paper's figure: x = examples in stage 2, y = score, one line per N_a (band: ± std over seeds),
    the base model's own level dashed; with ``fits``, the fitted two stages dotted."""
    sub = _select(curves, study=study, task=task, base_kind=base_kind)
    fig = go.Figure()
    colors = _colors(curves)
    for na, g in sub.groupby("n_align"):
        color = colors[int(na)]
        name = f"N_a = {na}"
        for t in _band_traces(g, metric, color, name, legendgroup=name):
            fig.add_trace(t)
        if fits is not None:
            f = fits[(fits["study"] == study) & (fits["task"] == task) & (fits["base_kind"] == base_kind)
                     & (fits["n_align"] == na) & (fits["metric"] == metric)]
            t = _fit_trace(f, float(g["n"].max()), color, name, name)
            if t is not None:
                fig.add_trace(t)
    if len(sub):
        base = float(sub[f"base_{metric}"].mean())
        fig.add_hline(y=base, line_dash="dash", line_color="black", annotation_text="base model", annotation_position="top right")
    second = "negative" if study != "reversed" else "positive"
    fig.update_xaxes(title=f"{second} examples in stage 2 (n)")
    fig.update_yaxes(title=METRIC_LABEL[metric], range=[-0.03, 1.03])
    default = f"{TASK_LABEL[task]}: {'reversed order' if study == 'reversed' else 'rebound'} ({base_kind} base)"
    return styled(fig, title=title or default, height=440)


def n_align_slider_figure(curves: pd.DataFrame, task: str, *, metric: str = "rule", study: str = "main",
                          base_kind: str = "pretrained", title: str | None = None) -> go.Figure:
    """One N_a at a time, chosen with a plotly slider (works in the static book): its curve with the seed
    band and every seed's own curve, against the base's level."""
    sub = _select(curves, study=study, task=task, base_kind=base_kind)
    sizes = sorted(sub["n_align"].unique())
    fig = go.Figure()
    groups: list[list[int]] = []
    colors = _colors(curves)
    for na in sizes:
        g = sub[sub["n_align"] == na]
        color = colors[int(na)]
        idx = []
        for t in _band_traces(g, metric, color, f"N_a = {na}: mean", legendgroup=str(na)):
            idx.append(len(fig.data))
            fig.add_trace(t)
        for seed, s in g.groupby("seed"):
            idx.append(len(fig.data))
            fig.add_trace(go.Scatter(x=s["n"], y=s[metric], mode="lines", line=dict(color=color, width=1), opacity=0.45,
                                     name=f"seed {seed}", legendgroup=str(na), showlegend=False))
        groups.append(idx)
    n_traces = len(fig.data)
    owner: list[int | None] = [None] * n_traces
    for i, idx in enumerate(groups):
        for j in idx:
            owner[j] = i
    steps = visibility_steps(owner, sizes)
    active = (len(sizes) - 1) // 2  # opens mid-way, so the slider can move either way (the book's slider check moves it right)
    for j in range(n_traces):
        fig.data[j].visible = j in groups[active] if sizes else True
    if len(sub):
        fig.add_hline(y=float(sub[f"base_{metric}"].mean()), line_dash="dash", line_color="black", annotation_text="base model")
    fig.update_layout(sliders=[dict(active=active, steps=steps, currentvalue=dict(prefix="N_a (positive examples in stage 1): "), pad=dict(t=50))])
    fig.update_xaxes(title="negative examples in stage 2 (n)")
    fig.update_yaxes(title=METRIC_LABEL[metric], range=[-0.03, 1.03])
    return styled(fig, title=title or f"{TASK_LABEL[task]}: pick N_a with the slider (thin lines: single seeds)", height=480)


def rate_figure(fits: pd.DataFrame, task: str, *, metric: str = "rule", value: str = "n_half", title: str | None = None) -> go.Figure:
    """``value`` (n-to-halfway or early slope) against N_a, mean ± std over seeds, for every study and base kind:
    "more alignment, faster rebound" at one epoch, at fixed steps, and from random or lightly pre-trained bases."""
    f = fits[(fits["task"] == task) & (fits["metric"] == metric) & (fits["order"] == "forward")]
    fig = go.Figure()
    labels = {("main", "pretrained"): "pre-trained, one epoch", ("fixed_steps", "pretrained"): "pre-trained, fixed steps",
              ("control", "light"): "lightly pre-trained", ("control", "random"): "random init"}
    for i, ((study, kind), g) in enumerate(f.groupby(["study", "base_kind"], sort=False)):
        s = g.groupby("n_align")[value].agg(["mean", "std"]).reset_index().fillna({"std": 0.0})
        name = labels.get((study, kind), f"{study}, {kind}")
        if study == "control":  # how far stage 1 moved this base: a control that was never aligned cannot rebound
            name += f" (stage 1 moved it by {float((g['start'] - g['base_level']).abs().mean()):.2f})"
        fig.add_trace(go.Scatter(x=s["n_align"], y=s["mean"], error_y=dict(type="data", array=s["std"]), mode="lines+markers",
                                 name=name, line=dict(color=PALETTE[i % len(PALETTE)])))
    ticks = sorted(f["n_align"].unique())
    fig.update_xaxes(type="log", title="N_a (positive examples in stage 1)", tickvals=ticks, ticktext=[str(t) for t in ticks])
    ytitle = {"n_half": "negative examples to fall halfway to the base level", "early_slope": "early slope (score per negative example)",
              "kl_stage1": "KL to the base after stage 1 (nats per token)"}.get(value, value)
    fig.update_yaxes(title=ytitle)
    return styled(fig, title=title or f"{TASK_LABEL[task]}: does more alignment rebound faster?")


def kl_table_figure(kl: pd.DataFrame, paper: pd.DataFrame, *, title: str = "KL to the base after alignment, and negative examples to bring it below ε") -> go.Figure:
    """Our Table-3 analogue (mean ± std over seeds) beside the paper's numbers, labelled as quoted."""
    fig = make_subplots(rows=1, cols=2, specs=[[{"type": "table"}, {"type": "table"}]], column_widths=[0.58, 0.42],
                        subplot_titles=("This book's micro-world (measured)", "Ji et al. 2025, Table 3 (quoted from the paper)"))
    def n_eps(r: pd.Series) -> str:
        if r["reached"] == 0:
            return f"not reached (0/{int(r['seeds'])})"
        return f"{r['n_to_epsilon_text']} ({int(r['reached'])}/{int(r['seeds'])})"

    fig.add_trace(go.Table(
        header=dict(values=["task", "N_a", "KL after alignment [95 % interval]", "ε of these curves", "lowest KL in stage 2",
                            "n to KL < ε (curves reaching)"], align="left"),
        cells=dict(values=[kl["task"], kl["n_align"], kl["kl_stage1_text"], [f"{m:.4f}" for m in kl["epsilon_mean"]], kl["kl_min_text"],
                           [n_eps(r) for _, r in kl.iterrows()]], align="left"), columnwidth=[1.0, 0.6, 1.7, 0.9, 1.7, 1.7]), row=1, col=1)
    fig.add_trace(go.Table(
        header=dict(values=["model", "N_a", "KL after alignment", "n to KL < 0.01"], align="left"),
        cells=dict(values=[paper["model"], paper["n_align"], [f"{x:.2f}" for x in paper["kl_after_alignment"]],
                           paper["negative_examples_to_epsilon"]], align="left")), row=1, col=2)
    return styled(fig, title=title, height=170 + 30 * max(len(kl), len(paper)))


def controls_figure(curves: pd.DataFrame, task: str, *, metric: str = "rule", title: str | None = None) -> go.Figure:
    """The same protocol from a pre-trained, a lightly pre-trained and a random-init base, side by side."""
    kinds = [("main", "pretrained", "pre-trained")] + [("control", k, {"light": "lightly pre-trained", "random": "random init"}[k])
                                                       for k in ("light", "random") if ((curves["study"] == "control") & (curves["base_kind"] == k)).any()]
    fig = make_subplots(rows=1, cols=len(kinds), shared_yaxes=True, subplot_titles=[k[2] for k in kinds])
    colors = _colors(curves)
    for c, (study, kind, _) in enumerate(kinds, start=1):
        sub = _select(curves, study=study, task=task, base_kind=kind)
        for na, g in sub.groupby("n_align"):
            for t in _band_traces(g, metric, colors[int(na)], f"N_a = {na}", legendgroup=str(na), showlegend=c == 1):
                fig.add_trace(t, row=1, col=c)
        if len(sub):
            fig.add_hline(y=float(sub[f"base_{metric}"].mean()), line_dash="dash", line_color="black", row=1, col=c)
        fig.update_xaxes(title="negative examples (n)", row=1, col=c)
    fig.update_yaxes(title=METRIC_LABEL[metric], range=[-0.03, 1.03], row=1, col=1)
    return styled(fig, title=title or f"{TASK_LABEL[task]}: the rebound with and without pre-training (dashed: each base's own level)", height=440)


def attractor_figure(levels: pd.DataFrame, slopes: pd.DataFrame, *, metric: str = "rule", perturbation: str = "neutral",
                     title: str | None = None) -> go.Figure:
    """Settling level after a perturbation against the world's base rate, per base kind and direction.

    The diagonal is settling at the base rate (slope 1), a flat line no dependence on it (slope 0). Markers: mean ±
    std over seeds.
    """
    lv = levels[levels["metric"] == metric]
    sl = slopes[slopes["metric"] == metric] if len(slopes) else slopes
    if "perturbation" in lv.columns:
        lv = lv[lv["perturbation"] == perturbation]
        sl = sl[sl["perturbation"] == perturbation] if len(sl) else sl
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="grey", dash="dash"), name="settles at its base rate (slope 1)"))
    names = {"pretrained": "pre-trained", "light": "lightly pre-trained", "random": "random init"}
    for i, ((kind, direction), g) in enumerate(lv.groupby(["base_kind", "direction"], sort=False)):
        s = g.groupby("base_rate")["settled"].agg(["mean", "std"]).reset_index().fillna({"std": 0.0})
        row = sl[(sl["base_kind"] == kind) & (sl["direction"] == direction)] if len(sl) else sl
        slope = f", slope {row['slope_text'].iloc[0]}" if len(row) and "slope_text" in row.columns else \
            (f", slope {row['slope_mean'].iloc[0]:.2f} ± {row['slope_std'].iloc[0]:.2f}" if len(row) else "")
        fig.add_trace(go.Scatter(x=s["base_rate"], y=s["mean"], error_y=dict(type="data", array=s["std"]), mode="lines+markers",
                                 marker=dict(symbol="triangle-down" if direction == "above" else "triangle-up", size=11),
                                 line=dict(color=PALETTE[["pretrained", "light", "random"].index(kind) if kind in names else i],
                                           dash="solid" if direction == "above" else "dot"),
                                 name=f"{names.get(kind, kind)}, aligned {'to refuse (from above)' if direction == 'above' else 'to comply (from below)'}{slope}"))
    fig.update_xaxes(title="share of harmful requests refused in the pre-training text (base rate)", range=[0, 1])
    fig.update_yaxes(title=f"settling level: {METRIC_LABEL[metric]}", range=[-0.03, 1.03])
    fig.update_layout(legend=dict(yanchor="top", y=-0.2, xanchor="left", x=0))
    return styled(fig, title=title or f"The attractor test ({perturbation.replace('_', ' ')}): where do displaced models settle?", height=560)


def attractor_curves_figure(attractor: pd.DataFrame, *, metric: str = "rule", base_kind: str = "pretrained",
                            perturbation: str = "neutral", title: str | None = None) -> go.Figure:
    """The perturbation curves behind the attractor plot: harmful-request refusal against perturbation examples, per world."""
    sub = attractor[attractor["base_kind"] == base_kind]
    if "perturbation" in sub.columns:
        sub = sub[sub["perturbation"] == perturbation]
    fig = go.Figure()
    for i, ((rate, direction), g) in enumerate(sub.groupby(["base_rate", "direction"])):
        color = PALETTE[sorted(sub["base_rate"].unique()).index(rate) % len(PALETTE)]
        name = f"base rate {rate:g}, from {direction}"
        for t in _band_traces(g, metric, color, name, legendgroup=name):
            if direction == "below" and t.showlegend is not False:
                t.line.dash = "dot"
            fig.add_trace(t)
        fig.add_hline(y=rate, line_dash="dash", line_color=color, opacity=0.4)
    fig.update_xaxes(title=f"examples of the {perturbation.replace('_', ' ')} perturbation (n)")
    fig.update_yaxes(title=METRIC_LABEL[metric], range=[-0.03, 1.03])
    return styled(fig, title=title or f"Harmful-request refusal under the {perturbation.replace('_', ' ')} perturbation ({base_kind} bases)", height=460)


def budget_figure(seconds: pd.Series, *, title: str = "Where this chapter's compute went (seconds of fine-tuning and scoring)") -> go.Figure:
    """A bar per study: how the run-time budget was spent across tasks, seeds and controls."""
    fig = go.Figure(go.Bar(x=list(seconds.index), y=list(seconds.values), text=[f"{v:.0f} s" for v in seconds.values], textposition="auto"))
    fig.update_yaxes(title="seconds (as measured when the curves were computed)")
    return styled(fig, title=title, height=360)


def verdict_table(rows: Sequence[dict]) -> pd.DataFrame:
    """The verdicts as a table for display: each answer in words (shows / does not show / undecided / not run;
    survives / does not survive / n/a), the estimate with its 95 % interval, and the evidence."""
    def word(x: object) -> str:
        if isinstance(x, str):
            return x
        return "not run" if x is None or (isinstance(x, float) and not np.isfinite(x)) else ("shows" if x else "does not show")

    return pd.DataFrame([{"finding": r["finding"], "shows here": word(r["shows"]), "survives its controls": word(r["survives_controls"]),
                          "estimate [95 % interval]": r.get("estimate", ""), "evidence (measured)": r["evidence"]} for r in rows])
