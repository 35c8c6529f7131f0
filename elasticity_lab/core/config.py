"""Scales and parameter validation shared by every experiment and chapter.

A chapter reads its scale from the papermill ``parameters`` cell; the
``ELASTICITY_SCALE`` environment variable overrides it so that a whole book can be
built at another scale without editing any notebook.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

SCALES: tuple[str, ...] = ("smoke", "reader", "full")
"""``smoke``: seconds, for CI. ``reader``: the default, the whole book in minutes on a
laptop CPU. ``full``: a GPU, large micro-world presets and hub models where reachable."""

DEFAULT_SCALE = "reader"
SCALE_ENV_VAR = "ELASTICITY_SCALE"


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``; otherwise raise a ValueError naming both."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed; choose one of {', '.join(map(repr, allowed))}.")
    return value


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Return ``value`` if it is > 0 (or >= 0 with ``allow_zero``); otherwise raise a ValueError."""
    ok = value >= 0 if allow_zero else value > 0
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}={value!r} is not allowed; it must be {bound}.")
    return value


def resolve_scale(scale: str | None = None) -> str:
    """The scale a chapter runs at: ``$ELASTICITY_SCALE`` if set, else ``scale``, else ``reader``.

    The environment wins so that ``ELASTICITY_SCALE=smoke jupyter-book build .`` builds a
    quick book from unmodified notebooks.
    """
    env = os.environ.get(SCALE_ENV_VAR, "").strip()
    chosen = env or scale or DEFAULT_SCALE
    source = SCALE_ENV_VAR if env else "scale"
    return check_choice(source, chosen, SCALES)


def by_scale(scale: str, *, smoke: Any, reader: Any, full: Any) -> Any:
    """Pick the value for ``scale`` out of the three, so that derived sizes read as one line each."""
    return {"smoke": smoke, "reader": reader, "full": full}[check_choice("scale", scale, SCALES)]
