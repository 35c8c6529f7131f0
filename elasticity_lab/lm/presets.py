"""The micro-world's model presets: tiny Llama architectures, their random initialisation, devices and threads.

Where a base model comes from (a preset pre-trained here, a shipped base, a checkpoint, a random
initialisation, a hub model) is decided in one place, :func:`elasticity_lab.lm.bases.load_base`;
this module only knows architectures.

Presets span ~0.03M to ~5M parameters (the size axis of chapter 8) plus ``full``, a ~27M-parameter
preset for a GPU. On the CPU they use ``eager`` attention: at sequence length 64 it was 3–4× faster
than ``sdpa`` here (measured with benchmarks/train_throughput.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from elasticity_lab.core.config import check_choice

PRESETS: dict[str, dict[str, int]] = {
    "nano": dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64),
    "micro": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128),
    "small": dict(hidden_size=128, num_hidden_layers=3, num_attention_heads=4, intermediate_size=256),
    "medium": dict(hidden_size=192, num_hidden_layers=4, num_attention_heads=6, intermediate_size=512),
    "large": dict(hidden_size=320, num_hidden_layers=4, num_attention_heads=8, intermediate_size=896),
    "full": dict(hidden_size=512, num_hidden_layers=8, num_attention_heads=8, intermediate_size=1536),
}
"""Architectures (vocabulary size comes from the world). ``micro`` is the book's default: the size a
prototype showed learns the world's base rates in a few million tokens on a CPU."""

CPU_PRESETS: tuple[str, ...] = ("nano", "micro", "small", "medium", "large")
DEFAULT_PRESET = "micro"
MAX_POSITIONS = 128


def get_device(prefer: str | None = None) -> torch.device:
    """CUDA if present, then Apple's MPS, then the CPU (``prefer`` forces one of them)."""
    if prefer is not None:
        check_choice("prefer", prefer, ("cuda", "mps", "cpu"))
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


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
