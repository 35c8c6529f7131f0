"""Write (or check) the install cell of every chapter: one cell, the same in all of them.

The cell installs the book's release of the library, with the extras the chapters need, wherever
``import elasticity_lab`` fails (Colab, Kaggle, Binder, a notebook downloaded from the book) and
does nothing where the library is already importable. The version comes from pyproject.toml; the
matching git tag ``v<version>`` is the fallback until that version is on PyPI (never a branch).

One cell with the union of the chapters' extras, not one per chapter: in a shared environment
(Binder, a folder of downloaded notebooks) the first chapter run installs the library and the
cell of every later chapter then does nothing, so it must have installed what all of them need.

Usage: ``python scripts/install_cell.py`` rewrites the cells; ``--check`` exits 1 when one differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = "https://github.com/elasticity-lab/elasticity-lab"
# text: wordfreq (chapter 2); full: datasets and accelerate (the hub models and data sets of the
# `full` scale in chapters 6 and 7, on a hosted GPU)
EXTRAS = ("text", "full")
MARKER = "# Install the library where it is missing"


def project_version() -> str:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import re

        return re.search(r'^version\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def requirement(version: str | None = None) -> str:
    """The requirement string the cell installs from the package index."""
    return f"elasticity-lab[{','.join(EXTRAS)}]=={version or project_version()}"


def cell_source(version: str | None = None) -> str:
    version = version or project_version()
    extras = ",".join(EXTRAS)
    return f'''{MARKER} (Colab, Kaggle, Binder, a downloaded notebook); elsewhere this does nothing.
try:
    import elasticity_lab
except ImportError:
    import importlib, subprocess, sys
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    # the book's release on PyPI; its git tag until that release is published
    if subprocess.run([*pip, "{requirement(version)}"]).returncode != 0:
        subprocess.run([*pip, "elasticity-lab[{extras}] @ git+{REPOSITORY}@v{version}"], check=True)
    importlib.invalidate_caches()
    import elasticity_lab'''


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)  # nbformat's list-of-lines form


def install_cell_index(cells: list[dict]) -> int:
    """The index of the chapter's install cell: the first code cell."""
    return next(i for i, c in enumerate(cells) if c["cell_type"] == "code")


def sync(notebook: Path, *, check: bool) -> bool:
    """Make ``notebook``'s install cell the current one; return True when it already was."""
    raw = notebook.read_text()
    nb = json.loads(raw)
    cell = nb["cells"][install_cell_index(nb["cells"])]
    want = _lines(cell_source())
    if cell["source"] == want:
        return True
    if not check:
        cell["source"] = want
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if "hide-cell" not in tags:
            tags.append("hide-cell")
        notebook.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report chapters whose cell differs")
    args = parser.parse_args()
    stale = [nb.name for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) if not sync(nb, check=args.check)]
    verb = "differ" if args.check else "rewritten"
    print(f"install cells {verb}: {', '.join(stale) or 'none'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
