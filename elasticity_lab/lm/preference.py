"""Preference optimisation: DPO, KTO and SimPO in the library's own short training loop.

Why these three beside SFT: the paper reports the rebound after aligning with SFT, PPO, DPO, KTO and
SimPO and concludes that elasticity belongs to the model, not to the algorithm. The three differ in
what they need and what they push:

- **DPO** (Rafailov et al. 2023) needs *pairs* and a frozen *reference* model; it raises the
  chosen response's log-ratio to the reference above the rejected one's.
- **KTO** (Ethayarajh et al. 2024) needs only *unpaired* good/bad examples and a reference; each
  example's log-ratio is compared with a batch estimate of KL(π_θ ‖ π_ref), not with a partner.
- **SimPO** (Meng et al. 2024) needs pairs but *no reference*: it uses the length-normalised
  log-probability itself as the implicit reward, with a target margin γ.

Each loss below is a few lines with its formula in the docstring; ``tests/test_preference.py``
checks every one against TRL's trainers (``DPOTrainer``, ``KTOTrainer``, ``CPOTrainer`` with
``loss_type="simpo"``) on the same model, batch and hyper-parameters. At the ``full`` scale on hub
models, use TRL's trainers directly, as a practitioner would; this loop is for reading and for the
micro-world, where it is exact, deterministic on the CPU and has no overhead.

Log-probabilities are over response tokens only (the prompt masked, the end token included), the
same positions as :func:`elasticity_lab.lm.training.sft`'s loss.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from elasticity_lab.lm.batching import IGNORE_INDEX, collate, encode_example, pad_id_of
from elasticity_lab.core.config import check_choice, check_positive, check_range
from elasticity_lab.core.progress import progress_bar
from elasticity_lab.lm.presets import cpu_threads
from elasticity_lab.lm.training import (
    SFTConfig,
    attach_lora,
    example_order,
    lr_factor,
    make_optimizer,
    model_device,
    plain_step,
)

ALGORITHMS: tuple[str, ...] = ("dpo", "kto", "simpo")
DEFAULT_BETA: dict[str, float] = {"dpo": 0.1, "kto": 0.1, "simpo": 2.0}
"""β per algorithm: DPO's and KTO's usual 0.1; SimPO's paper uses 2.0–2.5 (its reward is a per-token average)."""
NEEDS_REFERENCE: dict[str, bool] = {"dpo": True, "kto": True, "simpo": False}


# --------------------------------------------------------------------------- the losses


def dpo_loss(chosen_logps: torch.Tensor, rejected_logps: torch.Tensor, ref_chosen_logps: torch.Tensor,
             ref_rejected_logps: torch.Tensor, beta: float) -> torch.Tensor:
    """DPO: L = −mean log σ(β [(log π_θ(y_w|x) − log π_ref(y_w|x)) − (log π_θ(y_l|x) − log π_ref(y_l|x))]).

    ``*_logps`` are summed log-probabilities of whole responses (one per pair); y_w is chosen, y_l rejected.
    """
    margin = (chosen_logps - ref_chosen_logps) - (rejected_logps - ref_rejected_logps)
    return -F.logsigmoid(beta * margin).mean()


def kto_loss(logps: torch.Tensor, ref_logps: torch.Tensor, desirable: torch.Tensor, kl_logps: torch.Tensor,
             ref_kl_logps: torch.Tensor, beta: float, desirable_weight: float = 1.0,
             undesirable_weight: float = 1.0) -> torch.Tensor:
    """KTO: with r = log π_θ(y|x) − log π_ref(y|x) and z₀ = max(0, mean over mismatched (x, y′) of the same ratio),

    L = mean over examples of  λ_D (1 − σ(β (r − z₀)))  if y is desirable,  λ_U (1 − σ(β (z₀ − r)))  if not.

    z₀ estimates KL(π_θ ‖ π_ref) from responses paired with the wrong prompts and is not
    differentiated (``kl_logps`` are computed without gradient); ``desirable`` is a boolean tensor.
    """
    z0 = (kl_logps - ref_kl_logps).mean().detach().clamp(min=0)
    r = logps - ref_logps
    losses = torch.where(desirable, desirable_weight * (1 - torch.sigmoid(beta * (r - z0))),
                         undesirable_weight * (1 - torch.sigmoid(beta * (z0 - r))))
    return losses.mean()


def simpo_loss(chosen_mean_logps: torch.Tensor, rejected_mean_logps: torch.Tensor, beta: float, gamma: float) -> torch.Tensor:
    """SimPO: L = −mean log σ(β/|y_w| · log π_θ(y_w|x) − β/|y_l| · log π_θ(y_l|x) − γ). No reference model.

    ``*_mean_logps`` are log-probabilities averaged over each response's tokens (the 1/|y| above).
    """
    return -F.logsigmoid(beta * (chosen_mean_logps - rejected_mean_logps) - gamma).mean()


def sequence_logps(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed log-probability, token count) of each sequence's response positions (labels ≠ -100).

    ``batch`` is a :func:`elasticity_lab.lm.batching.collate` output; gradients flow unless the caller
    disables them.
    """
    device = model_device(model)
    b = {k: v.to(device) for k, v in batch.items()}
    logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits[:, :-1].float()
    labels = b["labels"][:, 1:]
    mask = labels != IGNORE_INDEX
    token_logps = torch.log_softmax(logits, -1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (token_logps * mask).sum(1), mask.sum(1)


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class PreferenceConfig(SFTConfig):
    """One preference-optimisation stage: the SFT stage's optimiser/LoRA fields plus the algorithm's own.

    ``beta`` (None: :data:`DEFAULT_BETA` of the algorithm) is DPO's and KTO's inverse temperature of
    the log-ratio reward and SimPO's reward scale; ``gamma`` is SimPO's target margin (unused by the
    others); ``desirable_weight`` / ``undesirable_weight`` are KTO's λ_D and λ_U. Validated on creation.
    """

    algorithm: str = "dpo"
    beta: float | None = None
    gamma: float = 0.5
    desirable_weight: float = 1.0
    undesirable_weight: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("algorithm", self.algorithm, ALGORITHMS)
        if self.beta is not None:
            check_range("beta", self.beta, 0, lo_open=True, why="the strength of the implicit reward")
        check_range("gamma", self.gamma, 0, why="SimPO's target margin")
        check_positive("desirable_weight", self.desirable_weight)
        check_positive("undesirable_weight", self.undesirable_weight)
        if self.algorithm == "kto" and self.batch_size < 2:
            raise ValueError(f"batch_size={self.batch_size!r} is not allowed for KTO; it must be >= 2 "
                             f"(the KL estimate pairs each prompt with another example's response).")
        if self.checkpoint_fractions:
            raise ValueError(f"checkpoint_fractions={self.checkpoint_fractions!r} is not supported by preference_train; leave it empty.")

    @property
    def strength(self) -> float:
        """The β in use."""
        return float(self.beta) if self.beta is not None else DEFAULT_BETA[self.algorithm]


@dataclass
class PreferenceResult:
    """The trained model and its loss curve (one row per step)."""

    model: Any
    curve: pd.DataFrame

    @property
    def final_loss(self) -> float:
        return float(self.curve["loss"].iloc[-1]) if len(self.curve) else float("nan")


# --------------------------------------------------------------------------- data


def _check_texts(items: list[tuple[Any, ...]], names: tuple[str, str]) -> None:
    """One sentence for the first prompt or response that is not a string (a None would train on "None")."""
    for i, item in enumerate(items):
        for name, text in zip(names, item):
            if not isinstance(text, str):
                raise ValueError(f"data[{i}] has {name}={text!r}, which is not allowed; it must be a string.")


def as_pairs(data: Sequence[Any]) -> list[tuple[str, str, str]]:
    """(prompt, chosen, rejected) triples from :class:`PreferencePair` objects, tuples or dicts."""
    out = []
    for d in data:
        if hasattr(d, "chosen") and hasattr(d, "rejected"):
            out.append((d.prompt, d.chosen, d.rejected))
        elif isinstance(d, dict) and {"prompt", "chosen", "rejected"} <= set(d):
            out.append((d["prompt"], d["chosen"], d["rejected"]))
        elif isinstance(d, (tuple, list)) and len(d) == 3 and all(isinstance(x, str) for x in d):
            out.append((d[0], d[1], d[2]))
        else:
            raise ValueError(f"data contains {d!r}; DPO and SimPO need preference pairs (prompt, chosen, rejected).")
    _check_texts(out, ("prompt", "chosen", "rejected"))
    return out


def as_labelled(data: Sequence[Any]) -> list[tuple[str, str, bool]]:
    """(prompt, response, desirable) triples; preference pairs are split into one good and one bad example."""
    out = []
    for d in data:
        if hasattr(d, "chosen") and hasattr(d, "rejected"):
            out += [(d.prompt, d.chosen, True), (d.prompt, d.rejected, False)]
        elif hasattr(d, "desirable"):
            out.append((d.prompt, d.response, bool(d.desirable)))
        elif isinstance(d, dict) and {"prompt", "response", "desirable"} <= set(d):
            out.append((d["prompt"], d["response"], bool(d["desirable"])))
        elif isinstance(d, (tuple, list)) and len(d) == 3 and isinstance(d[2], (bool, np.bool_)):
            out.append((d[0], d[1], bool(d[2])))
        else:
            raise ValueError(f"data contains {d!r}; KTO needs (prompt, response, desirable) examples or preference pairs.")
    _check_texts(out, ("prompt", "response"))
    return out


def check_reference(algorithm: str, model: Any, ref_model: Any | None) -> None:
    """A ValueError unless the reference model fits the algorithm (none for SimPO; same vocabulary otherwise)."""
    if ref_model is None:
        return
    if not NEEDS_REFERENCE[algorithm]:
        raise ValueError(f"ref_model is not allowed for algorithm={algorithm!r}; SimPO is reference-free, pass ref_model=None.")
    if ref_model is model:
        raise ValueError("ref_model is not allowed to be the model being trained; pass a frozen copy (or None for one).")
    v_model, v_ref = model.get_output_embeddings().weight.shape[0], ref_model.get_output_embeddings().weight.shape[0]
    if v_model != v_ref:
        raise ValueError(f"ref_model has a vocabulary of {v_ref} tokens; it must match the model's {v_model}.")


# --------------------------------------------------------------------------- the loop


def preference_train(model: Any, tokenizer: Any, data: Sequence[Any], config: PreferenceConfig | None = None, *,
                     ref_model: Any | None = None, progress: bool = False, copy_model: bool = True,
                     on_step: Callable[[int, float], None] | None = None, **overrides: Any) -> PreferenceResult:
    """Align ``model`` on ``data`` with DPO, KTO or SimPO (``config.algorithm``).

    DPO and SimPO take preference pairs; KTO takes labelled examples (or pairs, split in two). DPO
    and KTO compare with a frozen reference: ``ref_model``, or by default a frozen copy of ``model``
    as it is before training (the usual choice: the model being aligned). One step takes
    ``batch_size`` pairs (or examples); steps are ``ceil(epochs × n / batch_size)`` unless
    ``max_steps`` is given. ``config`` fields can be overridden by keyword, as with :func:`sft`.
    Everything is validated before any training.
    """
    config = dataclasses.replace(config or PreferenceConfig(), **overrides)
    check_reference(config.algorithm, model, ref_model)
    items: list[Any] = as_labelled(data) if config.algorithm == "kto" else as_pairs(data)
    if not items:
        raise ValueError("data is not allowed to be empty.")
    if config.algorithm == "kto" and len({d for _, _, d in items}) < 2:
        raise ValueError("data has only one kind of example; KTO needs both desirable and undesirable ones.")
    on_cpu = model_device(model).type == "cpu"
    with cpu_threads(config.threads) if (on_cpu and config.threads) else contextlib.nullcontext():
        return _train(model, tokenizer, items, config, ref_model, progress=progress, copy_model=copy_model, on_step=on_step)


def _prepare(model: Any, config: SFTConfig, copy_model: bool) -> Any:
    """A trainable model: copied, with a fresh LoRA adapter or all parameters trainable (as in :func:`sft`)."""
    if copy_model:
        model = copy.deepcopy(model)
    if config.method == "lora":
        return attach_lora(model, config)
    from peft import PeftModel

    if isinstance(model, PeftModel):
        model = model.merge_and_unload()
    for p in model.parameters():
        p.requires_grad = True
    return model


def frozen(model: Any) -> Any:
    """A frozen copy for reference (plain weights, LoRA merged, no gradients, eval mode)."""
    from elasticity_lab.lm.training import merged_copy

    ref = merged_copy(model).eval()
    for p in ref.parameters():
        p.requires_grad = False
    return ref


def _train(model: Any, tokenizer: Any, items: list[Any], config: PreferenceConfig, ref_model: Any | None, *,
           progress: bool, copy_model: bool, on_step: Callable[[int, float], None] | None) -> PreferenceResult:
    algo = config.algorithm
    if NEEDS_REFERENCE[algo]:
        ref_model = frozen(model) if ref_model is None else ref_model.eval()
    model = _prepare(model, config, copy_model)
    pad = pad_id_of(tokenizer)
    if algo == "kto":
        encoded = [encode_example(tokenizer, p, r) for p, r, _ in items]
    else:
        encoded = [(encode_example(tokenizer, p, c), encode_example(tokenizer, p, r)) for p, c, r in items]
    n = len(items)
    total, order = example_order(config, n)
    opt = make_optimizer(model.parameters(), config.optimizer, config.learning_rate, config.betas, config.weight_decay)
    warmup = int(config.warmup_fraction * total)
    rows: list[tuple[int, int, float, float]] = []
    seen = 0
    torch.manual_seed(config.seed)
    model.train()
    for step in progress_bar(range(total), desc=algo.upper(), enabled=progress, leave=False):
        idx = order[step * config.batch_size:(step + 1) * config.batch_size]
        factor = lr_factor(step, total, config.schedule, warmup)
        loss = batch_loss(model, ref_model, [items[i] for i in idx], [encoded[i] for i in idx], pad, config)
        plain_step(model, opt, loss, config.learning_rate * factor, config.grad_clip)
        value = float(loss.detach())
        seen += len(idx)
        rows.append((step + 1, seen, value, config.learning_rate * factor))
        if on_step is not None:
            on_step(step + 1, value)
    model.eval()
    return PreferenceResult(model, pd.DataFrame(rows, columns=["step", "examples", "loss", "lr"]))


def batch_loss(model: Any, ref_model: Any | None, items: Sequence[Any], encoded: Sequence[Any], pad: int,
               config: PreferenceConfig) -> torch.Tensor:
    """The loss of one batch (the public piece the TRL cross-check calls)."""
    algo, beta = config.algorithm, config.strength
    if algo == "kto":
        batch = collate(list(encoded), pad)
        # the KL estimate's mismatched pairs: each prompt with the previous example's response (as TRL does)
        prompt_lens = [lab.count(IGNORE_INDEX) for _, lab in encoded]
        responses = [ids[k:] for (ids, _), k in zip(encoded, prompt_lens)]
        kl_enc = [(ids[:k] + responses[i - 1], [IGNORE_INDEX] * k + responses[i - 1])
                  for i, ((ids, _), k) in enumerate(zip(encoded, prompt_lens))]
        kl_batch = collate(kl_enc, pad)
        logps, _ = sequence_logps(model, batch)
        with torch.no_grad():
            kl_logps, _ = sequence_logps(model, kl_batch)
            ref_logps, _ = sequence_logps(ref_model, batch)
            ref_kl_logps, _ = sequence_logps(ref_model, kl_batch)
        desirable = torch.tensor([d for _, _, d in items], device=logps.device)
        return kto_loss(logps, ref_logps, desirable, kl_logps, ref_kl_logps, beta,
                        config.desirable_weight, config.undesirable_weight)
    m = len(encoded)
    batch = collate([c for c, _ in encoded] + [r for _, r in encoded], pad)
    logps, counts = sequence_logps(model, batch)
    if algo == "simpo":
        mean = logps / counts.clamp(min=1)
        return simpo_loss(mean[:m], mean[m:], beta, config.gamma)
    with torch.no_grad():
        ref_logps, _ = sequence_logps(ref_model, batch)
    return dpo_loss(logps[:m], logps[m:], ref_logps[:m], ref_logps[m:], beta)
