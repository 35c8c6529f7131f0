"""Figures of chapter 9: protection against cost per mitigation (with intervals), and the rebound curves of a family.

Both take the study's tables (:func:`elasticity_lab.experiments.mitigation.summary_table` and the raw curves);
plotly's own legend toggles the families, so the figures stay interactive in the static book.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from elasticity_lab.plots import styled

FAMILY_COLOR = {"baseline": "#444444", "alignment data": "#1f77b4", "pre-training": "#2ca02c", "later fine-tuning": "#d62728"}
COST_LABEL = {"cost_bits": "cost: Δ bits per token on held-out pre-training text (after the perturbation)",
              "cost_other": "cost: drop of the other tasks' likelihood score"}


def protection_cost_figure(table: pd.DataFrame, *, cost: str = "cost_bits", title: str | None = None) -> go.Figure:
    """One point per mitigation: x = its cost, y = its protection (Δ area under the rebound curve against ``none``),
    each with its 95 % interval over seeds. Up is protection; right is cost; ``none`` sits at the origin."""
    if cost not in COST_LABEL:
        raise ValueError(f"cost={cost!r} is not allowed; choose from {', '.join(COST_LABEL)}.")
    fig = go.Figure()
    for family, g in table.groupby("family", sort=False):
        fig.add_trace(go.Scatter(
            x=g[cost], y=g["protection"], mode="markers+text", text=g["mitigation"], textposition="top center",
            name=family, marker=dict(size=10, color=FAMILY_COLOR.get(family, "#7f7f7f")),
            error_x=dict(type="data", symmetric=False, array=(g[f"{cost}_high"] - g[cost]).tolist(),
                         arrayminus=(g[cost] - g[f"{cost}_low"]).tolist(), thickness=1),
            error_y=dict(type="data", symmetric=False, array=(g["protection_high"] - g["protection"]).tolist(),
                         arrayminus=(g["protection"] - g["protection_low"]).tolist(), thickness=1),
            customdata=g[["auc", "end", "seeds"]].to_numpy(),
            hovertemplate="%{text}<br>protection Δ area = %{y:+.3f}<br>cost = %{x:+.3f}<br>mean area %{customdata[0]:.3f}, "
                          "level after the perturbation %{customdata[1]:.3f}<br>%{customdata[2]} seeds<extra></extra>"))
    fig.add_hline(y=0, line=dict(color="#999", dash="dot"))
    fig.add_vline(x=0, line=dict(color="#999", dash="dot"))
    fig.update_xaxes(title=COST_LABEL[cost])
    fig.update_yaxes(title="protection: Δ area under the rebound curve (aligned share) against none")
    return styled(fig, title=title or "What each mitigation buys (up) and what it costs (right), 95 % intervals over seeds",
                  height=520)


def mitigation_curves_figure(curves: pd.DataFrame, mitigations: list[str] | None = None, *, metric: str = "rule",
                             title: str | None = None) -> go.Figure:
    """Mean rebound curve over seeds per mitigation (``none`` dashed), with the base's own level dotted."""
    names = mitigations or list(dict.fromkeys(curves["mitigation"]))
    fig = go.Figure()
    for name in names:
        g = curves[curves["mitigation"] == name]
        if g.empty:
            continue
        s = g.groupby("n")[metric].mean().reset_index()
        family = g["family"].iloc[0]
        fig.add_trace(go.Scatter(x=s["n"], y=s[metric], mode="lines+markers", name=name,
                                 line=dict(dash="dash" if name == "none" else "solid", color=FAMILY_COLOR["baseline"] if name == "none" else None),
                                 legendgroup=family, hovertemplate=f"{name}<br>n = %{{x}}<br>mean = %{{y:.3f}}<extra></extra>"))
    base = curves[curves["mitigation"] == "none"][f"base_{metric}"]
    if len(base):
        fig.add_hline(y=float(base.mean()), line=dict(color="#999", dash="dot"), annotation_text="base model's level (none)")
    fig.update_xaxes(title="compliant examples in the perturbation (n)")
    fig.update_yaxes(title="aligned share of sampled answers (rule)", range=[-0.02, 1.02])
    return styled(fig, title=title or "Rebound curves under the same perturbation", height=440)
