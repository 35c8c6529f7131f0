"""The real-models study: where the models come from (hub or stand-ins), and the rebound and resistance runners on them.

Nothing here trains a model by itself: each base goes through :func:`elasticity_lab.experiments.rebound.run_rebound`
(a hub base is ``"org/model@revision"`` or a folder) and the resistance bases through
:func:`elasticity_lab.experiments.resistance.run_resistance`, so every curve and unit is cached by those runners
(atomic writes, keys from the config): a Colab session that disconnects resumes at the first curve not yet done,
provided ``ELASTICITY_CACHE`` points at a folder that survives (Google Drive).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from elasticity_lab.core import ranks
from elasticity_lab.core.cache import cache_dir
from elasticity_lab.core.progress import progress_bar
from elasticity_lab.experiments.realmodels.config import PARAMS, RealModelsConfig, default_config
from elasticity_lab.experiments.realmodels.standins import build_standins
from elasticity_lab.experiments.rebound import ReboundConfig, run_rebound
from elasticity_lab.experiments.resistance import ResistanceConfig, run_resistance
from elasticity_lab.lm.hub import HubUnreachableError, hub_reachable
from elasticity_lab.lm.precision import mixed_precision
from elasticity_lab.lm.presets import get_device

HUB_TIMEOUT_S = 3.0
"""How long the reachability probe waits for the hub before the chapter falls back (seconds)."""


@dataclass(frozen=True)
class Sources:
    """Where every model and data set of a study comes from.

    ``kind``: ``hub`` or ``standins``; ``message``: one sentence for the reader; ``volume``: (base, pre-training steps)
    earliest first; ``size``: (base, parameters) smallest first; ``data``: task → data set (hub name or local path).
    """

    kind: str
    message: str
    volume: tuple[tuple[str, int], ...]
    size: tuple[tuple[str, float], ...]
    data: dict[str, str] = field(default_factory=dict)

    @property
    def stand_ins(self) -> bool:
        return self.kind == "standins"


def standin_root() -> Path:
    """Where the stand-ins are written (under the cache, so they are built once)."""
    return cache_dir() / "standins"


def resolve_sources(config: RealModelsConfig, *, timeout: float = HUB_TIMEOUT_S, root: str | Path | None = None) -> Sources:
    """The hub's models and data sets if the hub answers within ``timeout`` seconds (or ``config.source`` says so),
    else the local stand-ins (built on first use). ``source="hub"`` on a machine without the hub raises
    :class:`HubUnreachableError` in one sentence, within ``timeout``."""
    # under a launcher the main rank asks and every rank follows its answer (ranks must run the same study)
    use_hub = config.source != "standins" and bool(ranks.broadcast(ranks.is_main() and hub_reachable(timeout=timeout)))
    if use_hub:
        volume = tuple((f"{config.volume_model}@{r}", int(r.removeprefix("step"))) for r in config.volume_revisions)
        size = tuple((m, PARAMS.get(m, math.nan)) for m in config.size_models)
        data = {"safety": config.safety_data, "sentiment": config.sentiment_data, "instruction": config.instruction_data}
        return Sources("hub", f"The Hugging Face Hub answers: this run uses the real models ({config.volume_model} at "
                              f"{len(volume)} checkpoints; {', '.join(config.size_models)}).", volume, size, data)
    if config.source == "hub":
        raise HubUnreachableError(f"The Hugging Face Hub did not answer within {timeout:g} s, and source='hub' asks for the real "
                                  "models; use source='auto' to run the same code on local stand-ins instead.")
    quiet_libraries()
    why = ("The Hugging Face Hub cannot be reached from this machine" if config.source == "auto"
           else "source='standins' was asked for")
    with ranks.main_first():  # the main rank builds them once; the others then find its manifest
        m = build_standins(root or standin_root())
    volume = tuple((p, int(m["steps"][p])) for p in m["volume"])
    size = tuple((p, float(m["params"][p])) for p in m["size"])
    data = {"safety": m["safety"], "sentiment": m["sentiment"], "instruction": m["instruction"]}
    return Sources("standins", f"{why}, so every number below comes from tiny local stand-ins trained here in seconds, "
                               "not from real models: they test the code, not the paper.", volume, size, data)


# --------------------------------------------------------------------------- the runners


def rebound_config(config: RealModelsConfig, base: str, data: dict[str, str], *, random_control: bool = False) -> ReboundConfig:
    """Chapter 7's study for one hub base (or folder): the main curves, and the re-initialised copy if asked."""
    return ReboundConfig(scale="full", hub_model=base, tasks=config.tasks, n_align=config.n_align, n_perturb=config.n_perturb,
                         seeds=config.seeds, safety_data=data["safety"], sentiment_data=data["sentiment"], lr=config.lr,
                         align_batch_size=config.align_batch_size, perturb_batch_size=config.perturb_batch_size,
                         n_prompts=config.n_prompts, n_kl=config.n_kl, max_new_tokens=config.max_new_tokens,
                         reversed_tasks=(), fixed_steps_tasks=(), attractor_rates=(),
                         control_bases=("random",) if random_control else (), control_tasks=config.tasks[:1])


def random_copy(base: str) -> str:
    """``"org/model@random"`` (or ``folder@random``): the architecture of ``base`` re-initialised."""
    return base.partition("@")[0] + "@random" if not Path(base).is_dir() else base + "@random"


def resistance_config(config: RealModelsConfig, sources: Sources) -> ResistanceConfig:
    """Chapter 6's protocol from the last checkpoint, the earliest (light control) and a re-initialised copy."""
    last, first = sources.volume[-1][0], sources.volume[0][0]
    bases = (last, first) + ((random_copy(last),) if config.random_control else ())
    return ResistanceConfig(bases=bases, tasks=("instruction",), seeds=config.seeds, answer_modes=("low_temp",),
                            seed_bases=False, n_train=config.resistance_n_train, n_queries=config.resistance_n_queries,
                            method=config.resistance_method, lr=config.resistance_lr, batch_size=config.resistance_batch_size,
                            max_new_tokens=config.resistance_max_new_tokens,
                            data_sources=(("instruction", sources.data["instruction"]),))


@dataclass
class RealModelsResult:
    """The study's tables: ``curves`` (every rebound curve with its ``axis``, ``base``, ``x``) and ``resistance``
    (chapter 6's table for the resistance bases), the sources, and the seconds each part took."""

    config: RealModelsConfig
    sources: Sources
    curves: pd.DataFrame
    resistance: pd.DataFrame
    seconds: dict[str, float]

    def resistance_verdicts(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Chapter 6's verdict tables for the resistance bases: the last checkpoint, its controls the others."""
        from elasticity_lab.experiments.resistance import verdict_rows

        last = _label(self.sources.volume[-1][0], self.sources)
        return verdict_rows(self.resistance, pretrained=last,
                            controls=tuple(b for b in dict.fromkeys(self.resistance["base"]) if b != last))


def _label(base: str, sources: Sources) -> str:
    """A short name for a base: ``pythia-160m@step1000``, ``SmolLM2-135M``, or the stand-in's folder (``step16``)."""
    if sources.stand_ins:
        p = Path(base.partition("@")[0] if "@random" in base else base)
        return p.name + (" (re-initialised)" if base.endswith("@random") else "")
    return base.rsplit("/", 1)[-1]


def quiet_libraries() -> None:
    """Turn off the per-file bars of ``datasets`` and ``transformers`` (loading weights, saving shards): the study's own
    bar says where it is, and dozens of those would bury it."""
    import datasets
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()


def run_study(config: RealModelsConfig | None = None, *, sources: Sources | None = None, progress: bool = True) -> RealModelsResult:
    """Run (or read from the cache) every study of ``config`` on ``sources`` (resolved if not given), under the
    config's mixed precision on the best device."""
    quiet_libraries()
    config = config or default_config()
    sources = sources or resolve_sources(config)
    jobs: list[tuple[str, str, float, bool]] = []
    if "volume" in config.studies:
        jobs += [("volume", b, x, config.random_control and i == len(sources.volume) - 1) for i, (b, x) in enumerate(sources.volume)]
    if "size" in config.studies:
        jobs += [("size", b, x, False) for b, x in sources.size]
    parts, seconds = [], {"volume": 0.0, "size": 0.0, "resistance": 0.0}
    with mixed_precision(config.precision, get_device()), warnings.catch_warnings():
        # transformers' own deprecation notice, raised inside every training step, says nothing about the study
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
        for axis, base, x, control in progress_bar(jobs, desc="real-model bases", enabled=progress):
            t0 = time.perf_counter()
            r = run_rebound(rebound_config(config, base, sources.data, random_control=control), progress=False)
            c = r.curves.copy()
            c["axis"], c["x"] = axis, x
            c["base"] = [_label(random_copy(base) if k == "random" else base, sources) for k in c["base_kind"]]
            parts.append(c)
            seconds[axis] += time.perf_counter() - t0
        table = pd.DataFrame()
        if "resistance" in config.studies:
            t0 = time.perf_counter()
            table = run_resistance(resistance_config(config, sources), progress=progress).table.copy()
            table["base_path"] = table["base"]
            table["base"] = [_label(b, sources) for b in table["base"]]  # short names in every table and sentence
            seconds["resistance"] = time.perf_counter() - t0
    curves = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return RealModelsResult(config, sources, curves, table, seconds)
