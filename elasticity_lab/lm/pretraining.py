"""Pre-training from scratch on a world's corpus, with checkpoints at token budgets, cached.

Why: the paper could not pre-train; here pre-training is the experiment's first stage, and the
volume of pre-training is an axis (the paper's TinyLlama 0.1T … 3T checkpoints). One run cuts
checkpoints at a list of token budgets (log-spaced by default, like Pythia's), so "lightly
pre-trained" bases are early checkpoints of the same run. Runs are stored under a hash of
world config + model preset + training config + library version + the code it runs
(:mod:`elasticity_lab.core.cache`): a second request trains nothing, and an interrupted run resumes from
its last saved state (one file: model, optimizer, step and curve together) and ends with the same
weights as an uninterrupted one. A damaged file in a stored run is reported in one line and the run
is trained again; two processes asking for the same run train it once (the second waits).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from elasticity_lab.core.cache import (
    CacheDamage,
    discard,
    entry_dir,
    entry_lock,
    load_json,
    load_table,
    load_tensors,
    load_torch_state,
    read_verified,
    report_damage,
    save_json,
    save_table,
    save_tensors,
    save_torch_state,
)
from elasticity_lab.core.config import (by_scale, check_betas, check_choice, check_int, check_positive, check_range, check_seed,
                                        show_value)
from elasticity_lab.core.progress import progress_bar
from elasticity_lab.lm.presets import (MAX_POSITIONS, PRESETS, as_device, autocast_for, cpu_threads, device_tag, inference_threads,
                                       model_config, preset_dict, random_model)
from elasticity_lab.lm.shipped import shipped_checksums, shipped_dir
from elasticity_lab.lm.training import SCHEDULES, lr_factor, make_optimizer, next_token_loss
from elasticity_lab.microworld.world import World, WorldConfig

LN2 = math.log(2)
RESUME_FILE = "resume.pt"
"""A run's resume state: one file (model, optimizer, step, seconds, curve), written atomically with its checksum."""
PREGENERATE_TOKENS = 64 * 2**20
"""Runs up to this many tokens generate their corpus before the loop (≤ 0.5 GB); longer ones stream it."""


MAX_PRETRAIN_TOKENS = 10**11
"""The largest token budget a config accepts (``full`` runs on a GPU use about 10⁸; more would never finish)."""


@dataclass(frozen=True)
class PretrainConfig:
    """One pre-training run. ``checkpoints`` are token budgets (``None``: log-spaced, see :func:`log_budgets`).

    AdamW at lr 5e-3 with warm-up and cosine decay to 10 %: what a prototype found to learn the
    world's base rates at the ``micro`` size (chapter 5 measures how closely).

    ``threads`` CPU threads (``None``: torch's default) are part of the run's identity, because float
    sums depend on how work is split: one thread makes the weights the same on every machine with
    the same torch build, and on a shared 2-core machine it was 2–8× faster than two threads
    competing with other processes. It has no effect on a GPU.
    """

    tokens: int = 4_000_000
    batch_size: int = 64
    seq_len: int = 64
    lr: float = 5e-3
    min_lr_ratio: float = 0.1
    warmup_fraction: float = 0.02
    schedule: str = "cosine"
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.1
    grad_clip: float | None = 1.0
    checkpoints: tuple[int, ...] | None = None
    n_checkpoints: int = 7
    eval_tokens: int = 32_768
    seed: int = 0
    threads: int | None = 1

    def __post_init__(self) -> None:
        check_int("tokens", self.tokens, 1, MAX_PRETRAIN_TOKENS, why="a budget one run can finish")
        if self.threads is not None:
            check_int("threads", self.threads, 1)
        check_int("batch_size", self.batch_size, 1)
        check_int("seq_len", self.seq_len, 8, MAX_POSITIONS, why="the presets' positions")
        check_positive("lr", self.lr)
        check_range("min_lr_ratio", self.min_lr_ratio, 0, 1)
        check_range("warmup_fraction", self.warmup_fraction, 0, 1, hi_open=True)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_betas("betas", self.betas)
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        if self.grad_clip is not None:  # None: no clipping; a negative norm would turn steps into ascent
            check_range("grad_clip", self.grad_clip, 0, lo_open=True, why="or None for no clipping")
        check_int("n_checkpoints", self.n_checkpoints, 1)
        check_int("eval_tokens", self.eval_tokens, 0, MAX_PRETRAIN_TOKENS)
        check_seed("seed", self.seed)
        if self.tokens < self.tokens_per_step:
            raise ValueError(f"tokens={self.tokens} is not allowed; it must be at least one step (batch_size × seq_len = {self.tokens_per_step}).")
        if self.checkpoints is not None:
            if not isinstance(self.checkpoints, (tuple, list)):
                raise ValueError(f"checkpoints={show_value(self.checkpoints)} is not allowed; it must be a tuple of token budgets or None.")
            for b in self.checkpoints:
                check_int("checkpoints", b, 1, self.tokens, why="each a token budget within tokens")

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_len

    @property
    def total_steps(self) -> int:
        return self.tokens // self.tokens_per_step

    def checkpoint_steps(self) -> list[int]:
        """Steps at which a checkpoint is saved (budgets rounded to whole steps; the last step always)."""
        budgets = self.checkpoints if self.checkpoints is not None else log_budgets(self.tokens, self.n_checkpoints, self.tokens_per_step)
        steps = {max(1, round(b / self.tokens_per_step)) for b in budgets}
        steps.add(self.total_steps)
        return sorted(s for s in steps if s <= self.total_steps)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def log_budgets(tokens: int, n: int, step_tokens: int = 1) -> list[int]:
    """``n`` log-spaced token budgets ending at ``tokens`` (factor 4 apart, or denser if they would go below one step)."""
    check_positive("n", n)
    lowest = max(step_tokens, tokens / 4 ** (n - 1))
    return sorted({int(round(x)) for x in np.geomspace(lowest, tokens, n)})


READER_TOKENS: dict[str, int] = {
    "nano": 6_291_456, "micro": 6_291_456, "small": 2_097_152, "medium": 1_048_576, "large": 524_288, "full": 1_048_576, "xl": 262_144,
}
"""Reader-scale budgets: ``micro`` (the book's default) gets what a prototype found enough to learn the
base rates, in ≤ 3 minutes on 2 cores; larger presets get what fits in about as long (measured 1-thread
throughput on a shared 2-core machine: nano ~90k, micro ~30–40k, small ~12k, medium ~5k, large ~2.5k
tokens/s), so they are *less* trained. A size comparison at equal tokens needs ``tokens=`` (or a GPU)."""


def default_pretrain_config(preset: str = "micro", scale: str = "reader", *, seed: int = 0, **overrides: Any) -> PretrainConfig:
    """The book's pre-training budget for a preset at a scale (reader: ≤ 3 minutes for ``micro`` on 2 cores)."""
    check_choice("preset", preset, PRESETS)
    tokens = by_scale(
        scale,
        smoke=262_144,
        reader=READER_TOKENS[preset],
        full={"full": 200_000_000}.get(preset, 33_554_432),
    )
    base = dict(tokens=tokens, seed=seed)
    if preset in ("full", "xl") and scale == "full":
        base.update(batch_size=128, seq_len=128, lr=1e-3)
    elif preset in ("medium", "large"):
        base.update(lr=2e-3)
    base.update(overrides)
    return PretrainConfig(**base)


# --------------------------------------------------------------------------- data


def token_batches(world: World, config: PretrainConfig, start_step: int = 0, stream: int = 0) -> Iterator[torch.Tensor]:
    """``(batch_size, seq_len)`` blocks of the packed corpus, from step ``start_step`` on.

    The stream is cut into consecutive blocks in order (documents are i.i.d., so no shuffling is
    needed); a resumed run regenerates the corpus up to where it stopped, which costs a fraction
    of a second per million tokens.
    """
    need = config.tokens_per_step
    skip = start_step * need
    buf = np.empty(0, dtype=np.int64)
    for chunk in world.iter_tokens(stream):
        if skip >= len(chunk):
            skip -= len(chunk)
            continue
        if skip:
            chunk = chunk[skip:]
            skip = 0
        buf = np.concatenate([buf, chunk])
        while len(buf) >= need:
            block, buf = buf[:need], buf[need:]
            yield torch.from_numpy(block.reshape(config.batch_size, config.seq_len).copy())


def heldout_tokens(world: World, n_tokens: int, seq_len: int) -> torch.Tensor:
    """Held-out blocks (corpus stream 1) for bits per token; never seen in training."""
    n_blocks = max(1, n_tokens // seq_len)
    return torch.from_numpy(world.corpus(n_blocks * seq_len, stream=1).reshape(n_blocks, seq_len).copy())


@torch.no_grad()
@inference_threads
def stream_loss(model: Any, blocks: torch.Tensor, batch_size: int = 64) -> float:
    """Mean next-token loss (nats) over packed blocks."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for i in range(0, len(blocks), batch_size):
        x = blocks[i:i + batch_size].to(device)
        with autocast_for(device):
            loss = next_token_loss(model(input_ids=x).logits, x)
        n = x.shape[0] * (x.shape[1] - 1)
        total += float(loss) * n
        count += n
    model.train(was)
    return total / count


# --------------------------------------------------------------------------- runs


@dataclass
class PretrainRun:
    """A finished (or cached) run: where its checkpoints are, its loss curve, and loaders."""

    path: Path
    world: World
    preset: str
    config: PretrainConfig
    curve: pd.DataFrame
    seconds: float
    shipped_checksums: dict[str, str] | None = None
    """For a base shipped with the package: SHA-256 of each checkpoint (from the manifest), checked on load."""

    @property
    def budgets(self) -> list[int]:
        """Token budgets of the saved checkpoints, ascending."""
        return [s * self.config.tokens_per_step for s in self.config.checkpoint_steps()]

    def checkpoint_path(self, tokens: int) -> Path:
        return self.path / f"tokens-{tokens}" / "model.safetensors"

    def load(self, tokens: int | None = None, *, device: torch.device | str = "cpu") -> Any:
        """The model at a checkpoint (``None``: the last one), in eval mode."""
        budgets = self.budgets
        tokens = budgets[-1] if tokens is None else tokens
        if tokens not in budgets:
            raise ValueError(f"tokens={tokens!r} is not a checkpoint of this run; choose one of {budgets}.")
        model = random_model(self.preset, len(self.world.vocabulary), seed=self.config.seed, device="cpu")
        model.load_state_dict(self._weights(tokens))
        model.config._attn_implementation = model_config(self.preset, len(self.world.vocabulary), device=device)._attn_implementation
        return model.to(device).eval()

    def tokenizer(self) -> Any:
        return self.world.tokenizer()

    def _weights(self, tokens: int) -> dict[str, torch.Tensor]:
        """A checkpoint's tensors, verified; a damaged cached checkpoint is reported and the run trained again."""
        path = self.checkpoint_path(tokens)
        if self.shipped_checksums is not None:
            rel = path.relative_to(self.path).as_posix()
            try:
                return load_tensors(path, sha256=self.shipped_checksums.get(rel), verify=False)
            except CacheDamage as err:
                raise CacheDamage(err.path, f"{err.problem} (a file shipped with the package: reinstall elasticity_lab, "
                                            "or pass use_shipped=False to pretrain)") from None
        try:
            return load_tensors(path)
        except CacheDamage as err:
            report_damage(err, "training the run again")
            discard(path, self.path / "done.json")
            again = pretrain(self.world, self.preset, self.config, progress=False, use_shipped=False)
            self.path, self.curve, self.seconds = again.path, again.curve, again.seconds
            return load_tensors(self.checkpoint_path(tokens))


def run_key(world: World, preset: str, config: PretrainConfig) -> dict[str, Any]:
    """What a run's weights depend on (the cache key; the library version is added by the cache)."""
    return {"kind": "pretrain", "world": world.config.to_dict(), "model": preset_dict(preset, len(world.vocabulary)), "train": config.to_dict()}


def run_dir(world: World, preset: str, config: PretrainConfig, device: torch.device | str = "cpu") -> Path:
    """The cache folder of a run (its key: :func:`run_key`, the device off the CPU, and the code of this module and
    what it imports)."""
    return entry_dir("pretrain", {**run_key(world, preset, config), **device_tag(device)}, code=__name__)


def _state_dict(model: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def _finished_run(path: Path, world: World, preset: str, config: PretrainConfig) -> PretrainRun | None:
    """The stored run in ``path`` if it is complete and sound; a damaged file is reported, and the run counts as absent."""
    done_file = path / "done.json"
    if not done_file.exists() and not (path / "done.json.sha256").exists():
        return None
    try:
        info = load_json(done_file)
        curve = load_table(path / "curve.json")
        if len(curve) != config.total_steps:
            raise CacheDamage(path / "curve.json", f"has {len(curve)} steps, the run has {config.total_steps}")
        for step in config.checkpoint_steps():
            read_verified(path / f"tokens-{step * config.tokens_per_step}" / "model.safetensors")
    except CacheDamage as err:
        report_damage(err, "training the run again")
        discard(err.path, done_file)
        return None
    return PretrainRun(path, world, preset, config, curve, float(info.get("seconds", 0.0)))


def _load_resume(file: Path, total: int) -> dict[str, Any] | None:
    """A resume state (model, optimizer, step, seconds, curve rows: one file, so never a mismatched set), or ``None``."""
    if not file.exists() and not (file.parent / (file.name + ".sha256")).exists():
        return None
    try:
        state = load_torch_state(file)
        step = int(state["step"])
        if not 0 < step < total or len(state["curve"]) != step:
            raise CacheDamage(file, f"inconsistent: step {step} of {total} with {len(state['curve'])} curve rows")
        return state
    except CacheDamage as err:
        report_damage(err, "pre-training from the start")
    except (KeyError, TypeError, ValueError) as err:
        report_damage(CacheDamage(file, f"not a resume state ({err!r})"), "pre-training from the start")
    discard(file)
    return None


def pretrain(
    world: World | WorldConfig | None = None,
    preset: str = "micro",
    config: PretrainConfig | None = None,
    *,
    device: torch.device | str = "cpu",
    progress: bool = True,
    resume_every: int | None = None,
    stop_after_steps: int | None = None,
    use_shipped: bool = True,
) -> PretrainRun:
    """Pre-train ``preset`` on ``world``'s corpus (or read the run from the cache).

    Saves a checkpoint at each budget of ``config.checkpoint_steps()`` and a resume state (model,
    optimizer, step, curve) at every checkpoint and every ``resume_every`` steps (default: a tenth
    of the run). ``stop_after_steps`` interrupts the run on purpose (used by the resume test).
    A base shipped with the package (:mod:`elasticity_lab.lm.shipped`) is used as is unless ``use_shipped=False``.
    """
    if world is not None and not isinstance(world, (World, WorldConfig)):
        raise ValueError(f"world={show_value(world)} is not allowed; it must be a World, a WorldConfig or None (the default world).")
    world = world if isinstance(world, World) else World(world)
    check_choice("preset", preset, PRESETS)
    if config is not None and not isinstance(config, PretrainConfig):
        raise ValueError(f"config={show_value(config)} is not allowed; it must be a PretrainConfig or None.")
    config = config or default_pretrain_config(preset)
    device = as_device(device)
    if resume_every is not None:
        check_int("resume_every", resume_every, 1)
    if stop_after_steps is not None:
        check_int("stop_after_steps", stop_after_steps, 1)
    # on the CPU the key is the run's alone (shipped bases and old caches stay valid); a GPU run (bf16
    # autocast, TF32) gets its own entry, since its weights differ from the CPU's in the last bits
    key = {**run_key(world, preset, config), **device_tag(device)}
    if use_shipped and not device_tag(device):
        shipped = shipped_dir(key)
        if shipped is not None:
            info = load_json(shipped / "done.json", verify=False)
            return PretrainRun(shipped, world, preset, config, load_table(shipped / "curve.json", verify=False),
                               float(info.get("seconds", 0.0)), shipped_checksums(shipped))
    path = run_dir(world, preset, config, device)
    found = _finished_run(path, world, preset, config)
    if found is not None:
        return found
    with entry_lock(path):  # a second process asking for this run waits here, then reads it
        found = _finished_run(path, world, preset, config)
        if found is not None:
            return found
        return _train(path, world, preset, config, device, progress, resume_every, stop_after_steps)


def _train(path: Path, world: World, preset: str, config: PretrainConfig, device: torch.device, progress: bool,
           resume_every: int | None, stop_after_steps: int | None) -> PretrainRun:
    done_file = path / "done.json"
    total = config.total_steps
    ckpt_steps = set(config.checkpoint_steps())
    resume_every = resume_every or max(1, total // 10)
    warmup = int(config.warmup_fraction * total)
    vocab = len(world.vocabulary)
    model = random_model(preset, vocab, seed=config.seed, device=device)
    opt = make_optimizer(model.parameters(), "adamw", config.lr, config.betas, config.weight_decay)
    rows: list[dict[str, float]] = []
    start = 0
    seconds = 0.0
    resume_file = path / RESUME_FILE
    state = _load_resume(resume_file, total)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start = int(state["step"])
        seconds = float(state["seconds"])
        rows = [dict(r) for r in state["curve"]]
        del state
    eval_blocks = heldout_tokens(world, config.eval_tokens, config.seq_len) if config.eval_tokens else None

    def save_resume(step: int) -> None:
        save_torch_state(resume_file, {"model": _state_dict(model), "optimizer": opt.state_dict(), "step": step,
                                       "seconds": seconds, "curve": [dict(r) for r in rows]})

    model.train()
    threads = cpu_threads(config.threads) if (device.type == "cpu" and config.threads) else contextlib.nullcontext()
    threads.__enter__()
    t0 = time.perf_counter()
    batches = token_batches(world, config, start)
    if (total - start) * config.tokens_per_step <= PREGENERATE_TOKENS:
        # generate the corpus before the loop, so that the loop itself is as lean as a bare one
        batches = iter(list(itertools.islice(batches, total - start)))
    bar = progress_bar(total=total, initial=start, desc=f"pre-training {preset}", unit="step", enabled=progress, leave=False)
    params = [p for p in model.parameters()]
    for step in range(start, total):
        x = next(batches).to(device)
        factor = lr_factor(step, total, config.schedule, warmup, config.min_lr_ratio)
        for group in opt.param_groups:
            group["lr"] = config.lr * factor
        with autocast_for(device):
            loss = next_token_loss(model(input_ids=x).logits, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        opt.step()
        value = float(loss.detach())
        done = step + 1
        row = {"step": done, "tokens": done * config.tokens_per_step, "loss": value, "bits_per_token": value / LN2,
               "lr": config.lr * factor, "heldout_bits_per_token": float("nan"), "seconds": seconds + time.perf_counter() - t0}
        bar.update(1)
        if done in ckpt_steps:
            if eval_blocks is not None:
                row["heldout_bits_per_token"] = stream_loss(model, eval_blocks) / LN2
            # no metadata: safetensors writes a metadata map in random key order, and the shipped
            # checksums must depend on the weights alone
            save_tensors(path / f"tokens-{done * config.tokens_per_step}" / "model.safetensors", _state_dict(model))
        rows.append(row)
        if done in ckpt_steps or done % resume_every == 0 or (stop_after_steps is not None and done >= stop_after_steps):
            seconds_now = seconds + time.perf_counter() - t0
            seconds, t0 = seconds_now, time.perf_counter()
            if done < total:
                save_resume(done)
        if stop_after_steps is not None and done >= stop_after_steps and done < total:
            bar.close()
            threads.__exit__(None, None, None)
            raise InterruptedError(f"pre-training stopped on request after {done} steps; call pretrain again to resume.")
    bar.close()
    threads.__exit__(None, None, None)
    seconds += time.perf_counter() - t0
    curve = pd.DataFrame(rows)
    save_table(path / "curve.json", curve)
    save_json(done_file, {"seconds": seconds, "steps": total, "tokens": total * config.tokens_per_step,
                          "source_bits_per_token": world.entropy_per_token("bits")})
    discard(resume_file)
    return PretrainRun(path, world, preset, config, curve, seconds)
