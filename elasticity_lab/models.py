"""The model zoo: tiny Llama presets for the micro-world, hub models for the ``full`` scale.

Why one zoo: every experiment takes "a base model" and should not care whether it is a 30k-parameter
Llama pre-trained here a minute ago, a checkpoint with almost no pre-training, a random
initialisation (the control with no pre-trained distribution at all), or Qwen2.5-0.5B from the hub.
:func:`load_model` returns a ``(model, tokenizer)`` pair for all of them.

Presets span ~0.03M to ~5M parameters (the size axis of chapter 8) plus ``full``, a ~27M-parameter
preset for a GPU. On the CPU they use ``eager`` attention: at sequence length 64 it was 3–4× faster
than ``sdpa`` here (DESIGN.md §6).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from elasticity_lab.config import check_choice

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


class HubUnreachableError(OSError):
    """Raised instead of hanging when a hub model is asked for and the hub cannot be reached."""


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


# --------------------------------------------------------------------------- loading


def _hub_reachable(timeout: float = 2.0) -> bool:
    """A quick TCP check of the hub's host, so that an offline machine fails in seconds, not minutes."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    host = parsed.hostname or "huggingface.co"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def load_pretrained(name: str, revision: str | None = None, *, device: torch.device | str | None = None) -> tuple[Any, Any]:
    """A ``(model, tokenizer)`` saved with ``save_pretrained``: a local folder or a hub name.

    Safetensors only and no remote code, so loading never runs code or unpickles anything that came
    with the weights. A hub name is tried from the local Hugging Face cache first; if it is not
    there and the hub cannot be reached, :class:`HubUnreachableError` says what to use instead.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = torch.device(device) if device is not None else get_device()
    kwargs: dict[str, Any] = dict(revision=revision, trust_remote_code=False)
    model_kwargs = dict(kwargs, use_safetensors=True, attn_implementation=attention_for(device))
    if Path(name).expanduser().is_dir():
        path = str(Path(name).expanduser())
        tok = AutoTokenizer.from_pretrained(path, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(path, **model_kwargs)
        return model.to(device).eval(), tok
    try:
        tok = AutoTokenizer.from_pretrained(name, local_files_only=True, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(name, local_files_only=True, **model_kwargs)
        return model.to(device).eval(), tok
    except (OSError, ValueError):
        pass
    if not _hub_reachable():
        raise HubUnreachableError(
            f"The Hugging Face Hub cannot be reached to download {name!r} (offline, or HF_HUB_OFFLINE is set); "
            f"use a micro-world preset instead, e.g. load_model({DEFAULT_PRESET!r}), or a local folder saved with save_pretrained."
        )
    tok = AutoTokenizer.from_pretrained(name, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(name, **model_kwargs)
    return model.to(device).eval(), tok


def parse_revision(revision: str | int | None) -> str | int | None:
    """A preset revision: ``None`` (the final checkpoint), ``"random"`` or a token budget (``"tokens-65536"`` or an int)."""
    if revision is None or revision == "random":
        return revision
    if isinstance(revision, int):
        return revision
    if isinstance(revision, str) and revision.startswith("tokens-") and revision[7:].isdigit():
        return int(revision[7:])
    raise ValueError(f"revision={revision!r} is not allowed for a micro-world preset; use None, 'random' or 'tokens-N' (N a checkpoint's token budget).")


def load_model(
    name: str,
    revision: str | int | None = None,
    *,
    world: Any = None,
    scale: str | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> tuple[Any, Any]:
    """One loading path for every base model: returns ``(model, tokenizer)``.

    - A preset name (``nano`` … ``full``): the base pre-trained on ``world`` (default world) with the
      budget of ``scale`` (default: ``$ELASTICITY_SCALE``, else ``reader``), trained once and then read from the cache (:mod:`elasticity_lab.pretraining`);
      ``revision`` picks a checkpoint (``"tokens-N"``) or ``"random"`` for the untrained control.
    - Anything else: a local folder or a hub name, through ``from_pretrained`` (:func:`load_pretrained`).
    """
    if name in PRESETS:
        from elasticity_lab.config import resolve_scale
        from elasticity_lab.pretraining import default_pretrain_config, pretrain

        scale = resolve_scale(scale)
        from elasticity_lab.world import World

        rev = parse_revision(revision)
        world = world if isinstance(world, World) else World(world)
        device = torch.device(device) if device is not None else (get_device() if name == "full" else torch.device("cpu"))
        tok = world.tokenizer()
        if rev == "random":
            return random_model(name, len(world.vocabulary), seed=seed, device=device).eval(), tok
        run = pretrain(world, name, default_pretrain_config(name, scale, seed=seed), device=device, progress=progress)
        return run.load(rev, device=device), tok
    if revision is not None and not isinstance(revision, str):
        raise ValueError(f"revision={revision!r} is not allowed for a hub model; use a branch, tag or commit name.")
    return load_pretrained(name, revision, device=device)


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
