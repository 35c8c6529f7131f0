"""Checks of the verdict machinery itself: can it say "survives", and which verdicts hang on the learning rate?

Why: a verdict that never says yes is as useless as one that always does. :func:`builtin_attractor_check`
runs the attractor test on a system that *has* an attractor by construction (stage 2 replays the base
model's own answers, so each model is pulled back toward its own pre-trained behaviour) through the
same verdict code as the study; :func:`lr_sweep` repeats the paper's protocol for one task at several
learning rates (down toward the paper's 1e-5) and says which verdicts change with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pandas as pd

from elasticity_lab.core.config import check_choice, check_positive
from elasticity_lab.experiments.rebound.config import METRICS, TASKS, ReboundConfig
from elasticity_lab.experiments.rebound.runs import _Runner, analyse_attractor, attractor_plan, run_rebound
from elasticity_lab.experiments.rebound.verdicts import attractor_verdicts, lr_dependence, rebound_verdicts


def builtin_attractor_check(config: ReboundConfig, *, directions: Sequence[str] | None = None,
                            progress: bool = False) -> dict[str, Any]:
    """The attractor test with the ``replay`` perturbation (a built-in attractor), through :func:`attractor_verdicts`.

    Returns ``attractor`` (curves), ``levels``, ``slopes`` and ``verdicts`` (metric → rows). Curves are cached
    like the study's. ``directions`` restricts the arms (the chapter runs one, to fit its budget).
    """
    cfg = dataclasses.replace(config, attractor_perturbations=("replay",),
                              attractor_directions=tuple(directions) if directions is not None else config.attractor_directions)
    runner = _Runner(cfg, progress)
    parts = [runner.attractor_curve(*a) for a in attractor_plan(cfg)]
    if not parts:
        raise ValueError("the built-in-attractor check needs the micro-world and attractor_rates; this config has neither.")
    attractor = pd.concat(parts, ignore_index=True)
    levels, slopes = analyse_attractor(attractor)
    return {"attractor": attractor, "levels": levels, "slopes": slopes,
            "verdicts": {m: attractor_verdicts(slopes, metric=m) for m in METRICS}}


def lr_sweep(config: ReboundConfig, lrs: Sequence[float] | None = None, *, task: str = "safety",
             metric: str = "rule", progress: bool = False) -> pd.DataFrame:
    """The paper's protocol for ``task`` (main curves and the config's control bases) at each learning rate, and
    its verdicts side by side: one row per finding, a ``shows @ lr`` and ``estimate @ lr`` column per rate, and
    ``depends on lr`` (whether the answer changes across the rates at which it could be asked:
    :func:`verdicts.lr_dependence`). ``lrs``: the config's ``lr_sweep`` by default.
    Reversed order, fixed steps, the control bases and the attractor test are left out to keep it cheap; the curves
    of the study's own rate are shared with it."""
    lrs = tuple(config.lr_sweep if lrs is None else lrs)
    check_choice("task", task, TASKS)
    check_choice("metric", metric, METRICS)
    if len(lrs) < 2 or len(set(lrs)) != len(lrs):
        raise ValueError(f"lrs={tuple(lrs)!r} is not allowed; give two or more distinct learning rates.")
    for lr in lrs:
        check_positive("lrs entry", lr)
    table: dict[str, dict[str, Any]] = {}
    for lr in lrs:
        cfg = dataclasses.replace(config, lr=float(lr), tasks=(task,), reversed_tasks=(), fixed_steps_tasks=(),
                                  control_bases=(), attractor_rates=())
        result = run_rebound(cfg, progress=progress)
        for r in rebound_verdicts(result, metric=metric):
            row = table.setdefault(r["finding"], {"finding": r["finding"]})
            row[f"shows @ {lr:g}"] = r["shows"]
            row[f"estimate @ {lr:g}"] = r["estimate"]
    out = pd.DataFrame(list(table.values()))
    shows = [c for c in out.columns if c.startswith("shows @")]
    out["depends on lr"] = [lr_dependence({c.split("@ ")[1]: a for c, a in zip(shows, r)}) for r in out[shows].itertuples(index=False)]
    return out
