"""ipywidgets controls for live notebooks, one module per area.

In the static book a widget has no kernel: its controls move but nothing recomputes. Every
control here therefore has a plotly-slider twin in :mod:`elasticity_lab.plots` for the book.
"""
