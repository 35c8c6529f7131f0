"""The micro-world's model presets: tiny Llama architectures, their random initialisation, devices and threads.

Where a base model comes from (a preset pre-trained here, a shipped base, a checkpoint, a random
initialisation, a hub model) is decided in one place, :func:`elasticity_lab.lm.bases.load_base`;
this module only knows architectures.

Presets span ~0.03M to ~5M parameters (the size axis of chapter 8) plus ``full``, a ~27M-parameter
preset for a GPU, and ``xl`` (~85M, the top of chapter 8's ``full`` size axis). On the CPU they use
``eager`` attention: at sequence length 64 it was 3–4× faster
than ``sdpa`` here (measured with benchmarks/train_throughput.py).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from elasticity_lab.core import ranks
from elasticity_lab.core.config import check_choice

PRESETS: dict[str, dict[str, int]] = {
    "nano": dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64),
    "micro": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128),
    "small": dict(hidden_size=128, num_hidden_layers=3, num_attention_heads=4, intermediate_size=256),
    "medium": dict(hidden_size=192, num_hidden_layers=4, num_attention_heads=6, intermediate_size=512),
    "large": dict(hidden_size=320, num_hidden_layers=4, num_attention_heads=8, intermediate_size=896),
    "full": dict(hidden_size=512, num_hidden_layers=8, num_attention_heads=8, intermediate_size=1536),
    "xl": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=2048),
}
"""Architectures (vocabulary size comes from the world). ``micro`` is the book's default: the size a
prototype showed learns the world's base rates in a few million tokens on a CPU."""

CPU_PRESETS: tuple[str, ...] = ("nano", "micro", "small", "medium", "large")
DEFAULT_PRESET = "micro"
MAX_POSITIONS = 128


def get_device(prefer: str | None = None) -> torch.device:
    """CUDA if present, then Apple's MPS, then the CPU (``prefer`` forces one of them). Under a launcher ``cuda`` is
    this rank's card (joining the process group sets it: :func:`elasticity_lab.core.ranks.setup`)."""
    ranks.setup()
    if prefer is not None:
        check_choice("prefer", prefer, ("cuda", "mps", "cpu"))
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


DEVICE_ENV_VAR = "ELASTICITY_DEVICE"
"""Set to ``cuda``, ``mps`` or ``cpu`` to override the device every micro-world run takes."""


def choose_device(device: torch.device | str | None = None) -> torch.device:
    """The one device choice of pre-training, fine-tuning, generation and scoring.

    An explicit ``device`` wins, then ``$ELASTICITY_DEVICE``, then CUDA when it is available, else the
    CPU. Apple's MPS is taken only when asked for (``device="mps"`` or ``ELASTICITY_DEVICE=mps``): the
    micro-world's tiny models were never measured there, and a silent switch would change a laptop
    reader's numbers. On the CPU nothing changes: same weights, same results, same cache entries.
    """

    if device is None:
        device = os.environ.get(DEVICE_ENV_VAR) or None
        if device is not None:
            check_choice(DEVICE_ENV_VAR, device, ("cuda", "mps", "cpu"))
        elif torch.cuda.is_available():
            device = "cuda"
        else:
            device = "cpu"
    device = torch.device(device)
    check_choice("device", device.type, ("cuda", "mps", "cpu"))
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device='cuda' is not allowed here: torch sees no CUDA GPU; use 'cpu' (or unset ELASTICITY_DEVICE).")
        # TF32 matmuls and convolutions: ~an order of magnitude faster than fp32 on Ampere and later (CUDA only)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


def autocast_for(device: torch.device | str) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on CUDA; on every other device a context that does nothing (CPU results stay bit-identical).

    Inside :func:`elasticity_lab.lm.precision.mixed_precision` (the real-models chapter's ambient precision, fp16
    with loss scaling on cards without bf16) that setting wins and this adds nothing; a CUDA card without bf16
    trains in fp32 with TF32 here."""
    from elasticity_lab.lm.precision import current_precision

    if torch.device(device).type == "cuda" and current_precision() == "fp32" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def device_tag(device: torch.device | str) -> dict[str, str]:
    """What a result computed on ``device`` adds to its cache key: nothing on the CPU (so CPU caches and shipped
    bases keep their keys), the device and precision elsewhere (GPU numbers differ in the last bits)."""
    kind = torch.device(device).type
    if kind == "cpu":
        return {}
    return {"device": kind, "precision": "bf16-autocast+tf32" if kind == "cuda" else "fp32"}


def as_device(device: Any, name: str = "device") -> torch.device:
    """``device`` as a :class:`torch.device`, or one sentence naming it (``'cpu'``, ``'cuda'``, ``'cuda:0'``, ``'mps'``)."""
    if isinstance(device, torch.device):
        return device
    try:
        return torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"{name}={device!r} is not allowed; give a torch device such as 'cpu', 'cuda', 'cuda:0' or 'mps'.") from None


def attention_for(device: torch.device | str) -> str:
    """``eager`` on the CPU (faster for tiny models at short lengths), ``sdpa`` on accelerators."""
    return "eager" if torch.device(device).type == "cpu" else "sdpa"


def model_config(preset: str, vocab_size: int, *, device: torch.device | str = "cpu", **overrides: Any) -> LlamaConfig:
    """The ``LlamaConfig`` of a preset for a vocabulary (special-token ids follow the world's)."""
    check_choice("preset", preset, PRESETS)
    arch = dict(PRESETS[preset])
    arch.update(overrides)
    cfg = LlamaConfig(
        vocab_size=vocab_size,
        num_key_value_heads=arch["num_attention_heads"],
        max_position_embeddings=MAX_POSITIONS,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
        tie_word_embeddings=False,
        use_cache=True,
        **arch,
    )
    cfg._attn_implementation = attention_for(device)
    return cfg


def preset_dict(preset: str, vocab_size: int, **overrides: Any) -> dict[str, Any]:
    """The part of a preset that determines the weights (the cache key), without device details."""
    check_choice("preset", preset, PRESETS)
    return {"preset": preset, "vocab_size": vocab_size, **PRESETS[preset], **overrides}


def random_model(preset: str, vocab_size: int, *, seed: int = 0, device: torch.device | str = "cpu", **overrides: Any) -> LlamaForCausalLM:
    """A randomly initialised preset: the "no pre-training" control, and the start of every pre-training run.

    Seeded, so the same seed gives the same weights on the CPU.
    """
    cfg = model_config(preset, vocab_size, device=device, **overrides)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    return model.to(device)


@contextlib.contextmanager
def cpu_threads(n: int = 1) -> Iterator[None]:
    """Run a block with ``n`` intra-op CPU threads, then restore the previous setting.

    Why: a micro-world model's operations are too small to split across threads; on a shared
    2-core machine, two threads per process made inference ~10× slower (measured: a behaviour table
    in 1 s with one thread, 13 s with two, while another process trained). Inference helpers use one.
    """
    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def count_parameters(model: torch.nn.Module, *, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def preset_parameters(preset: str, vocab_size: int = 198) -> int:
    """Parameter count of a preset, without building more than its config (meta device)."""
    with torch.device("meta"):
        model = LlamaForCausalLM(model_config(preset, vocab_size))
    return count_parameters(model)


def inference_threads(fn: Any) -> Any:
    """Decorator: run ``fn`` with one CPU thread when its first model argument is on the CPU (see :func:`cpu_threads`)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        model = args[0] if args else None
        on_cpu = model is None or not hasattr(model, "parameters") or next(model.parameters()).device.type == "cpu"
        if not on_cpu:
            return fn(*args, **kwargs)
        with cpu_threads(1):
            return fn(*args, **kwargs)

    return wrapper
