"""Scales and parameter validation shared by every experiment and chapter.

A chapter reads its scale from the papermill ``parameters`` cell; the
``ELASTICITY_SCALE`` environment variable overrides it so that a whole book can be
built at another scale without editing any notebook.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

SCALES: tuple[str, ...] = ("smoke", "reader", "full")
"""``smoke``: seconds, for CI. ``reader``: the default, the whole book in minutes on a
laptop CPU. ``full``: a GPU, large micro-world presets and hub models where reachable."""

DEFAULT_SCALE = "reader"
SCALE_ENV_VAR = "ELASTICITY_SCALE"


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``; otherwise raise a ValueError naming both."""
    allowed = tuple(allowed)
    try:
        ok = any(value is a or (not isinstance(value, (bool, np.bool_)) and bool(value == a)) for a in allowed)
    except (TypeError, ValueError):  # e.g. an array, whose == is elementwise
        ok = False
    if not ok:
        raise ValueError(f"{name}={_show(value)} is not allowed; choose one of {', '.join(map(repr, allowed))}.")
    return value


# --------------------------------------------------------------------------- numbers
#
# Why strict checks: ``nan > 0`` is False but ``inf > 0`` is True, ``True`` is an int, and a string
# compared with a number raises a TypeError deep inside numpy or torch. Every public entry point checks
# its numbers here, so that a bad value fails in one sentence (parameter, value, what is allowed)
# before anything is generated, trained or written.


def show_value(value: Any) -> str:
    """``repr`` of a value, cut to one short line (a huge list must not flood the message)."""
    if isinstance(value, np.ndarray) and value.ndim != 1:
        return f"an array of shape {value.shape}"
    text = " ".join(repr(value).split())
    return text if len(text) <= 80 else text[:77] + "..."


_show = show_value


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_finite(name: str, value: Any, what: str = "a finite number") -> float:
    """Return ``value`` if it is a real number (not a bool) that is finite; otherwise raise a ValueError."""
    if not _is_number(value) or not math.isfinite(float(value)):
        raise ValueError(f"{name}={_show(value)} is not allowed; it must be {what}.")
    return value


def check_range(name: str, value: Any, lo: float | None = None, hi: float | None = None, *,
                lo_open: bool = False, hi_open: bool = False, why: str = "") -> float:
    """Return ``value`` if it is a finite real number within ``[lo, hi]`` (``lo_open``/``hi_open``: excluded).

    ``None`` bounds are unbounded; ``why`` is appended to the sentence (what the bound protects).
    """
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo:g}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {hi:g}")
    what = "a finite number" + (" " + " and ".join(parts) if parts else "")
    tail = f" ({why})" if why else ""
    check_finite(name, value, what + tail)
    v = float(value)
    if (lo is not None and (v <= lo if lo_open else v < lo)) or (hi is not None and (v >= hi if hi_open else v > hi)):
        raise ValueError(f"{name}={_show(value)} is not allowed; it must be {what}{tail}.")
    return value


def check_int(name: str, value: Any, lo: int | None = None, hi: int | None = None, *, why: str = "") -> int:
    """Return ``value`` if it is an integer (``int`` or numpy integer, not a bool) in ``[lo, hi]``; else a ValueError."""
    parts = []
    if lo is not None:
        parts.append(f">= {lo:,}" if abs(lo) >= 10_000 else f">= {lo}")
    if hi is not None:
        parts.append(f"<= {hi:,}" if abs(hi) >= 10_000 else f"<= {hi}")
    what = "an integer" + (" " + " and ".join(parts) if parts else "") + (f" ({why})" if why else "")
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}={_show(value)} is not allowed; it must be {what}.")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"{name}={_show(value)} is not allowed; it must be {what}.")
    return value


def check_positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """Return ``value`` if it is a finite number > 0 (or >= 0 with ``allow_zero``); otherwise raise a ValueError."""
    return check_range(name, value, 0, lo_open=not allow_zero)


def check_probability(name: str, value: Any, *, open_low: bool = False, open_high: bool = False) -> float:
    """Return ``value`` if it is a number in [0, 1] (ends excluded on request); otherwise raise a ValueError."""
    return check_range(name, value, 0, 1, lo_open=open_low, hi_open=open_high)


def check_betas(name: str, value: Any) -> tuple[float, float]:
    """Adam's betas: a pair of numbers, each in [0, 1)."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name}={_show(value)} is not allowed; it must be a pair (beta1, beta2), each in [0, 1).")
    for v in value:
        check_range(name, v, 0, 1, hi_open=True, why="each of the pair")
    return value


def check_str(name: str, value: Any, what: str = "a non-empty string") -> str:
    """Return ``value`` if it is a non-empty string; otherwise raise a ValueError."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name}={_show(value)} is not allowed; it must be {what}.")
    return value


def check_seed(name: str, value: Any) -> int:
    """A random seed: an integer from 0 to 2**32 - 1 (numpy's and torch's common range)."""
    return check_int(name, value, 0, 2**32 - 1)


def check_output_path(name: str, path: Any) -> Path:
    """The path a command will write to, checked *before* the work: its folder exists and is a folder,
    and the path itself is not a folder. Returns it as a :class:`~pathlib.Path`."""
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ValueError(f"{name}={_show(path)} is not allowed; it must be a file path.")
    p = Path(path).expanduser()
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise ValueError(f"{name}={str(path)!r} is not allowed; it is a folder, give a file path in it.")
    for up in (parent, *parent.parents):
        if up.exists() and not up.is_dir():
            raise ValueError(f"{name}={str(path)!r} is not allowed; {str(up)!r} is a file, not a folder.")
    if not parent.is_dir():
        raise ValueError(f"{name}={str(path)!r} is not allowed; its folder {str(parent)!r} does not exist (create it first).")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"{name}={str(path)!r} is not allowed; its folder {str(parent)!r} is not writable.")
    return p


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
