"""The Hugging Face Hub and local ``save_pretrained`` folders: models and data sets, safely and fast to fail.

Why one module: every path to the hub (a base model, a reward model, a data set) must follow the
same rules: safetensors only, no remote code, the local cache first, and on a machine that cannot
reach the hub one clear sentence within seconds, never a hang. The micro-world never comes here.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

from elasticity_lab.lm.precision import stored_dtype
from elasticity_lab.lm.presets import attention_for, get_device

DEFAULT_HUB_MODEL = "Qwen/Qwen2.5-0.5B"
"""The paper's smallest model family; the ``full`` scale's default base."""


class HubUnreachableError(OSError):
    """Raised instead of hanging when a hub model or data set is asked for and the hub cannot be reached."""


def hub_reachable(timeout: float = 2.0) -> bool:
    """A quick TCP check of the hub's host, so that an offline machine fails in seconds, not minutes."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    host = parsed.hostname or "huggingface.co"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    answer: list[bool] = []

    def probe() -> None:  # in a thread: a slow DNS lookup is not bound by the socket's timeout
        try:
            with socket.create_connection((host, port), timeout=timeout):
                answer.append(True)
        except OSError:
            answer.append(False)

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(answer and answer[0])


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
    if stored_dtype() is not None:  # under FSDP: the base each rank keeps whole, in bf16 where precision is bf16
        model_kwargs["dtype"] = stored_dtype()
    if Path(name).expanduser().is_dir():
        path = str(Path(name).expanduser())
        tok = AutoTokenizer.from_pretrained(path, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(path, **model_kwargs)
        return model.to(device).eval(), _with_pad(tok)
    try:
        tok = AutoTokenizer.from_pretrained(name, local_files_only=True, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(name, local_files_only=True, **model_kwargs)
        return model.to(device).eval(), _with_pad(tok)
    except (OSError, ValueError):
        pass
    if not hub_reachable():
        raise HubUnreachableError(
            f"The Hugging Face Hub cannot be reached to download {name!r} (offline, or HF_HUB_OFFLINE is set); "
            "use a micro-world preset instead, e.g. load_base('micro'), or a local folder saved with save_pretrained."
        )
    tok = AutoTokenizer.from_pretrained(name, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(name, **model_kwargs)
    return model.to(device).eval(), _with_pad(tok)


def _with_pad(tok: Any) -> Any:
    """Batched generation and scoring need a pad token; many hub tokenizers have only an EOS."""
    if getattr(tok, "pad_token_id", None) is None and getattr(tok, "eos_token_id", None) is not None:
        tok.pad_token = tok.eos_token
    return tok


def split_source(source: str) -> tuple[str, str | None, str | None]:
    """``"name[:config[:split]]"`` → ``(name, config, split)`` (a local path is returned whole)."""
    if Path(source).expanduser().exists():
        return source, None, None
    name, _, rest = source.partition(":")
    config, _, split = rest.partition(":")
    return name, config or None, split or None


def dataset_rows(source: str, split: str | None = None) -> list[dict[str, Any]]:
    """Rows of a data set as dicts: a local folder (``Dataset.save_to_disk``), a local JSON/JSONL file, or
    ``name[:config[:split]]`` on the hub.

    ``split`` (or the one in ``source``) picks one split of a data set with several; without one, the
    rows of every split are returned. The hub is checked first with a short TCP probe, so an offline
    machine gets one clear error in seconds instead of a hang.
    """
    import datasets

    name, config, named_split = split_source(source)
    split = split or named_split
    path = Path(name).expanduser()
    if path.is_dir():
        ds = datasets.load_from_disk(str(path))
    elif path.is_file():
        ds = datasets.load_dataset("json", data_files=str(path))
    else:
        if not hub_reachable():
            raise HubUnreachableError(
                f"The Hugging Face Hub cannot be reached to download the data set {source!r}; run at scale='reader' "
                "(the micro-world, nothing to download), or pass a local copy saved with Dataset.save_to_disk.")
        ds = datasets.load_dataset(name, config)
    if isinstance(ds, datasets.DatasetDict):
        if split is None:
            return [dict(r) for s in ds for r in ds[s]]
        if split not in ds:
            raise ValueError(f"split={split!r} is not in the data set {source!r}; choose one of {', '.join(ds)}.")
        return [dict(r) for r in ds[split]]
    return [dict(r) for r in ds]
