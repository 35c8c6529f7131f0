"""Curves of the rebound protocol (stage 1 aligns, stage 2 perturbs) and the whole study, cached curve by curve."""

from __future__ import annotations

import copy
import math
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from elasticity_lab.core.cache import cached_table
from elasticity_lab.core.config import SCALES, check_choice
from elasticity_lab.core.jsonio import jsonable
from elasticity_lab.core.progress import progress_bar
from elasticity_lab.experiments.rebound.analysis import (GROUP, ReboundResult, attractor_levels, attractor_slopes, curve_fits,
                                                         kl_table)
from elasticity_lab.experiments.rebound.config import METRICS, PAPER_KL_TABLE, ReboundConfig, _check_grid, default_config
from elasticity_lab.experiments.rebound.tasks import HubTask, MicroTask, Probe, probe_kl, probe_likelihood_mass
from elasticity_lab.experiments.rebound.verdicts import summarize
from elasticity_lab.lm.bases import BASE_KINDS, Base, BaseSpec, load_base
from elasticity_lab.lm.generation import generate
from elasticity_lab.lm.hub import HubUnreachableError
from elasticity_lab.lm.training import sft
from elasticity_lab.microworld.world import WorldConfig

# --------------------------------------------------------------------------- bases


def base_spec(config: ReboundConfig, kind: str = "pretrained", rate: float | None = None, pretrain_seed: int = 0) -> BaseSpec:
    """Where a curve's base comes from: the study's preset (pre-training budget of its scale; the
    ``full`` scale's micro-world budget is ``reader``'s) or its hub model, of a kind (``pretrained``,
    ``light``, ``random``), in the default world or one whose harmful-refusal rate is ``rate``, pre-trained
    with seed ``pretrain_seed`` (the world's rate of the default world, 0.2, is the default world itself)."""
    check_choice("kind", kind, BASE_KINDS)
    revision = None if kind == "pretrained" else kind
    if config.on_hub:
        check_choice("kind", kind, ("pretrained", "random"))
        spec = BaseSpec.parse(config.hub_model)  # "org/model@step1000": a named revision (e.g. a Pythia checkpoint)
        return spec if revision is None else dataclasses.replace(spec, revision=revision)
    tokens = (config.attractor_tokens if rate is not None else None) or config.pretrain_tokens
    default_rate = WorldConfig().harmful_refusal
    world = {"harmful_refusal": rate} if rate is not None and rate != default_rate else {}
    return BaseSpec(config.preset, revision, world=world, scale="reader" if config.scale == "full" else config.scale,
                    tokens=tokens, seed=pretrain_seed, light_fraction=config.light_fraction)


# --------------------------------------------------------------------------- evaluation and curves


def evaluate(model: Any, tokenizer: Any, suite: Any, probe: Probe, base_model: Any | None, *, seed: int,
             max_new_tokens: int | None = None) -> dict[str, float]:
    """Rule score on sampled answers (T = 1), likelihood score with the probability mass it covers, and
    KL(p_base ‖ p_θ) of one model."""
    answers = generate(model, tokenizer, probe.prompts, max_new_tokens=max_new_tokens or suite.max_new_tokens, seed=seed)
    score, mass = probe_likelihood_mass(model, tokenizer, probe)
    out = {"rule": float(suite.aligned(probe.prompts, answers).mean()), "likelihood": score, "likelihood_mass": mass}
    out["kl"] = 0.0 if base_model is None or base_model is model else probe_kl(base_model, model, tokenizer, probe)
    return out


def staged_curve(base: Any, tokenizer: Any, suite: Any, probe: Probe, stage1: Sequence[tuple[str, str]],
                 stage2: Sequence[tuple[str, str]], grid: Sequence[int], *, lr: float, method: str = "full",
                 align_batch_size: int = 16, perturb_batch_size: int = 8, align_steps: int | None = None,
                 seed: int = 0, max_new_tokens: int | None = None) -> pd.DataFrame:
    """One curve: stage 1 from ``base`` on ``stage1``, then stage 2 on ``stage2`` evaluated at every ``n`` of ``grid``.

    Returns one row per ``n`` (``n = 0`` is the stage-1 model itself) with the scores and the KL to
    ``base``, plus the base's own scores (``base_rule``, ``base_likelihood``) for the reference line.
    ``align_steps`` fixes the stage-1 step count (the fixed-steps control); otherwise one epoch.
    """
    check_choice("method", method, ("full",))
    _check_grid("grid", grid, perturb_batch_size)
    if len(stage2) < grid[-1]:
        raise ValueError(f"stage2 has {len(stage2)} examples; the grid needs {grid[-1]}.")
    ref = evaluate(base, tokenizer, suite, probe, None, seed=seed, max_new_tokens=max_new_tokens)
    if stage1:
        s1 = sft(base, tokenizer, list(stage1), method=method, lr=lr, batch_size=align_batch_size, epochs=1.0,
                 max_steps=align_steps, seed=seed, progress=False)
        model, steps1 = s1.model, len(s1.curve)
    else:
        model, steps1 = copy.deepcopy(base), 0
    table = perturb_curve(model, base, tokenizer, suite, probe, stage2, grid, lr=lr, method=method,
                          perturb_batch_size=perturb_batch_size, seed=seed, max_new_tokens=max_new_tokens)
    table["align_steps"] = steps1
    table["base_rule"] = ref["rule"]
    table["base_likelihood"] = ref["likelihood"]
    table["base_likelihood_mass"] = ref["likelihood_mass"]
    return table


def perturb_curve(model: Any, base: Any, tokenizer: Any, suite: Any, probe: Probe, stage2: Sequence[tuple[str, str]],
                  grid: Sequence[int], *, lr: float, method: str = "full", perturb_batch_size: int = 8, seed: int = 0,
                  max_new_tokens: int | None = None) -> pd.DataFrame:
    """Stage 2 of a curve: fine-tune ``model`` (an aligned model, trained in place) on ``stage2`` and score it
    at every ``n`` of ``grid`` (``n = 0``: before stage 2), the KL taken to ``base``. Shared by every stage 1
    (SFT here, the other alignment algorithms in :mod:`elasticity_lab.experiments.algorithms`)."""
    _check_grid("grid", grid, perturb_batch_size)
    rows: list[dict[str, float]] = []

    def record(n: int) -> None:
        rows.append({"n": n, **evaluate(model, tokenizer, suite, probe, base, seed=seed, max_new_tokens=max_new_tokens)})

    record(0)
    at_step = {n // perturb_batch_size: n for n in grid if n > 0}
    if at_step:
        def on_step(step: int, _loss: float) -> None:
            if step in at_step:
                record(at_step[step])

        # copy_model=False: the callback scores the very model being trained, after each whole batch
        sft(model, tokenizer, list(stage2[: grid[-1]]), method=method, lr=lr, batch_size=perturb_batch_size,
            epochs=1.0, seed=seed + 7919, progress=False, copy_model=False, on_step=on_step)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- the study


@dataclass(frozen=True)
class _Unit:
    study: str
    task: str
    order: str
    base_kind: str
    step_mode: str
    n_align: int
    pretrain_seed: int
    seed: int


def plan(config: ReboundConfig) -> list[_Unit]:
    """Every curve a study needs, in the order they are run (main first, so a partial run is useful)."""
    units: list[_Unit] = []
    seeds = [(ps, s) for ps in config.pretrain_seeds for s in config.seeds]
    for ps, seed in seeds:
        for task in config.tasks:
            for na in config.n_align:
                units.append(_Unit("main", task, "forward", "pretrained", "epochs", na, ps, seed))
    for ps, seed in seeds:
        for task in config.reversed_tasks:
            if task in config.tasks:
                for na in (config.reversed_n_align or config.n_align):
                    units.append(_Unit("reversed", task, "reversed", "pretrained", "epochs", na, ps, seed))
        for task in config.fixed_steps_tasks:
            if task in config.tasks and not config.on_hub:
                for na in config.n_align:
                    units.append(_Unit("fixed_steps", task, "forward", "pretrained", "steps", na, ps, seed))
        for kind in config.control_bases:
            if config.on_hub and kind == "light":
                continue
            for task in config.control_tasks:
                if task in config.tasks:
                    for na in (config.control_n_align or config.n_align):
                        units.append(_Unit("control", task, "forward", kind, "epochs", na, ps, seed))
    return units


def train_seed(pretrain_seed: int, seed: int) -> int:
    """The fine-tuning seed nested in a pre-training seed (data, order and sampling all change with it)."""
    return seed + 1000 * pretrain_seed


def _curve_config(config: ReboundConfig) -> dict[str, Any]:
    """The part of the config a curve depends on (so that adding seeds or controls reuses cached curves)."""
    keep = ("scale", "preset", "pretrain_tokens", "hub_model", "safety_data", "sentiment_data", "method", "lr",
            "align_batch_size", "perturb_batch_size", "n_perturb", "n_prompts", "n_kl", "light_fraction", "max_new_tokens",
            "safety_scorer", "scorer_direction", "scorer_threshold")
    d = {k: getattr(config, k) for k in keep}
    d["fixed_steps"] = config.fixed_steps if config.fixed_steps is not None else _fixed_steps(config)
    return d


def _fixed_steps(config: ReboundConfig) -> int:
    """Steps of the fixed-steps control: those of the largest N_a at one epoch (small N_a repeat their data)."""
    return config.fixed_steps or math.ceil(max(config.n_align) / config.align_batch_size)


class _Runner:
    """Builds bases, suites and probes once per study and runs (or reads from the cache) each curve."""

    def __init__(self, config: ReboundConfig, progress: bool) -> None:
        self.config, self.progress = config, progress
        self._bases: dict[BaseSpec, Base] = {}
        self._suites: dict[tuple, tuple[Any, Probe]] = {}

    def base(self, kind: str, rate: float | None = None, pretrain_seed: int = 0) -> Base:
        spec = base_spec(self.config, kind, rate, pretrain_seed)
        if spec not in self._bases:
            self._bases[spec] = load_base(spec, progress=self.progress)
        return self._bases[spec]

    def suite(self, task: str, base: Base) -> tuple[Any, Probe]:
        key = (task, id(base.world))
        if key not in self._suites:
            c = self.config
            suite = HubTask(c.safety_data if task == "safety" else c.sentiment_data, task, max_new_tokens=c.max_new_tokens or 48,
                            safety_scorer=c.safety_scorer, scorer_direction=c.scorer_direction, scorer_threshold=c.scorer_threshold) \
                if c.on_hub else MicroTask(base.world, task)
            self._suites[key] = (suite, suite.probe(c.n_prompts, c.n_kl))
        return self._suites[key]

    def curve(self, u: _Unit) -> pd.DataFrame:
        c = self.config
        key = {"kind": "rebound-curve-v2", "unit": dataclasses.asdict(u), "config": _curve_config(c)}
        key["unit"].pop("study")
        if u.pretrain_seed == 0:
            key["unit"].pop("pretrain_seed")  # the curves of the first pre-trained base keep their cache entries
        if u.step_mode == "steps" and _fixed_steps(c) * c.align_batch_size == u.n_align:
            key["unit"]["step_mode"] = "epochs"  # the same run as one epoch: share the cached curve

        def compute() -> pd.DataFrame:
            t0 = time.perf_counter()
            base = self.base(u.base_kind, None, u.pretrain_seed)
            suite, probe = self.suite(u.task, base)
            first, second = ("aligned", "unaligned") if u.order == "forward" else ("unaligned", "aligned")
            seed = train_seed(u.pretrain_seed, u.seed)
            s1 = suite.data(first, u.n_align, seed)
            s2 = suite.data(second, c.n_perturb[-1], seed)
            steps = _fixed_steps(c) if u.step_mode == "steps" else None
            table = staged_curve(base.model, base.tokenizer, suite, probe, s1, s2, c.n_perturb, lr=c.lr, method=c.method,
                                 align_batch_size=c.align_batch_size, perturb_batch_size=c.perturb_batch_size,
                                 align_steps=steps, seed=seed, max_new_tokens=c.max_new_tokens)
            table["seconds"] = time.perf_counter() - t0  # the cost of this curve, kept with it in the cache
            return table

        table = cached_table("rebound", key, compute).copy()
        for k, v in dataclasses.asdict(u).items():
            table[k] = v
        return table

    def attractor_curve(self, kind: str, rate: float, direction: str, perturbation: str, pretrain_seed: int,
                        seed: int) -> pd.DataFrame:
        """One curve of the attractor test: stage 1 trains the world's base toward its base rate ± the shift
        (matched displacement), stage 2 applies ``perturbation``."""
        c = self.config
        key = {"kind": "rebound-attractor-v2", "base_kind": kind, "rate": rate, "direction": direction,
               "perturbation": perturbation, "pretrain_seed": pretrain_seed, "seed": seed, "shift": c.attractor_shift,
               "config": _curve_config(c), "tokens": c.attractor_tokens, "n_align": c.attractor_n_align,
               "grid": c.attractor_n_perturb, "batch": c.attractor_batch_size}

        def compute() -> pd.DataFrame:
            t0 = time.perf_counter()
            base = self.base(kind, rate, pretrain_seed)
            suite, probe = self.suite("safety", base)
            s = train_seed(pretrain_seed, seed)
            target = rate + c.attractor_shift if direction == "above" else rate - c.attractor_shift
            s1 = suite.data_at_rate(target, c.attractor_n_align, s)
            n2 = c.attractor_n_perturb[-1]
            s2 = replay_data(base, suite, n2, s) if perturbation == "replay" else suite.perturbation(perturbation, n2, s)
            table = staged_curve(base.model, base.tokenizer, suite, probe, s1, s2, c.attractor_n_perturb, lr=c.lr,
                                 method=c.method, align_batch_size=c.align_batch_size, perturb_batch_size=c.attractor_batch_size,
                                 seed=s, max_new_tokens=c.max_new_tokens)
            table["seconds"] = time.perf_counter() - t0
            return table

        table = cached_table("rebound", key, compute).copy()
        table["perturbation"], table["base_kind"], table["direction"] = perturbation, kind, direction
        table["base_rate"], table["pretrain_seed"], table["seed"] = rate, pretrain_seed, seed
        return table


def replay_data(base: Base, suite: Any, n: int, seed: int) -> list[tuple[str, str]]:
    """The built-in attractor: safety requests (harmful and benign, as in pre-training) answered by the *base model
    itself* (sampled at temperature 1), so stage 2 pulls each model toward its own pre-trained behaviour."""
    prompts = [e.prompt for e in suite.world.dataset("safety", n, behaviour="base", split="train", prompt_kind="mixed",
                                                       seed=1000 * 15 + seed)]
    answers = generate(base.model, base.tokenizer, prompts, max_new_tokens=16, seed=seed)
    return list(zip(prompts, answers))


def attractor_plan(config: ReboundConfig) -> list[tuple[str, float, str, str, int, int]]:
    """Every attractor curve: (base kind, rate, arm, perturbation, pre-training seed, fine-tuning seed)."""
    if config.on_hub or not config.attractor_rates:
        return []
    # the positive control asks only whether the pre-trained slope is 1: it needs no lightly pre-trained comparison
    return [(k, r, d, p, ps, s) for ps in config.pretrain_seeds for s in config.seeds for p in config.attractor_perturbations
            for k in config.attractor_bases for d in config.attractor_directions for r in config.attractor_rates
            if not (p == "positive_control" and k != "pretrained")]


def analyse_attractor(attractor: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Levels and slopes (with intervals and the pre-trained − light difference) of the attractor curves, both scores."""
    if not len(attractor):
        return pd.DataFrame(), pd.DataFrame()
    levels = pd.concat([attractor_levels(attractor, metric=m) for m in METRICS], ignore_index=True)
    slopes = pd.concat([attractor_slopes(levels[levels["metric"] == m]).assign(metric=m) for m in METRICS], ignore_index=True)
    return levels, slopes


def run_rebound(config: ReboundConfig | None = None, *, progress: bool = True, on_curve: Callable[[int, int], None] | None = None) -> ReboundResult:
    """Run (or read from the cache) every curve of a study and analyse them.

    Each curve is cached on its own as soon as it is done (atomic writes), so an interrupted study
    resumes where it stopped, and a study with more seeds or controls reuses the curves it shares.
    """
    config = config or default_config()
    runner = _Runner(config, progress)
    units = plan(config)
    att = attractor_plan(config)
    total = len(units) + len(att)
    bar = progress_bar(total=total, desc="rebound curves", enabled=progress)
    parts = []
    for i, u in enumerate(units):
        bar.set_postfix_str(f"{u.study} {u.task} N_a={u.n_align} seeds={u.pretrain_seed}/{u.seed}", refresh=False)
        parts.append(runner.curve(u))
        bar.update(1)
        if on_curve:
            on_curve(i + 1, total)
    att_parts = []
    for j, (k, r, d, p, ps, s) in enumerate(att):
        bar.set_postfix_str(f"attractor {p} {k} rate={r} {d} seeds={ps}/{s}", refresh=False)
        att_parts.append(runner.attractor_curve(k, r, d, p, ps, s))
        bar.update(1)
        if on_curve:
            on_curve(len(units) + j + 1, total)
    bar.close()
    curves = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["n", *GROUP])
    attractor = pd.concat(att_parts, ignore_index=True) if att_parts else pd.DataFrame()
    fits = pd.concat([curve_fits(curves, metric=m, epsilon=config.epsilon, epsilon_fraction=config.epsilon_fraction)
                      for m in METRICS], ignore_index=True) if parts else pd.DataFrame()
    kl = kl_table(fits) if parts else pd.DataFrame()
    levels, slopes = analyse_attractor(attractor)
    result = ReboundResult(config, curves, fits, kl, attractor, levels, slopes)
    result.summary = summarize(result)
    return result




# --------------------------------------------------------------------------- CLI


def cli_result(scale: str, n_seeds: int | None = None) -> dict[str, Any]:
    """``python -m elasticity_lab run rebound``: the config, every table as records, and the summary (JSON-able)."""
    scale = check_choice("scale", scale, SCALES)  # the CLI resolved it: an explicit --scale wins over the environment
    config = default_config(scale, n_seeds)
    try:
        result = run_rebound(config, progress=False)
    except HubUnreachableError:
        raise SystemExit(f"error: the Hugging Face Hub cannot be reached for the full scale ({config.hub_model}, "
                         f"{config.safety_data}, {config.sentiment_data}); run `python -m elasticity_lab run rebound "
                         f"--scale reader` instead (the micro-world, nothing to download).") from None
    tables = {"curves": result.curves, "fits": result.fits, "kl": result.kl, "attractor_levels": result.attractor_levels,
              "attractor_slopes": result.attractor_slopes, "paper_kl": PAPER_KL_TABLE}
    design = {"perturbations": list(config.attractor_perturbations), "arms": list(config.attractor_directions),
              "base_rates": list(config.attractor_rates), "pretrain_seeds": list(config.pretrain_seeds),
              "epsilon": config.epsilon_text()}
    return jsonable({"experiment": "rebound", "config": config.to_dict(), "design": design,
                      "tables": {k: v.to_dict("records") for k, v in tables.items()}, "summary": result.summary})


