"""Fetch pinned copies of the JavaScript the book needs, so that it works offline (a Sphinx extension).

Sphinx, myst-nb and plotly load MathJax, plotly.js and the Jupyter widget manager from CDNs by
default; a reader without a network (or behind a firewall) would then see raw TeX, no figures
and empty widget areas. This script puts them in ``_vendor/`` (not ``_static/``: Jupyter Book
injects every ``.js`` under a ``_static`` folder into every page), from the plotly wheel already
installed and from the npm registry (``npm pack``), and is a no-op when they are already there.

The book's build runs it (this module is a Sphinx extension listed in ``_config.yml``), so
``jupyter-book build .`` alone gives a working book; ``python scripts/vendor_assets.py [--dest _vendor]``
runs it by hand.
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
from typing import Any

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
        raise RuntimeError(f"{dest} is missing or out of date and npm was not found: install Node.js "
                           "(it provides npm) to fetch MathJax and the widget manager.")
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
    parser.add_argument("--dest", type=Path, default=Path(__file__).resolve().parents[2] / "_vendor")
    try:
        vendor(parser.parse_args().dest)
    except RuntimeError as err:
        sys.exit(str(err))


def _vendor_on_config(app: Any, config: Any) -> None:
    """Vendor into ``<book root>/_vendor`` before Sphinx checks ``html_static_path``.

    Sphinx's own ``config-inited`` listener (priority 800) drops static paths that do not exist,
    and ``builder-inited`` comes after it, so this runs at ``config-inited`` with a lower priority.
    When the assets are already there this reads one small JSON file and returns.
    """
    from sphinx.errors import ExtensionError

    if "_vendor" not in config.html_static_path:
        return
    try:
        vendor(Path(app.confdir) / "_vendor")
    except (RuntimeError, subprocess.SubprocessError) as err:
        raise ExtensionError(str(err)) from err


def setup(app: Any) -> dict:
    app.connect("config-inited", _vendor_on_config, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    main()
