"""The whole mitigation study: curves → measures → summary, verdicts and the theorem's prediction; and its CLI result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from elasticity_lab.core.config import resolve_scale
from elasticity_lab.core.jsonio import jsonable
from elasticity_lab.experiments.mitigation.analysis import curve_measures, summary_table, theory_table
from elasticity_lab.experiments.mitigation.config import BASELINE, MitigationConfig, default_config
from elasticity_lab.experiments.mitigation.runs import base_spec, run_curves
from elasticity_lab.experiments.mitigation.verdicts import counts, verdict_table, verdict_text
from elasticity_lab.lm.bases import load_base


@dataclass
class MitigationResult:
    """All tables of one study: raw curves, per-curve measures, the summary (one row per mitigation), the verdicts
    and the theorem's prediction for the data ratio."""

    config: MitigationConfig
    curves: pd.DataFrame
    measures: pd.DataFrame
    table: pd.DataFrame
    verdicts: pd.DataFrame
    theory: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


def run_mitigation(config: MitigationConfig | None = None, *, progress: bool = True,
                   on_curve: Callable[[int, int], None] | None = None) -> MitigationResult:
    """Run (or read from the cache) every curve of a study and analyse it."""
    config = config or default_config()
    curves = run_curves(config, progress=progress, on_curve=on_curve)
    measures = curve_measures(curves)
    table = summary_table(measures)
    verdicts = verdict_table(table, config, measures)
    spec = base_spec(config, config.condition(BASELINE))
    theory = theory_table(config, measures, load_base(spec).world, spec.pretrain_config().tokens)
    summary = {"verdict_counts": counts(verdicts), "verdict_text": verdict_text(verdicts),
               "seconds": float(measures["seconds"].sum())}
    return MitigationResult(config, curves, measures, table, verdicts, theory, summary)


def cli_result(scale: str, n_seeds: int | None = None) -> dict[str, Any]:
    """``python -m elasticity_lab run mitigation``: the config, the table (``mitigation`` column, ``none`` included),
    the verdict rows, every other table as records, and the summary (JSON-able)."""
    scale = resolve_scale(scale)
    config = default_config(scale, n_seeds)
    result = run_mitigation(config, progress=False)
    tables = {"table": result.table, "verdicts": result.verdicts, "measures": result.measures, "theory": result.theory,
              "curves": result.curves}
    return jsonable({"experiment": "mitigation", "config": config.to_dict(),
                     "tables": {k: v.to_dict("records") for k, v in tables.items()}, "summary": result.summary})
