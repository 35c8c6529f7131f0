"""Fine-tuning: SFT with response-only loss, full-parameter or LoRA, in a plain PyTorch loop.

Why a hand-written loop and not ``transformers.Trainer``: the experiments need the loss of every
step (the resistance metric is the *average training loss over the run*), checkpoints cut at
fractions of a run (θ₁, θ₂, θ₃), exact determinism on the CPU, and no overhead on models this
small (the throughput benchmark holds this loop to ≥ 0.9 of a bare PyTorch loop).

The authors' recipe: full-parameter SFT, lr 1e-5 constant, Adam betas (0.9, 0.95), one epoch, loss on
response tokens only. Micro-world models are 10⁴–10⁵ times smaller and need much larger rates:
:data:`DEFAULT_LR` holds the ones measured to move a base model's behaviour within a few hundred examples.

LoRA on a randomly initialised model barely lowers the loss: the adapters sit on the attention and
MLP projections, and a random model's output layer maps everything to near-uniform logits. For the
random-initialisation control with LoRA, add ``"lm_head"`` to ``lora_targets`` (or use full SFT).

LoRA across successive stages (alignment, then perturbation): ``lora_stage="merge"`` (the default)
merges the previous stage's adapter into the weights and starts a fresh one, so each stage is a new
fine-tune of the previous model, as with full SFT; ``lora_stage="continue"`` keeps training the same
adapter.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from elasticity_lab.lm.batching import IGNORE_INDEX, collate, encode_example, pad_id_of
from elasticity_lab.core.config import check_betas, check_choice, check_int, check_positive, check_range, check_seed, show_value
from elasticity_lab.lm.distributed import data_parallel
from elasticity_lab.lm.precision import grad_scaler
from elasticity_lab.lm.presets import autocast_for, cpu_threads, inference_threads
from elasticity_lab.core.progress import progress_bar

METHODS = ("full", "lora")
OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("constant", "cosine", "linear")
LORA_STAGES = ("merge", "continue")
DEFAULT_LORA_TARGETS: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
DEFAULT_LR = {"full": 1e-3, "lora": 3e-3}
"""Defaults for micro-world presets (the paper's 1e-5 barely moves a 10⁵-parameter model)."""


@dataclass(frozen=True)
class SFTConfig:
    """Hyper-parameters of one SFT stage (validated on creation, before any training)."""

    method: str = "full"
    lr: float | None = None
    epochs: float = 1.0
    max_steps: int | None = None
    batch_size: int = 16
    optimizer: str = "adamw"
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_fraction: float = 0.0
    grad_clip: float | None = 1.0
    lora_r: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    lora_targets: tuple[str, ...] = DEFAULT_LORA_TARGETS
    lora_stage: str = "merge"
    checkpoint_fractions: tuple[float, ...] = ()
    seed: int = 0
    threads: int | None = 1

    def __post_init__(self) -> None:
        check_choice("method", self.method, METHODS)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("lora_stage", self.lora_stage, LORA_STAGES)
        if self.lr is not None:
            check_positive("lr", self.lr)
        check_positive("epochs", self.epochs)
        if self.max_steps is not None:
            check_int("max_steps", self.max_steps, 1)
        check_int("batch_size", self.batch_size, 1)
        check_int("lora_r", self.lora_r, 1)
        check_positive("lora_alpha", self.lora_alpha)
        check_range("lora_dropout", self.lora_dropout, 0, 1, hi_open=True)
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        check_range("warmup_fraction", self.warmup_fraction, 0, 1, hi_open=True)
        check_betas("betas", self.betas)
        if self.grad_clip is not None:  # None: no clipping; a negative norm would turn steps into ascent
            check_range("grad_clip", self.grad_clip, 0, lo_open=True, why="or None for no clipping")
        if not isinstance(self.checkpoint_fractions, (tuple, list)):
            raise ValueError(f"checkpoint_fractions={self.checkpoint_fractions!r} is not allowed; it must be a tuple of numbers in (0, 1].")
        for f in self.checkpoint_fractions:
            check_range("checkpoint_fractions", f, 0, 1, lo_open=True)
        check_seed("seed", self.seed)
        if self.threads is not None:
            check_int("threads", self.threads, 1)
        if isinstance(self.lora_targets, str) or not isinstance(self.lora_targets, (tuple, list)) \
                or not all(isinstance(t, str) and t for t in self.lora_targets):
            raise ValueError(f"lora_targets={self.lora_targets!r} is not allowed; it must be a tuple of module names, e.g. ('q_proj', 'v_proj').")
        if not self.lora_targets:
            raise ValueError("lora_targets=() is not allowed; name at least one module, e.g. 'q_proj'.")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.method]


@dataclass
class SFTResult:
    """The fine-tuned model, its loss curve (one row per step) and models cut at ``checkpoint_fractions``."""

    model: Any
    curve: pd.DataFrame
    checkpoints: dict[float, Any]

    @property
    def mean_loss(self) -> float:
        """The average training loss over the run: the paper's resistance metric."""
        return float(self.curve["loss"].mean()) if len(self.curve) else float("nan")

    @property
    def final_loss(self) -> float:
        return float(self.curve["loss"].iloc[-1]) if len(self.curve) else float("nan")


# --------------------------------------------------------------------------- shared pieces


def example_order(config: Any, n: int) -> tuple[int, list[int]]:
    """The number of optimiser steps and the order in which the ``n`` examples are drawn: ``max_steps`` or
    ``epochs`` worth of batches, each epoch a fresh permutation from ``config.seed`` (SFT, preference and RL
    loops share it, so the same config draws the same batches in each)."""
    total = config.max_steps if config.max_steps is not None else max(1, math.ceil(config.epochs * n / config.batch_size))
    rng = np.random.default_rng(config.seed)
    order: list[int] = []
    while len(order) < total * config.batch_size:
        order.extend(rng.permutation(n).tolist())
    return total, order


def plain_step(model: Any, opt: torch.optim.Optimizer, loss: torch.Tensor, lr: float, grad_clip: float | None) -> None:
    """One optimiser step at learning rate ``lr`` without loss scaling, gradients clipped to ``grad_clip``
    over the trainable parameters (the preference and RL loops; SFT's loop adds fp16 loss scaling)."""
    for group in opt.param_groups:
        group["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], grad_clip)
    opt.step()


def make_optimizer(params: Any, name: str, lr: float, betas: tuple[float, float] = (0.9, 0.95), weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """AdamW, Adam or SGD over ``params`` (``foreach`` kernels: fewer Python calls per step; on CUDA, Adam and
    AdamW use the fused kernel, one launch per step)."""
    check_choice("optimizer", name, OPTIMIZERS)
    params = [p for p in params if p.requires_grad]
    fast: dict[str, bool] = {"fused": True} if params and all(p.device.type == "cuda" for p in params) else {"foreach": True}
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay, **fast)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay, **fast)
    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, foreach=True)


def lr_factor(step: int, total: int, schedule: str, warmup_steps: int = 0, min_ratio: float = 0.0) -> float:
    """The multiplier of the base learning rate at ``step`` (0-based) of ``total`` steps."""
    check_choice("schedule", schedule, SCHEDULES)
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant" or total <= warmup_steps:
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total - warmup_steps))
    if schedule == "linear":
        return min_ratio + (1.0 - min_ratio) * (1.0 - progress)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def next_token_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (nats) of predicting ``labels[:, t+1]`` from position ``t``; -100 ignored."""
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX
    )


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


# --------------------------------------------------------------------------- LoRA


def attach_lora(model: Any, config: SFTConfig) -> Any:
    """Wrap ``model`` with a fresh LoRA adapter, or keep training the one it has (``lora_stage``)."""
    from peft import LoraConfig, PeftModel, get_peft_model

    if isinstance(model, PeftModel):
        if config.lora_stage == "continue":
            for name, p in model.named_parameters():
                p.requires_grad = "lora_" in name
            return model
        model = model.merge_and_unload()
    targets: Any = list(config.lora_targets)
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    if tuple(targets) == DEFAULT_LORA_TARGETS and not names & set(targets):
        targets = "all-linear"  # a family without Llama's names (GPT-NeoX, Pythia: query_key_value, dense...): every linear layer but the head
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=targets, bias="none", task_type="CAUSAL_LM")
    torch.manual_seed(config.seed)
    return get_peft_model(model, lora)


def merged_copy(model: Any) -> Any:
    """A plain model with any LoRA adapter merged in (for scoring, saving, or as a next base)."""
    from peft import PeftModel

    clone = copy.deepcopy(model)
    return clone.merge_and_unload() if isinstance(clone, PeftModel) else clone


# --------------------------------------------------------------------------- SFT


def _examples_as_pairs(examples: Sequence[Any]) -> list[tuple[str, str]]:
    """``examples`` as (prompt, response) strings; anything else (a None, a number, a bare string) is refused."""
    if isinstance(examples, (str, bytes)) or not isinstance(examples, Sequence):
        raise ValueError(f"examples={show_value(examples)} is not allowed; it must be a list of Example objects, "
                         "(prompt, response) pairs or dicts with 'prompt' and 'response'.")
    pairs = []
    for i, ex in enumerate(examples):
        if hasattr(ex, "prompt") and hasattr(ex, "response"):
            pair = (ex.prompt, ex.response)
        elif isinstance(ex, (tuple, list)) and len(ex) == 2:
            pair = (ex[0], ex[1])
        elif isinstance(ex, dict) and "prompt" in ex and "response" in ex:
            pair = (ex["prompt"], ex["response"])
        else:
            raise ValueError(f"examples[{i}]={show_value(ex)} is not allowed; each example must be an Example, "
                             "a (prompt, response) pair or a dict with 'prompt' and 'response'.")
        for part, text in zip(("prompt", "response"), pair):
            if not isinstance(text, str):
                raise ValueError(f"examples[{i}] has {part}={show_value(text)}, which is not allowed; it must be a string.")
        pairs.append(pair)
    return pairs


def sft(
    model: Any,
    tokenizer: Any,
    examples: Sequence[Any],
    config: SFTConfig | None = None,
    *,
    progress: bool = True,
    copy_model: bool = True,
    on_step: Callable[[int, float], None] | None = None,
    **overrides: Any,
) -> SFTResult:
    """Supervised fine-tuning on ``examples`` with the loss on response tokens only.

    ``config`` fields can be overridden by keyword (``sft(m, tok, data, lr=1e-3, method="lora")``).
    The steps are ``ceil(epochs × len(examples) / batch_size)`` unless ``max_steps`` is given (the
    "fixed number of steps" control). The input model is copied unless ``copy_model=False``.
    Same seed, same data, same config → the same weights on the CPU. On the CPU the loop runs with
    ``config.threads`` threads (default 1: tiny models gain nothing from more, and a shared machine
    loses a lot; see :func:`elasticity_lab.lm.presets.cpu_threads`).
    """
    if config is not None and not isinstance(config, SFTConfig):
        raise ValueError(f"config={show_value(config)} is not allowed; it must be an SFTConfig or None.")
    names = {f.name for f in dataclasses.fields(SFTConfig)}
    for key in overrides:
        if key not in names:
            raise ValueError(f"{key}= is not an SFT option; choose from {', '.join(sorted(names))}.")
    config = dataclasses.replace(config or SFTConfig(), **overrides)
    _examples_as_pairs(examples)  # refuse bad data before copying the model
    on_cpu = model_device(model).type == "cpu"
    with cpu_threads(config.threads) if (on_cpu and config.threads) else contextlib.nullcontext():
        return _sft(model, tokenizer, examples, config, progress=progress, copy_model=copy_model, on_step=on_step)


def _sft(model: Any, tokenizer: Any, examples: Sequence[Any], config: SFTConfig, *, progress: bool, copy_model: bool,
         on_step: Callable[[int, float], None] | None) -> SFTResult:
    """The loop of :func:`sft` (its caller has set the thread count)."""
    pairs = _examples_as_pairs(examples)
    if not pairs:
        raise ValueError("examples is not allowed to be empty.")
    if copy_model:
        model = copy.deepcopy(model)
    if config.method == "lora":
        model = attach_lora(model, config)
    else:
        from peft import PeftModel

        if isinstance(model, PeftModel):
            model = model.merge_and_unload()
        for p in model.parameters():
            p.requires_grad = True
    device = model_device(model)
    pad = pad_id_of(tokenizer)
    encoded = [encode_example(tokenizer, p, r) for p, r in pairs]

    n = len(encoded)
    total, order = example_order(config, n)

    opt = make_optimizer(model.parameters(), config.optimizer, config.learning_rate, config.betas, config.weight_decay)
    # under `accelerate launch`: DDP or FSDP, each rank a share of every batch (lm.distributed); alone: a pass-through
    par = data_parallel(model, opt)
    trained, opt = par.model, par.optimizer
    warmup = int(config.warmup_fraction * total)
    cut_steps = {max(1, round(f * total)): f for f in config.checkpoint_fractions}
    checkpoints: dict[float, Any] = {}
    rows: list[tuple[int, int, float, float]] = []
    seen = 0
    torch.manual_seed(config.seed)
    trained.train()
    scaler = grad_scaler()  # loss scaling under ambient fp16 (lm.precision); a pass-through otherwise
    bar = progress_bar(range(total), desc=f"SFT ({config.method})", enabled=progress, leave=False)
    for step in bar:
        idx = order[step * config.batch_size:(step + 1) * config.batch_size]
        if config.max_steps is None and step == total - 1:
            # the last batch of a fractional/whole epoch takes only the examples left
            remaining = int(round(config.epochs * n)) - step * config.batch_size
            if 0 < remaining < len(idx):
                idx = idx[:remaining]
        mine, weight = par.share(idx)
        batch = collate([encoded[i] for i in mine], pad)
        batch = {k: v.to(device) for k, v in batch.items()}
        factor = lr_factor(step, total, config.schedule, warmup)
        for group in opt.param_groups:
            group["lr"] = config.learning_rate * factor
        with autocast_for(device):
            logits = trained(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            if par.active:
                loss, value = par.loss(logits, batch["labels"], weight)
            else:
                loss = next_token_loss(logits, batch["labels"])
        opt.zero_grad(set_to_none=True)
        par.backward(scaler.scale(loss))
        if config.grad_clip is not None:
            scaler.unscale_(opt)
            par.clip(config.grad_clip)
        scaler.step(opt)
        scaler.update()
        if not par.active:
            value = float(loss.detach())
        seen += len(idx)
        rows.append((step + 1, seen, value, config.learning_rate * factor))
        if on_step is not None:
            on_step(step + 1, value)
        if step + 1 in cut_steps:
            snap = copy.deepcopy(par.unwrap()).eval()
            checkpoints[cut_steps[step + 1]] = snap
    model = par.close()
    model.eval()
    curve = pd.DataFrame(rows, columns=["step", "examples", "loss", "lr"])
    curve["epoch"] = curve["examples"] / n
    return SFTResult(model=model, curve=curve, checkpoints=checkpoints)


@inference_threads
def evaluate_sft_loss(model: Any, tokenizer: Any, examples: Sequence[Any], *, batch_size: int = 64) -> float:
    """Token-averaged response-only loss (nats) of ``model`` on ``examples``, without training."""
    pairs = _examples_as_pairs(examples)
    if not pairs:
        raise ValueError("examples is not allowed to be empty.")
    pad = pad_id_of(tokenizer)
    device = model_device(model)
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for i in range(0, len(pairs), batch_size):
            batch = collate([encode_example(tokenizer, p, r) for p, r in pairs[i:i + batch_size]], pad)
            batch = {k: v.to(device) for k, v in batch.items()}
            with autocast_for(device):
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            labels = batch["labels"][:, 1:]
            n_tok = int((labels != IGNORE_INDEX).sum())
            total += float(next_token_loss(logits, batch["labels"])) * n_tok
            count += n_tok
    model.train(was_training)
    return total / max(count, 1)

