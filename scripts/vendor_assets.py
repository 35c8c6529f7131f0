"""Fetch pinned copies of the JavaScript the book needs, so that it works offline.

Sphinx, myst-nb and plotly load MathJax, plotly.js and the Jupyter widget manager from CDNs by
default; a reader without a network (or behind a firewall) would then see raw TeX, no figures
and empty widget areas. This script puts them in ``_vendor/`` (not ``_static/``: Jupyter Book
injects every ``.js`` under a ``_static`` folder into every page), from the plotly wheel already
installed and from the npm registry (``npm pack``), and is a no-op when they are already there.

Usage: ``python scripts/vendor_assets.py [--dest _vendor]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

NPM_PACKAGES = {
    "mathjax": "3.2.2",
    "@jupyter-widgets/html-manager": "1.0.15",
}
# Only what the pages load: the combined TeX/MathML -> CommonHTML bundle and the pieces it
# fetches on demand (TeX extensions, CHTML fonts, the menu). The 4 MB speech engine is left out.
MATHJAX_KEEP = ["tex-mml-chtml.js", "input", "output/chtml", "ui", "a11y", "adaptors"]


def _plotly_version() -> str:
    import plotly

    return plotly.__version__


def _stamp(dest: Path) -> dict[str, str]:
    return {**NPM_PACKAGES, "plotly": _plotly_version()}


def _npm_pack(spec: str, workdir: Path) -> Path:
    out = subprocess.run(
        ["npm", "pack", spec, "--silent", "--pack-destination", str(workdir)],
        check=True, capture_output=True, text=True, timeout=300,
    ).stdout.strip().splitlines()[-1]
    archive = workdir / out
    target = workdir / archive.stem
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target / "package"


def vendor(dest: Path) -> None:
    stamp_file = dest / "versions.json"
    wanted = _stamp(dest)
    if stamp_file.exists() and json.loads(stamp_file.read_text()) == wanted:
        print(f"{dest}: up to date")
        return
    if shutil.which("npm") is None:
        sys.exit("npm was not found: install Node.js (it provides npm) to fetch MathJax and the widget manager.")
    tmp_dest = Path(tempfile.mkdtemp(prefix="vendor-", dir=dest.parent))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        mathjax = _npm_pack(f"mathjax@{NPM_PACKAGES['mathjax']}", work)
        for item in MATHJAX_KEEP:
            src = mathjax / "es5" / item
            target = tmp_dest / "mathjax" / item
            target.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, target)
        widgets = _npm_pack(f"@jupyter-widgets/html-manager@{NPM_PACKAGES['@jupyter-widgets/html-manager']}", work)
        # embed.js bundles the standard controls and needs no require.js (which would also hide
        # plotly.js from the page, since plotly registers itself as an AMD module when it sees one)
        shutil.copytree(widgets / "dist", tmp_dest / "html-manager",
                        ignore=shutil.ignore_patterns("*.map", "*amd*", "*.LICENSE.txt"))
    import plotly

    shutil.copy2(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", tmp_dest / "plotly.min.js")
    (tmp_dest / "versions.json").write_text(json.dumps(wanted, indent=2, sort_keys=True))
    if dest.exists():
        shutil.rmtree(dest)
    tmp_dest.rename(dest)
    print(f"{dest}: fetched {', '.join(f'{k}@{v}' for k, v in wanted.items())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=Path(__file__).resolve().parent.parent / "_vendor")
    vendor(parser.parse_args().dest)


if __name__ == "__main__":
    main()
