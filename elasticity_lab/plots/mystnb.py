"""A myst-nb MIME renderer plugin (entry point ``myst_nb.mime_renderers``) for the book build.

The book renderer (:mod:`elasticity_lab.plots`) emits every figure twice: plotly's JSON for live
frontends and an HTML div for the book. myst-nb does not know plotly's JSON MIME type and warns
about it, which fails a ``--warningiserror`` build although the HTML twin renders. This plugin
accepts that MIME type and renders nothing for it; a bundle without the HTML twin would still
produce no figure, and the browser test (every ``.js-plotly-plot`` must hold an SVG) catches it.
"""

from __future__ import annotations

from typing import Any

PLOTLY_MIME = "application/vnd.plotly.v1+json"


class PlotlyJsonTwin:
    """Render plotly's JSON output as nothing: its ``text/html`` twin is what the book shows."""

    mime_priority_overrides = [("html", PLOTLY_MIME, None)]

    @staticmethod
    def handle_mime(renderer: Any, data: Any, inline: bool) -> list | None:
        return [] if data.mime_type == PLOTLY_MIME else None
