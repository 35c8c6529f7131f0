"""Real models on a GPU or Colab: the rebound and resistance protocols on Pythia checkpoints (pre-training volume)
and SmolLM2 / Qwen2.5 (size), with the book's verdicts; local stand-ins where the hub cannot be reached.

The package: ``config`` (the validated config and per-scale presets), ``standins`` (tiny local models and data in
the hub's schemas), ``runs`` (sources and the runners), ``launch`` (the shipped ``accelerate launch`` configs), ``verdicts`` (early drops, claims and their intervals).
"""

from typing import Any

from elasticity_lab.experiments.realmodels.config import (HUB_DATA, PARAMS, PYTHIA, PYTHIA_REVISIONS, SCALE_PRESETS, SIZE_MODELS,
                                                          SOURCES, STUDIES, RealModelsConfig, default_config)
from elasticity_lab.experiments.realmodels.runs import (HUB_TIMEOUT_S, RealModelsResult, Sources, random_copy, rebound_config,
                                                        resistance_config, resolve_sources, run_study, standin_root)
from elasticity_lab.experiments.realmodels.launch import (LAUNCH_CONFIGS, PAPER_SIZE_MODELS, launch_command, launch_config,
                                                          launch_config_path, memory_per_card, study_script)
from elasticity_lab.experiments.realmodels.standins import build_standins
from elasticity_lab.experiments.realmodels.verdicts import drops, early_drop, saturation_sentence, verdict_prose, verdict_rows

CLI_SCALES: tuple[str, ...] = tuple(SCALE_PRESETS)
"""``python -m elasticity_lab run realmodels --scale ...``: the book's scales and the paper's own grid."""


def cli_result(scale: str, n_seeds: int | None = None) -> dict[str, Any]:
    """``python -m elasticity_lab run realmodels``: the sources, the tables as records and the verdicts (JSON-able), and
    how many processes ran it (``accelerate launch``: every rank returns the same result; the CLI writes the main rank's)."""
    from elasticity_lab.core import ranks
    from elasticity_lab.core.config import check_choice
    from elasticity_lab.core.jsonio import jsonable

    scale = check_choice("scale", scale, CLI_SCALES)  # the CLI resolved it: an explicit --scale wins over the environment
    over = {"seeds": tuple(range(n_seeds))} if n_seeds else {}
    config = default_config(scale, **over)
    result = run_study(config, progress=False)
    d = drops(result.curves)
    out = {"experiment": "realmodels", "processes": ranks.world_size(), "config": config.to_dict(), "sources": result.sources.kind,
           "message": result.sources.message, "tables": {"curves": result.curves.to_dict("records"), "drops": d.to_dict("records")},
           "verdicts": verdict_rows(d).drop(columns=["estimate", "low", "high"]).to_dict("records")}
    if len(result.resistance):
        rv, _ = result.resistance_verdicts()
        out["resistance_verdicts"] = rv.drop(columns=["estimate", "low", "high"]).to_dict("records")
    return jsonable(out)


__all__ = [
    "HUB_DATA", "PARAMS", "PYTHIA", "PYTHIA_REVISIONS", "SCALE_PRESETS", "SIZE_MODELS", "SOURCES", "STUDIES", "RealModelsConfig",
    "default_config", "HUB_TIMEOUT_S", "RealModelsResult", "Sources", "random_copy", "rebound_config", "resistance_config",
    "resolve_sources", "run_study", "standin_root", "build_standins", "drops", "early_drop", "saturation_sentence", "verdict_prose", "verdict_rows",
    "cli_result", "LAUNCH_CONFIGS", "launch_command", "launch_config", "launch_config_path", "memory_per_card",
    "PAPER_SIZE_MODELS", "study_script",
]
