"""Scale: does elasticity grow with model size and with pre-training volume? (the paper's fourth finding, with controls)

The paper saw larger models (Qwen 0.5B → 4B → 7B) and longer pre-trained ones (TinyLlama checkpoints) rebound
faster. Here the rebound protocol of chapter 7 runs at every point of two axes — presets of growing size at an
equal pre-training budget, and checkpoints of one pre-training run — with a pre-training seed per run, and each
trend is compared with the same trend on control bases that have no pre-trained distribution (random init of
each size) or that had only fine-tuning (matched to each checkpoint).

The package: ``config`` (the validated config and per-scale presets), ``runs`` (the curves, cached), ``analysis``
(tidy measures and the sweep table), ``verdicts`` (the computed verdicts), ``shipped`` (GPU tables with provenance).
"""

from __future__ import annotations

from typing import Any

from elasticity_lab.core.config import resolve_scale
from elasticity_lab.core.jsonio import jsonable
from elasticity_lab.experiments.scale.analysis import (POINT, ScaleResult, curve_measures, learnt_table, learnt_text, sweep_table,
                                                       wide_table)
from elasticity_lab.experiments.scale.config import (AXES, ELASTIC_DIRECTION, HEADLINE_MEASURE, MEASURES, SCALE_PRESETS,
                                                     ScaleConfig, default_config)
from elasticity_lab.experiments.scale.runs import Point, plan, pretraining_table, run_scale
from elasticity_lab.experiments.scale.shipped import gpu_results_sentence, ship, shipped_results
from elasticity_lab.experiments.scale.verdicts import headline, synthetic_measures, verdict_table, verdict_text, verdicts


def tidy_table(result: ScaleResult) -> Any:
    """One row per preset × tokens × measure × seed (and axis, base kind): the command line's table."""
    cols = ["axis", "base_kind", "preset", "params", "tokens", "seed", "measure", "value", "metric", "base_level", "lift"]
    return result.measures[cols]


def cli_result(scale: str, n_seeds: int | None = None) -> dict[str, Any]:
    """``python -m elasticity_lab run scale``: the config, the tidy table, the sweep and the verdict rows (JSON-able)."""
    scale = resolve_scale(scale)
    config = default_config(scale, n_seeds)
    result = run_scale(config, progress=False)
    return jsonable({"experiment": "scale", "config": config.to_dict(), "table": tidy_table(result).to_dict("records"),
                     "sweep": result.sweep.to_dict("records"), "verdicts": result.verdicts.to_dict("records"),
                     "headline": headline(result.verdicts)})


__all__ = [
    "POINT", "ScaleResult", "curve_measures", "learnt_table", "learnt_text", "sweep_table", "wide_table", "AXES", "ELASTIC_DIRECTION", "HEADLINE_MEASURE",
    "MEASURES", "SCALE_PRESETS", "ScaleConfig", "default_config", "Point", "plan", "pretraining_table", "run_scale", "gpu_results_sentence",
    "ship", "shipped_results", "headline", "synthetic_measures", "verdict_table", "verdict_text", "verdicts", "tidy_table", "cli_result",
]
