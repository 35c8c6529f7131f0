"""The scale study's curves: the rebound protocol at every point of the size and volume axes, cached curve by curve."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd

from elasticity_lab.core.cache import cached_table
from elasticity_lab.core.progress import progress_bar
from elasticity_lab.experiments.rebound.runs import staged_curve
from elasticity_lab.experiments.rebound.tasks import MicroTask, Probe
from elasticity_lab.experiments.scale.analysis import ScaleResult, curve_measures, sweep_table
from elasticity_lab.experiments.scale.config import ScaleConfig, default_config
from elasticity_lab.experiments.scale.verdicts import summarize, verdicts
from elasticity_lab.lm.bases import Base, BaseSpec, load_base
from elasticity_lab.lm.presets import choose_device, device_tag, preset_parameters
from elasticity_lab.lm.pretraining import pretrain
from elasticity_lab.microworld.world import World


@dataclass(frozen=True)
class Point:
    """One curve of the study: an axis, a base (preset, pre-training budget, kind) and a pre-training seed."""

    axis: str
    preset: str
    tokens: int
    base_kind: str
    seed: int

    def revision(self, config: ScaleConfig) -> str | None:
        if self.base_kind in ("random", "light"):
            return self.base_kind
        if self.base_kind == "finetuned":
            return f"finetuned-{self.tokens}"
        last = config.checkpoints()[-1] if self.axis == "volume" else config.checkpoints(self.preset)[-1]
        return None if self.tokens == last else f"tokens-{self.tokens}"

    def spec(self, config: ScaleConfig) -> BaseSpec:
        if self.axis == "volume":
            return config.volume_spec(self.seed, self.revision(config))
        return config.spec(self.preset, self.seed, self.revision(config))


def plan(config: ScaleConfig) -> list[Point]:
    """Every curve a study needs, seed by seed (so a partial run already has whole seeds), main points before controls."""
    points: list[Point] = []
    final = {p: config.checkpoints(p)[-1] for p in set(config.presets) | {config.volume_preset}}
    for seed in config.seeds:
        points += [Point("size", p, final[p], "pretrained", seed) for p in config.presets]
        points += [Point("volume", config.volume_preset, t, "pretrained", seed) for t in config.volume_tokens()]
        points += [Point("size", p, final[p], kind, seed) for kind in config.size_controls for p in config.presets]
        points += [Point("volume", config.volume_preset, t, kind, seed) for kind in config.volume_controls for t in config.volume_tokens()]
    return points


def _protocol(config: ScaleConfig) -> dict[str, Any]:
    """What a curve depends on besides its base (so that more seeds, presets or checkpoints reuse cached curves)."""
    keep = ("task", "n_align", "n_perturb", "lr", "align_batch_size", "perturb_batch_size", "n_prompts", "n_kl")
    return {k: getattr(config, k) for k in keep}


class _Runner:
    def __init__(self, config: ScaleConfig, progress: bool) -> None:
        self.config, self.progress = config, progress
        self.device = choose_device(config.device)
        self.world = World(config.volume_spec(0).world_config())
        self.suite = MicroTask(self.world, config.task)
        self._probe: Probe | None = None

    @property
    def probe(self) -> Probe:
        if self._probe is None:
            self._probe = self.suite.probe(self.config.n_prompts, self.config.n_kl)
        return self._probe

    def curve(self, point: Point) -> pd.DataFrame:
        c = self.config
        spec = point.spec(c)
        key = {"kind": "scale-curve", "base": {**spec.key(), **device_tag(self.device)}, "protocol": _protocol(c), "seed": point.seed}

        def compute() -> pd.DataFrame:
            t0 = time.perf_counter()
            base: Base = load_base(spec, device=self.device, progress=self.progress)
            s1 = self.suite.data("aligned", c.n_align, point.seed)
            s2 = self.suite.data("unaligned", c.n_perturb[-1], point.seed)
            table = staged_curve(base.model, base.tokenizer, self.suite, self.probe, s1, s2, c.n_perturb, lr=c.lr,
                                 align_batch_size=c.align_batch_size, perturb_batch_size=c.perturb_batch_size, seed=point.seed)
            table["seconds"] = time.perf_counter() - t0  # pre-training included where this curve was the first to need the base
            return table

        table = cached_table("scale", key, compute).copy()
        for k, v in dataclasses.asdict(point).items():
            table[k] = v
        table["params"] = preset_parameters(point.preset, len(self.world.vocabulary))
        return table


def pretraining_table(config: ScaleConfig, *, progress: bool = False) -> pd.DataFrame:
    """Held-out bits per token at every checkpoint of every pre-training run of the study (one row per run ×
    checkpoint), beside the world's exact entropy rate: did a larger model, or a longer run, learn the world better?
    Runs come from the cache or the shipped bases (a run not yet made is pre-trained here)."""
    device = choose_device(config.device)
    rows = []
    runs = [("size", p, s, config.spec(p, s)) for s in config.seeds for p in config.presets]
    runs += [("volume", config.volume_preset, s, config.volume_spec(s)) for s in config.seeds]
    for axis, preset, seed, spec in runs:
        world = World(spec.world_config())
        run = pretrain(world, preset, spec.pretrain_config(), device=device, progress=progress)
        curve = run.curve.dropna(subset=["heldout_bits_per_token"])
        for _, r in curve.iterrows():
            rows.append({"axis": axis, "preset": preset, "params": preset_parameters(preset, len(world.vocabulary)), "seed": seed,
                         "tokens": int(r["tokens"]), "heldout_bits_per_token": float(r["heldout_bits_per_token"]),
                         "source_bits_per_token": world.entropy_per_token("bits"), "run_tokens": run.config.total_steps * run.config.tokens_per_step})
    return pd.DataFrame(rows)


def run_scale(config: ScaleConfig | None = None, *, progress: bool = True) -> ScaleResult:
    """Run (or read from the cache) every curve of a study, measure each and compute the verdicts.

    Each curve is cached on its own as soon as it is done; a base is pre-trained (and cached) by the first
    curve that needs it, so an interrupted study resumes where it stopped.
    """
    config = config or default_config()
    runner = _Runner(config, progress)
    points = plan(config)
    parts = []
    for p in progress_bar(points, desc="scale curves", enabled=progress):
        parts.append(runner.curve(p))
    curves = pd.concat(parts, ignore_index=True)
    measures = curve_measures(curves, metric=config.metric)
    sweep = sweep_table(measures)
    rows = verdicts(measures, min_lift=config.min_lift)
    result = ScaleResult(config, curves, measures, sweep, rows)
    result.summary = summarize(result)
    return result
