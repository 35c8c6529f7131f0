"""Results and checkpoints on disk, keyed by a hash of what made them.

Why: every chapter shares pre-trained bases and many experiments share stage-1 models; a second
request for the same thing must train nothing, and a run killed half-way must not leave a file
that a later run would trust. So every key is a hash of the full config plus the library version,
and every write goes to a temporary file in the same folder, then ``os.replace`` (atomic on POSIX
and Windows): a reader sees the old file or the new one, never half of one.

The cache lives in ``~/.cache/elasticity_lab`` unless ``$ELASTICITY_CACHE`` names another folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from elasticity_lab import __version__

CACHE_ENV_VAR = "ELASTICITY_CACHE"


def cache_dir() -> Path:
    """The cache root (created on first use): ``$ELASTICITY_CACHE`` or ``~/.cache/elasticity_lab``."""
    root = os.environ.get(CACHE_ENV_VAR, "").strip()
    path = Path(root).expanduser() if root else Path.home() / ".cache" / "elasticity_lab"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _canonical(obj: Any) -> Any:
    """Make tuples, dataclass dicts and numpy scalars JSON-stable for hashing."""
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return obj.item()
    return obj


def config_hash(config: dict[str, Any], *, length: int = 16) -> str:
    """A hex digest of ``config`` plus the library version: the folder name of what it made."""
    payload = json.dumps({"config": _canonical(config), "version": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:length]


def entry_dir(namespace: str, config: dict[str, Any]) -> Path:
    """The folder of one cache entry, ``<cache>/<namespace>/<hash>``, with its config written beside."""
    path = cache_dir() / namespace / config_hash(config)
    path.mkdir(parents=True, exist_ok=True)
    cfg = path / "config.json"
    if not cfg.exists():
        atomic_write_text(cfg, json.dumps({"config": _canonical(config), "version": __version__}, indent=2, sort_keys=True, default=str))
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace`` (flushed to disk first)."""

    def save(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    return atomic_save_file(path, save)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_file(path: str | os.PathLike[str], save: Callable[[str], None]) -> Path:
    """Let ``save(tmp_path)`` write a file (e.g. ``safetensors.torch.save_file``), then move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def save_tensors(path: str | os.PathLike[str], tensors: dict[str, Any], metadata: dict[str, str] | None = None) -> Path:
    """Save a flat dict of tensors as safetensors, atomically (contiguous copies, shared storage split)."""
    from safetensors.torch import save_file

    flat = {k: v.detach().contiguous().clone() for k, v in tensors.items()}
    return atomic_save_file(path, lambda tmp: save_file(flat, tmp, metadata=metadata))


def load_tensors(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a safetensors file onto the CPU (no pickle is ever executed)."""
    from safetensors.torch import load_file

    return load_file(str(path), device="cpu")


def save_torch_state(path: str | os.PathLike[str], state: Any) -> Path:
    """Save an optimizer/scheduler state with ``torch.save`` atomically; read it back with :func:`load_torch_state`."""
    import torch

    buf = io.BytesIO()
    torch.save(state, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_torch_state(path: str | os.PathLike[str]) -> Any:
    """``torch.load(weights_only=True)``: tensors and plain containers only, never arbitrary pickles."""
    import torch

    return torch.load(str(path), map_location="cpu", weights_only=True)


def save_table(path: str | os.PathLike[str], table: pd.DataFrame) -> Path:
    """A DataFrame as JSON (orient ``split``: columns, index and values survive a round trip)."""
    return atomic_write_text(path, table.to_json(orient="split", double_precision=15))


def load_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    return pd.read_json(io.StringIO(Path(path).read_text("utf-8")), orient="split")


def cached_table(namespace: str, config: dict[str, Any], compute: Callable[[], pd.DataFrame], *, refresh: bool = False) -> pd.DataFrame:
    """``compute()`` once per config; later calls (and other chapters) read the stored table."""
    path = entry_dir(namespace, config) / "table.json"
    if path.exists() and not refresh:
        return load_table(path)
    table = compute()
    save_table(path, table)
    return table


def cached_json(namespace: str, config: dict[str, Any], compute: Callable[[], Any], *, refresh: bool = False) -> Any:
    """Like :func:`cached_table` for any JSON-able result (summaries, fitted slopes)."""
    path = entry_dir(namespace, config) / "result.json"
    if path.exists() and not refresh:
        return json.loads(path.read_text("utf-8"))
    result = compute()
    atomic_write_text(path, json.dumps(result, indent=2, sort_keys=True, default=float))
    return result
