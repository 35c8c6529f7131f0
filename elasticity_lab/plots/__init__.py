"""Plotly figure builders (one module per area) and the renderer that makes them show everywhere.

The static book has no kernel and no CDN. Jupyter Book keeps only MIME types it knows, and it
drops plotly's own ``application/vnd.plotly.v1+json``; so figures are emitted as that bundle
*plus* a ``text/html`` div that draws with the ``plotly.min.js`` the book serves once as a static
file. JupyterLab and VS Code pick the plotly MIME type, the book picks the HTML.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import plotly.graph_objects as go
import plotly.io as pio
from plotly.io._base_renderers import MimetypeRenderer

BOOK_RENDERER = "elasticity_book"
TEMPLATE = "plotly_white"


class _BookRenderer(MimetypeRenderer):
    """Plotly JSON for live frontends plus an HTML div (without plotly.js or MathJax) for the book."""

    def to_mimebundle(self, fig_dict: dict) -> dict:
        html = pio.to_html(
            fig_dict,
            include_plotlyjs=False,
            include_mathjax=False,
            full_html=False,
            validate=False,
            config={"responsive": True, "displaylogo": False},
        )
        plotly_json = json.loads(pio.to_json(fig_dict, validate=False))
        return {
            "application/vnd.plotly.v1+json": {**plotly_json, "config": {}},
            "text/html": html,
        }


def use_book_renderer() -> None:
    """Make the book renderer plotly's default (idempotent)."""
    if BOOK_RENDERER not in pio.renderers:
        pio.renderers[BOOK_RENDERER] = _BookRenderer()
    pio.renderers.default = BOOK_RENDERER
    pio.templates.default = TEMPLATE


def visibility_steps(group_of_trace: Sequence[int | None], labels: Sequence[object]) -> list[dict]:
    """Slider steps or dropdown buttons whose i-th entry shows only the traces of group i.

    ``group_of_trace[j]`` is the group of trace j (``None``: in no group, always hidden by a step).
    Plotly applies these without a kernel, so the figure stays interactive in the static book.
    """
    return [dict(method="update", label=str(label), args=[{"visible": [g == i for g in group_of_trace]}])
            for i, label in enumerate(labels)]


def styled(fig: go.Figure, *, title: str | None = None, height: int = 420) -> go.Figure:
    """Apply the book's common layout to a figure and return it."""
    fig.update_layout(template=TEMPLATE, height=height, margin=dict(l=60, r=20, t=60 if title else 30, b=50))
    if title:
        fig.update_layout(title=title)
    return fig
