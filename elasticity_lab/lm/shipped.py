"""The pre-trained weights that ship inside the package: where they are and how they are found.

Why its own module: pre-training looks here before it trains (a shipped run is found by the hash of
its config), and :mod:`elasticity_lab.lm.bases`, which remakes the shipped runs, sits above
pre-training. Keeping the lookup down here lets both import it without a cycle.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from elasticity_lab.core.cache import config_hash

ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets" / "bases"
MANIFEST = ASSETS_DIR / "manifest.json"


def shipped_dir(key: dict[str, Any]) -> Path | None:
    """The shipped folder of a run with this cache key, if the package has it."""
    path = ASSETS_DIR / config_hash(key)
    return path if (path / "done.json").exists() else None


def read_manifest() -> dict[str, Any]:
    """Name → entry (config hash, key, versions, seconds, SHA-256 of every weights file) of each shipped base."""
    return json.loads(MANIFEST.read_text("utf-8")) if MANIFEST.exists() else {}


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def weight_checksums(run_dir: Path) -> dict[str, str]:
    """SHA-256 of every checkpoint's weights in a run folder, by relative path."""
    return {p.relative_to(run_dir).as_posix(): sha256_of(p) for p in sorted(run_dir.rglob("model.safetensors"))}


def shipped_checksums(folder: Path) -> dict[str, str]:
    """The manifest's SHA-256 of each checkpoint of a shipped folder (``{}`` if the manifest does not list it)."""
    for entry in read_manifest().values():
        if entry.get("hash") == folder.name:
            return dict(entry.get("files", {}))
    return {}
