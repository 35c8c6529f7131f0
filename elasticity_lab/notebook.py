"""What every chapter calls once, in the cell after its parameters cell."""

from __future__ import annotations

import random
import sys

import numpy as np

from elasticity_lab.core.config import resolve_scale


def in_colab() -> bool:
    """True inside Google Colab, where plotly needs its own renderer and the package its install cell."""
    return "google.colab" in sys.modules


def setup(scale: str | None = None, seed: int = 0, *, quiet: bool = False) -> str:
    """Resolve the chapter's scale (``$ELASTICITY_SCALE`` wins), seed numpy/random (and torch where it is loaded), and make
    plotly figures render both in live notebooks and in the static book. Returns the scale."""
    from elasticity_lab.plots import use_book_renderer

    scale = resolve_scale(scale)
    random.seed(seed)
    np.random.seed(seed)
    if "torch" in sys.modules:  # the model chapters import it before setup; the theory chapters never need it, and
        sys.modules["torch"].manual_seed(seed)  # importing it here only for a seed would cost them seconds per start
    if not in_colab():
        use_book_renderer()
    if not quiet:
        print(f"scale = {scale!r}, seed = {seed}")
    return scale
