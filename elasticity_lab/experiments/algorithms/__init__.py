"""The rebound per alignment algorithm (issue 13): stage 1 by SFT, DPO, KTO, SimPO or RLOO, then stage 2 as in chapter 7.

The paper reports the rebound after SFT, PPO, DPO, KTO and SimPO and concludes that elasticity is a
property of the model, not of the algorithm. Here each algorithm's stage-1 learning rate is first
calibrated so that all of them reach about the same aligned score (``config``), then every algorithm
aligns the pre-trained base and its two controls (lightly pre-trained, random init) on several seeds,
and chapter 7's stage 2 perturbs each aligned model (``runs``). ``analysis`` summarises each curve,
``verdicts`` decides, with :mod:`elasticity_lab.experiments.stats`, whether each algorithm rebounds
(and survives its controls) and whether the rebound is the same across algorithms. The micro-world
needs no learned reward model: the world's exact judge is RLOO's reward. At the ``full`` scale on hub
models (``AlgorithmsConfig.hub_model``, the ``full`` scale's default) the same algorithms run through TRL's
trainers (``trl_path``: SFTTrainer, DPOTrainer, KTOTrainer, CPOTrainer in SimPO mode, RLOOTrainer), and the
same stage 2, summary and verdicts follow.
"""

from __future__ import annotations

from typing import Any

from elasticity_lab.experiments.algorithms.align import ALGORITHMS, AlignResult, align, default_align_config
from elasticity_lab.experiments.algorithms.analysis import (CURVE, algorithm_table, alignment_text, censored_log2,
                                                            curve_summary, rebound_text)
from elasticity_lab.experiments.algorithms.config import (CONTROL_BASES, CONTROL_LR_GRID, DEFAULT_HUB_MODEL, DEFAULT_LR_GRID, HUB_LR_GRID,
                                                          AlgorithmsConfig, base_spec, default_config)
from elasticity_lab.experiments.algorithms.runs import (AlgorithmsResult, calibrate, calibrate_controls, choose_rates,
                                                        run_algorithms)
from elasticity_lab.experiments.algorithms.verdicts import (NOT_MEASURABLE, against_controls, control_calibration_text,
                                                            verdict_text, verdicts, within)

__all__ = [
    "ALGORITHMS", "AlignResult", "align", "default_align_config", "CURVE", "algorithm_table", "censored_log2",
    "curve_summary", "alignment_text", "rebound_text", "CONTROL_BASES", "DEFAULT_LR_GRID", "AlgorithmsConfig", "base_spec", "default_config",
    "CONTROL_LR_GRID", "DEFAULT_HUB_MODEL", "HUB_LR_GRID", "AlgorithmsResult", "calibrate", "calibrate_controls", "choose_rates", "run_algorithms", "NOT_MEASURABLE", "against_controls", "control_calibration_text", "verdict_text", "verdicts", "within", "cli_result",
]


def cli_result(scale: str, n_seeds: int | None = None) -> dict[str, Any]:
    """``python -m elasticity_lab run algorithms``: the config, the tables as records (curves, summary and verdict
    rows all carry an ``algorithm`` column) and the verdicts in words (JSON-able)."""
    from elasticity_lab.core.jsonio import jsonable

    config = default_config(scale, n_seeds)  # the CLI resolved the scale: an explicit --scale wins over the environment
    result = run_algorithms(config, progress=False)
    tables = {"calibration": result.calibration, "control_calibration": result.control_calibration, "curves": result.curves, "summary": result.summary,
              "per_algorithm": algorithm_table(result.summary), "verdicts": result.verdicts}
    return jsonable({"experiment": "algorithms", "config": config.to_dict(), "lrs": result.lrs, "control_lrs": result.control_lrs,
                     "tables": {k: v.to_dict("records") for k, v in tables.items()},
                     "summary": verdict_text(result.verdicts, result.control_calibration)})
