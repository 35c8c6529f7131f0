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


RUNTIME_SCALES = ("smoke", "reader", "full")


def load_runtimes() -> dict:
    """The shipped run times (``elasticity_lab/assets/runtimes.json``, written by ``scripts/record_runtimes.py``)."""
    import json
    from importlib import resources

    return json.loads(resources.files("elasticity_lab").joinpath("assets", "runtimes.json").read_text("utf-8"))


def _duration(seconds: float) -> str:
    seconds = round(float(seconds))
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60:02d} s"


def _slower_smaller(held: dict, scales: list[str]) -> list[str]:
    """A note for each smaller scale that took longer than a larger one: a reader would otherwise trip on it."""
    def load(r: dict) -> str:
        x = r.get("load")
        return f"load average {x:.1f}" if isinstance(x, (int, float)) and x == x else "an unrecorded load"

    out = []
    timed = [s for s in scales if held.get(s)]
    for small, big in zip(timed, timed[1:]):
        a, b = held[small], held[big]
        if a["wall_s"] > b["wall_s"]:
            out.append(f"`{small}` runs less than `{big}` but took longer here: the two were measured in different builds "
                       f"(`{small}` under {load(a)}, `{big}` under {load(b)}), so these two times do not compare")
    return out


def runtime_markdown(chapter: str, what: dict[str, str], runtimes: dict | None = None) -> str:
    """A chapter's run-time table in Markdown: the measured time of each scale beside what runs there.

    ``what`` maps a scale to what runs at it (the chapter's own words); the times come from ``runtimes``
    (default: the shipped file) and read "not measured" where it holds none.
    """
    from elasticity_lab.core.config import check_choice

    for scale in what:
        check_choice("what", scale, RUNTIME_SCALES)
    held = (runtimes if runtimes is not None else load_runtimes()).get("chapters", {}).get(chapter, {})
    lines = ["| scale | what runs | time from an empty cache |", "|---|---|---|"]
    notes = []
    for scale in RUNTIME_SCALES:
        if scale not in what:
            continue
        r = held.get(scale)
        if not r:
            time_text = "not measured"
        else:
            time_text = _duration(r["wall_s"]) + (f" ({_duration(r['cpu_s'])} of CPU)" if r.get("cpu_s") is not None else "")
            at_once = f", {r['jobs']} chapters at a time" if r.get("jobs", 1) > 1 else ""
            load = r.get("load")
            at_once += f", load average {load:.1f}" if isinstance(load, (int, float)) and load == load else ""
            notes.append(f"`{scale}` on {r['date']} at commit `{r['commit']}`, {r['cpus']} cores{at_once}, by {r['runner']}"
                         + ("" if r.get("empty_cache", True) else " (from a warm cache: an underestimate)"))
        lines.append(f"| `{scale}` | {what[scale]} | {time_text} |")
    text = "**Run time** (wall-clock, the chapter executed with papermill from an empty results cache)\n\n" + "\n".join(lines)
    if notes:
        slower = "".join(f" {n[0].upper()}{n[1:]}." for n in _slower_smaller(held, [s for s in RUNTIME_SCALES if s in what]))
        text += ("\n\nMeasured " + "; ".join(notes) + "." + slower + " On a machine busier than its cores (a load average "
                 "above the core count) the CPU time is the steadier number. A second run reads its results from the cache in "
                 "seconds. `scripts/record_runtimes.py` writes these numbers from the build; none is typed by hand.")
    return text


def runtime_table(chapter: str, what: dict[str, str]):
    """The run-time table a chapter shows under its opening text (a ``remove-input`` cell): see :func:`runtime_markdown`."""
    from IPython.display import Markdown

    return Markdown(runtime_markdown(chapter, what))
