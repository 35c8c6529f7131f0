"""Full-scale (GPU) results that ship with the package: the tables of a sweep, never weights, with their provenance.

Why: a reader without a GPU should still see what the ``full`` scale measured, and know exactly where it came
from. :func:`ship` writes one JSON file per sweep into ``elasticity_lab/assets/scale/`` with the config, its hash,
the library version and git commit, the device, the date and the run time; :func:`shipped_results` reads them
back for the chapter's "GPU results" section. Rows are shown only from such a file: none are ever typed in.
"""

from __future__ import annotations

import datetime as _dt
import json
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd

from elasticity_lab import __version__
from elasticity_lab.core.cache import atomic_write_text, config_hash
from elasticity_lab.core.jsonio import jsonable

SHIPPED_DIR = Path(__file__).resolve().parents[2] / "assets" / "scale"
PROVENANCE = ("config_hash", "library_version", "git_commit", "device", "torch_version", "date", "seconds")


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True, text=True,
                             timeout=5, check=False)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _device_name(device: str) -> str:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)}"
    return device


def ship(result: Any, *, seconds: float, device: str, folder: Path | str | None = None) -> Path:
    """Write a finished study's tables (tidy measures, sweep, verdicts) with their provenance; returns the file."""
    import torch

    config = result.config.to_dict()
    record = {
        "config": config, "config_hash": config_hash({"kind": "scale-sweep", "config": config}),
        "library_version": __version__, "git_commit": _git_commit(), "device": _device_name(device),
        "torch_version": torch.__version__, "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": round(float(seconds), 1), "measures": result.measures.to_dict("records"),
        "sweep": result.sweep.to_dict("records"), "verdicts": result.verdicts.to_dict("records"),
    }
    folder = Path(folder) if folder is not None else SHIPPED_DIR
    path = folder / f"scale-{result.config.scale}-{record['config_hash']}.json"
    atomic_write_text(path, json.dumps(jsonable(record), indent=1, sort_keys=True))
    return path


def shipped_results(folder: Path | str | None = None) -> list[dict[str, Any]]:
    """Every shipped sweep (newest first), each with ``provenance`` and its tables as DataFrames."""
    folder = Path(folder) if folder is not None else SHIPPED_DIR
    out = []
    for path in sorted(folder.glob("scale-*.json")) if folder.is_dir() else []:
        raw = json.loads(path.read_text("utf-8"))
        out.append({"file": path.name, "provenance": {k: raw.get(k) for k in PROVENANCE}, "config": raw["config"],
                    "measures": pd.DataFrame(raw["measures"]), "sweep": pd.DataFrame(raw["sweep"]),
                    "verdicts": pd.DataFrame(raw["verdicts"])})
    return sorted(out, key=lambda r: str(r["provenance"]["date"]), reverse=True)


def gpu_results_sentence(shipped: list[dict[str, Any]]) -> str:
    """One generated sentence on what full-scale results ship with this version."""
    if not shipped:
        return (f"No full-scale (GPU) results ship with version {__version__} of the package: the `full` rows of this chapter "
                f"have not been measured, so none are shown.")
    parts = [f"{r['file']} ({r['provenance']['device']}, {r['provenance']['date']}, {r['provenance']['seconds']} s, code "
             f"{r['provenance']['library_version']} at {str(r['provenance']['git_commit'])[:10]}, config {r['provenance']['config_hash']})"
             for r in shipped]
    return f"{len(shipped)} full-scale result file(s) ship with this version: " + "; ".join(parts) + "."
