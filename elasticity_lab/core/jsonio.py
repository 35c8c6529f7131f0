"""JSON that is valid everywhere: numpy scalars made plain, NaN and ±inf written as null.

Why: ``json.dumps`` writes ``NaN`` and ``Infinity``, which are not JSON; a table with a control that
was not run, or a theorem evaluated at k = 1e200, must still give a file every parser reads.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


def jsonable(x: Any) -> Any:
    """``x`` with dicts' keys as strings, tuples as lists, numpy scalars as Python ones and non-finite floats as None."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        v = float(x)
        return v if math.isfinite(v) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    return x


def dumps(x: Any, **kwargs: Any) -> str:
    """Strict JSON text of ``x`` (``allow_nan=False``: a stray non-finite number fails loudly instead of writing NaN)."""
    return json.dumps(jsonable(x), allow_nan=False, **kwargs)
