"""Mixed precision on a GPU: bf16 where the card has it, fp16 with loss scaling where it does not (a T4).

Why an ambient setting and not a parameter of every function: the protocols call generation, scoring
and :func:`elasticity_lab.lm.training.sft` many times from code that knows nothing about cards. A
runner that does know (the real-models chapter) wraps its work in :func:`mixed_precision`; inside,
every forward pass runs under ``torch.autocast`` and every SFT step scales its loss when the dtype
is fp16 (whose small gradients would otherwise underflow to zero). The weights and the optimiser
state stay in fp32, so a learning rate of 1e-5 still moves them. On the CPU it changes nothing.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

import torch

from elasticity_lab.core import ranks
from elasticity_lab.core.config import check_choice

PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
_AMBIENT: contextvars.ContextVar[str] = contextvars.ContextVar("elasticity_precision", default="fp32")


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """``auto`` → ``bf16`` on a CUDA card that supports it, ``fp16`` on one that does not, ``fp32`` elsewhere."""
    check_choice("precision", precision, PRECISIONS)
    device = torch.device(device)
    if device.type != "cuda":
        return "fp32"
    if precision == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return precision


def current_precision() -> str:
    """The ambient precision (``fp32`` outside :func:`mixed_precision`)."""
    return _AMBIENT.get()


@contextlib.contextmanager
def mixed_precision(precision: str = "auto", device: torch.device | str = "cpu") -> Iterator[str]:
    """Run a block with forward passes under autocast in ``precision`` (resolved for ``device``); yields the dtype's name."""
    name = resolve_precision(precision, device)
    if name == "fp16" and ranks.fsdp_launched():
        raise ValueError(f"precision={precision!r} (fp16 on this card) is not allowed under FSDP: its loss scaler would "
                         "skip steps rank by rank, not over the shards together; use precision='bf16' on an A100/H100, "
                         "or the DDP launch config.")
    token = _AMBIENT.set(name)
    try:
        if name == "fp32":
            yield name
        else:
            dtype = torch.bfloat16 if name == "bf16" else torch.float16
            with torch.autocast(device_type="cuda", dtype=dtype):
                yield name
    finally:
        _AMBIENT.reset(token)


def stored_dtype() -> torch.dtype | None:
    """The dtype to load a base model in: bf16 under FSDP with ambient bf16 (each rank keeps its base whole: 2 bytes a
    parameter instead of 4; training still keeps fp32 master weights in the shards, see
    :mod:`elasticity_lab.lm.distributed`), fp32 under FSDP otherwise, and ``None`` (the loader's default, as
    always) without FSDP."""
    if not ranks.fsdp_launched():
        return None
    return torch.bfloat16 if current_precision() == "bf16" else torch.float32


def grad_scaler() -> Any:
    """A loss scaler for one training run: active under ambient fp16, a pass-through otherwise."""
    enabled = current_precision() == "fp16" and torch.cuda.is_available()
    return torch.amp.GradScaler("cuda", enabled=enabled)
