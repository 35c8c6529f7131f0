"""Live controls of chapter 1."""

from __future__ import annotations

import math

import ipywidgets as W


def describe_code_length(p: float) -> str:
    """One line: the ideal and the whole-bit (Shannon) code length of a symbol of probability p."""
    if not 0 < p <= 1:
        raise ValueError(f"p={p!r} is not allowed; it must be in (0, 1].")
    bits = -math.log2(p)
    return f"p = {p:.3f}: ideal code length −log2 p = {bits:.3f} bits; a Shannon code uses ⌈{bits:.3f}⌉ = {math.ceil(bits - 1e-12)} bits"


def code_length_explorer(p: float = 0.25) -> W.VBox:
    """A slider over p and the code length it implies (recomputed live in a notebook)."""
    slider = W.FloatLogSlider(value=p, base=10, min=-3, max=0, step=0.01, description="p", readout_format=".3f")
    out = W.Output()

    def show(change: dict | None = None) -> None:
        out.clear_output(wait=True)
        with out:
            print(describe_code_length(slider.value))

    slider.observe(show, names="value")
    show()
    return W.VBox([slider, out])
