"""Progress bars: one helper, so that every bar of the library obeys ``TQDM_DISABLE``.

tqdm reads ``TQDM_DISABLE`` only when ``disable`` is not passed, and the library passes it (to
honour ``progress=False``): so without this helper ``load_model`` printed its pre-training bar in
the book and the tests, which set ``TQDM_DISABLE=1``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from elasticity_lab.core import ranks

DISABLE_ENV_VAR = "TQDM_DISABLE"


def progress_disabled() -> bool:
    """Whether ``$TQDM_DISABLE`` asks for no bars (any value but empty, ``0``, ``false``, ``no``, ``off``)."""
    return os.environ.get(DISABLE_ENV_VAR, "").strip().lower() not in ("", "0", "false", "no", "off")


def progress_bar(iterable: Iterable[Any] | None = None, *, enabled: bool = True, **kwargs: Any) -> Any:
    """A ``tqdm.auto`` bar, shown only if ``enabled``, ``$TQDM_DISABLE`` is not set and this is the main rank (one bar,
    not one a rank, under ``accelerate launch``); ``kwargs`` go to tqdm."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not enabled or progress_disabled() or not ranks.is_main(), **kwargs)
