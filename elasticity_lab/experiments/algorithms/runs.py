"""The algorithms study: calibrate each algorithm's stage-1 rate, then one rebound curve per algorithm × base × seed.

A curve is chapter 7's protocol with its stage 1 replaced: :func:`align` (SFT, DPO, KTO, SimPO or
RLOO on the same ``n_align`` examples' worth of information), then
:func:`elasticity_lab.experiments.rebound.perturb_curve`, chapter 7's own stage 2 (SFT on unaligned
answers, scored after every whole batch on the grid). Each calibration point and each curve is cached
on its own, so an interrupted study resumes and a larger one reuses what it shares.

With ``config.hub_model`` the same units run on a hub model (or a ``save_pretrained`` folder): stage 1 through
TRL's trainers (:func:`~elasticity_lab.experiments.algorithms.trl_path.trl_align`) on the hub's safety data
(:class:`~elasticity_lab.experiments.rebound.tasks.HubTask`), stage 2, the summary and the verdicts unchanged.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from elasticity_lab.core.cache import cached_table
from elasticity_lab.core.progress import progress_bar
from elasticity_lab.experiments.algorithms.align import align
from elasticity_lab.experiments.algorithms.config import AlgorithmsConfig, base_spec, default_config
from elasticity_lab.experiments.rebound.runs import evaluate, perturb_curve
from elasticity_lab.experiments.rebound.tasks import HubTask, MicroTask, Probe
from elasticity_lab.lm.bases import Base, load_base
from elasticity_lab.lm.hub import HubUnreachableError


@dataclass
class AlgorithmsResult:
    """The study's tables: calibration points, chosen rates, curves, per-curve summary, verdict rows."""

    config: AlgorithmsConfig
    calibration: pd.DataFrame
    lrs: dict[str, float]
    curves: pd.DataFrame
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    verdicts: pd.DataFrame = field(default_factory=pd.DataFrame)
    control_calibration: pd.DataFrame = field(default_factory=pd.DataFrame)
    control_lrs: dict[str, dict[str, float]] = field(default_factory=dict)

    def lr_of(self, algorithm: str, base_kind: str = "pretrained") -> float:
        """The stage-1 rate an algorithm aligned a base with (a control's own where the controls were calibrated)."""
        return self.control_lrs.get(base_kind, {}).get(algorithm, self.lrs[algorithm])


def _shared_key(c: AlgorithmsConfig) -> dict[str, Any]:
    """The part of the config every unit depends on (so adding seeds, algorithms or bases reuses cached units)."""
    keep = ("scale", "task", "n_align", "align_batch_size", "preset", "pretrain_tokens", "light_fraction", "n_prompts", "n_kl")
    d = {k: getattr(c, k) for k in keep}
    d["align_overrides"] = {k: dict(v) for k, v in sorted(c.align_overrides.items())}
    if c.on_hub:  # only then, so that the micro-world's cached units keep their keys
        d.update(hub_model=c.hub_model, safety_data=c.safety_data, max_length=c.max_length, max_new_tokens=c.max_new_tokens,
                 stage1="trl")
    return d


class _Runner:
    """Builds bases, tasks and probes once per study and runs (or reads from the cache) each unit."""

    def __init__(self, config: AlgorithmsConfig, progress: bool) -> None:
        self.config, self.progress = config, progress
        self._bases: dict[str, Base] = {}
        self._tasks: dict[str, tuple[Any, Probe]] = {}
        self._refs: dict[tuple[str, int], dict[str, float]] = {}

    def base(self, kind: str) -> Base:
        if kind not in self._bases:
            self._bases[kind] = load_base(base_spec(self.config, kind), progress=self.progress)
        return self._bases[kind]

    def task(self, kind: str) -> tuple[Any, Probe]:
        c = self.config
        if kind not in self._tasks:
            if c.on_hub:  # one data set for every base: read it once
                other = next(iter(self._tasks.values()), None)
                task = other[0] if other else HubTask(c.safety_data, c.task, max_new_tokens=c.max_new_tokens)
            else:
                task = MicroTask(self.base(kind).world, c.task)
            self._tasks[kind] = (task, task.probe(c.n_prompts, c.n_kl))
        return self._tasks[kind]

    def stage1(self, kind: str, algorithm: str, lr: float, seed: int) -> Any:
        """Stage 1 of the base of ``kind``: the library's loop on the micro-world, TRL's trainer on a hub model."""
        c = self.config
        base = self.base(kind)
        task, _ = self.task(kind)
        if c.on_hub:
            from elasticity_lab.experiments.algorithms.trl_path import trl_align

            return trl_align(base.model, base.tokenizer, algorithm, task, c.n_align, c.align_config(algorithm, lr), seed=seed,
                             max_length=c.max_length)
        return align(base.model, base.tokenizer, algorithm, task, c.n_align, c.align_config(algorithm, lr), seed=seed,
                     evaluate=False)

    def reference(self, kind: str, seed: int) -> dict[str, float]:
        """The base's own scores on the probe at a seed (the same for every algorithm: computed once per study)."""
        if (kind, seed) not in self._refs:
            base = self.base(kind)
            task, probe = self.task(kind)
            self._refs[kind, seed] = evaluate(base.model, base.tokenizer, task, probe, None, seed=seed)
        return self._refs[kind, seed]

    def calibration_point(self, algorithm: str, lr: float, seed: int, kind: str = "pretrained") -> pd.DataFrame:
        c = self.config
        key = {"kind": "algorithms-calibration", "algorithm": algorithm, "lr": lr, "seed": seed, "config": _shared_key(c)}
        if kind != "pretrained":  # only then, so the pre-trained base's points keep their keys
            key["base_kind"] = kind

        def compute() -> pd.DataFrame:
            base = self.base(kind)
            task, probe = self.task(kind)
            t0 = time.perf_counter()
            r = self.stage1(kind, algorithm, lr, seed)
            scores = evaluate(r.model, base.tokenizer, task, probe, base.model, seed=seed)
            return pd.DataFrame([{"steps": r.steps, **scores, "seconds": time.perf_counter() - t0}])

        table = cached_table("algorithms", key, compute).copy()
        table.insert(0, "seed", seed)
        table.insert(0, "lr", lr)
        table.insert(0, "algorithm", algorithm)
        if kind != "pretrained":
            table.insert(0, "base_kind", kind)
        return table

    def curve(self, algorithm: str, lr: float, kind: str, seed: int) -> pd.DataFrame:
        c = self.config
        key = {"kind": "algorithms-curve", "algorithm": algorithm, "lr": lr, "base_kind": kind, "seed": seed,
               "grid": list(c.n_perturb), "perturb_lr": c.perturb_lr, "perturb_batch_size": c.perturb_batch_size,
               "config": _shared_key(c)}
        if kind != "pretrained" and c.gate_controls:
            key["gate"] = c.min_gain

        def compute() -> pd.DataFrame:
            base = self.base(kind)
            task, probe = self.task(kind)
            t0 = time.perf_counter()
            ref = self.reference(kind, seed)
            r = self.stage1(kind, algorithm, lr, seed)
            t1 = time.perf_counter()
            first = evaluate(r.model, base.tokenizer, task, probe, base.model, seed=seed) if kind != "pretrained" else None
            if first is not None and c.gate_controls and first["rule"] - ref["rule"] < c.min_gain:
                # a control that stage 1 did not lift is left out of the verdict: its stage 2 would decide nothing
                table = pd.DataFrame([{"n": 0, **first}])
            else:
                stage2 = task.data("unaligned", c.n_perturb[-1], seed)
                table = perturb_curve(r.model, base.model, base.tokenizer, task, probe, stage2, c.n_perturb, lr=c.perturb_lr,
                                      perturb_batch_size=c.perturb_batch_size, seed=seed)
            table["align_steps"] = r.steps
            table["base_rule"] = ref["rule"]
            table["base_likelihood"] = ref["likelihood"]
            table["align_seconds"] = t1 - t0
            table["seconds"] = time.perf_counter() - t0
            return table

        table = cached_table("algorithms", key, compute).copy()
        for k, v in (("algorithm", algorithm), ("base_kind", kind), ("seed", seed), ("lr", lr)):
            table.insert(0, k, v)
        return table


def choose_rates(calibration: pd.DataFrame, target: float) -> dict[str, float]:
    """Per algorithm, the stage-1 rate expected to reach ``target`` (mean aligned rule score over the calibration seeds).

    Only rates on the *rising branch* count: a rate whose score is below that of a smaller rate is past the peak,
    where DPO and SimPO keep widening the gap between chosen and rejected answers while the sampled answers degrade
    (the collapse regime). Where two neighbouring rates of that branch bracket the target, the rate is interpolated
    linearly in log(rate) between them (3 significant digits); otherwise the rate closest to the target is taken
    (ties: the smaller mean KL to the base, then the smaller rate)."""
    need = {"algorithm", "lr", "rule", "kl"}
    if not need <= set(calibration.columns):
        raise ValueError(f"calibration needs the columns {sorted(need)}; it has {sorted(calibration.columns)}.")
    means = calibration.groupby(["algorithm", "lr"], sort=False)[["rule", "kl"]].mean().reset_index()
    out: dict[str, float] = {}
    for alg, g in means.groupby("algorithm", sort=False):
        g = g.sort_values("lr")
        rising = g[g["rule"].to_numpy() >= g["rule"].cummax().to_numpy()].copy()
        lr, y = rising["lr"].to_numpy(float), rising["rule"].to_numpy(float)
        chosen = None
        for i in range(len(lr) - 1):
            if y[i] <= target <= y[i + 1] and y[i + 1] > y[i]:
                frac = (target - y[i]) / (y[i + 1] - y[i])
                chosen = float(f"{math.exp(math.log(lr[i]) + frac * (math.log(lr[i + 1]) - math.log(lr[i]))):.3g}")
                break
        if chosen is None:
            rising["distance"] = (rising["rule"] - target).abs().round(9)
            chosen = float(rising.sort_values(["distance", "kl", "lr"]).iloc[0]["lr"])
        out[str(alg)] = chosen
    return out


def calibrate(config: AlgorithmsConfig, *, progress: bool = False, runner: _Runner | None = None) -> tuple[pd.DataFrame, dict[str, float]]:
    """The calibration table (one row per algorithm × rate × calibration seed, on the pre-trained base) and the
    chosen rate per algorithm (:func:`choose_rates`). With ``config.lrs`` fixed, no calibration runs."""
    if config.lrs is not None:
        return pd.DataFrame(columns=["algorithm", "lr", "seed", "rule", "likelihood", "kl", "steps", "seconds"]), \
            {a: float(config.lrs[a]) for a in config.algorithms}
    runner = runner or _Runner(config, progress)
    units = [(a, lr, s) for a in config.algorithms for lr in config.lr_grid[a] for s in config.calibration_seeds]
    parts = [runner.calibration_point(a, lr, s) for a, lr, s in progress_bar(units, desc="calibration", enabled=progress)]
    table = pd.concat(parts, ignore_index=True)
    return table, choose_rates(table, config.target)


def calibrate_controls(config: AlgorithmsConfig, *, progress: bool = False,
                       runner: _Runner | None = None) -> tuple[pd.DataFrame, dict[str, dict[str, float]]]:
    """With ``config.control_lr_grid``: each control base's own calibration (one row per base × algorithm × rate ×
    calibration seed, the base's own score beside it) and its chosen rate per algorithm (:func:`choose_rates`, toward
    the same target). Without it: an empty table and no rates (the controls take the pre-trained base's)."""
    controls = [k for k in config.bases if k != "pretrained"]
    if config.control_lr_grid is None or not controls:
        return pd.DataFrame(columns=["base_kind", "algorithm", "lr", "seed", "rule", "kl", "base_rule"]), {}
    runner = runner or _Runner(config, progress)
    units = [(k, a, lr, s) for k in controls for a in config.algorithms for lr in config.control_lr_grid[a]
             for s in config.calibration_seeds]
    parts = []
    for k, a, lr, s in progress_bar(units, desc="control calibration", enabled=progress):
        part = runner.calibration_point(a, lr, s, kind=k)
        part["base_rule"] = runner.reference(k, s)["rule"]
        parts.append(part)
    table = pd.concat(parts, ignore_index=True)
    return table, {k: choose_rates(g, config.target) for k, g in table.groupby("base_kind", sort=False)}


def run_algorithms(config: AlgorithmsConfig | None = None, *, progress: bool = True,
                   on_unit: Callable[[int, int], None] | None = None) -> AlgorithmsResult:
    """Calibrate, run (or read from the cache) every curve, and analyse them (summary table and verdicts)."""
    from elasticity_lab.experiments.algorithms.analysis import curve_summary
    from elasticity_lab.experiments.algorithms.verdicts import verdicts

    config = config or default_config()
    runner = _Runner(config, progress)
    if config.on_hub:  # the model and the data set first: an unreachable hub says so in one sentence, within seconds
        try:
            runner.base("pretrained")
            runner.task("pretrained")
        except HubUnreachableError as err:
            raise HubUnreachableError(
                f"The Hugging Face Hub cannot be reached for hub_model={config.hub_model!r} and safety_data="
                f"{config.safety_data!r}, which the algorithms study at scale={config.scale!r} runs on through TRL; run it "
                "at scale='reader' (the micro-world, nothing to download), or give local folders for both.") from err
    calibration, lrs = calibrate(config, progress=progress, runner=runner)
    control_calibration, control_lrs = calibrate_controls(config, progress=progress, runner=runner)
    units = [(a, k, s) for s in config.seeds for k in config.bases for a in config.algorithms]
    parts = []
    for i, (a, k, s) in enumerate(progress_bar(units, desc="algorithm curves", enabled=progress)):
        parts.append(runner.curve(a, control_lrs.get(k, lrs).get(a, lrs[a]), k, s))
        if on_unit:
            on_unit(i + 1, len(units))
    curves = pd.concat(parts, ignore_index=True)
    result = AlgorithmsResult(config, calibration, lrs, curves, control_calibration=control_calibration, control_lrs=control_lrs)
    result.summary = curve_summary(curves, config.n_align)
    result.verdicts = verdicts(result.summary, config)
    return result

