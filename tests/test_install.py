"""The chapters' install cell reproduces: in a fresh venv it installs what every chapter needs.

A wheel is built from the checkout; a fresh venv gets only what a hosted notebook has before the
cell runs (a Python kernel, and PyTorch as on Colab and Kaggle); then every chapter is executed at the smoke scale in that venv's
kernel. The first chapter's install cell finds ``import elasticity_lab`` failing and installs the
cell's own requirement string (pip finds the wheel through PIP_FIND_LINKS, the dependencies where
pip's configuration says); every later chapter's cell finds the library and does nothing.

Minutes, not seconds (a fresh venv with torch): marked ``install`` and left out of ``make test``;
run it with ``make test-install``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CELL_TIMEOUT, NOTEBOOKS, ROOT

pytestmark = [pytest.mark.install, pytest.mark.slow]
KERNEL = "elasticity-fresh-venv"
INSTALL_TIMEOUT = 1800  # the install cell downloads or unpacks torch and friends


def _install_cell_script():
    spec = importlib.util.spec_from_file_location("install_cell", ROOT / "scripts" / "install_cell.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_install_cell_in_a_fresh_venv(tmp_path: Path, monkeypatch) -> None:
    import papermill

    script = _install_cell_script()
    monkeypatch.delenv("PYTHONPATH", raising=False)  # the kernel must import the installed wheel, not the checkout
    monkeypatch.chdir(tmp_path)
    # 1. the wheel, built from a copy of the checkout (setuptools writes build/ into the source tree)
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "_build*", "_vendor", "results", ".pytest_cache", "__pycache__", "*.egg-info", "build"))
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(wheels), str(src)],
         timeout=600)
    wheel = next(wheels.glob("elasticity_lab-*.whl"))
    assert f"-{script.project_version()}-" in wheel.name

    # 2. a fresh venv holding a Jupyter kernel and PyTorch, as Colab and Kaggle have before the install
    # cell runs (torch by scripts/install_torch.sh: the CPU build here, not PyPI's multi-GB CUDA one)
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], timeout=300)
    py = venv / "bin" / "python"
    _run([str(py), "-m", "pip", "install", "--quiet", "ipykernel>=6.29,<7"], timeout=INSTALL_TIMEOUT)
    _run([str(ROOT / "scripts" / "install_torch.sh"), str(py)], timeout=INSTALL_TIMEOUT)
    probe = [str(py), "-c", "import elasticity_lab"]
    assert subprocess.run(probe, capture_output=True).returncode != 0, "the fresh venv must not see the checkout"
    jupyter = tmp_path / "jupyter"
    _run([str(py), "-m", "ipykernel", "install", "--prefix", str(jupyter), "--name", KERNEL], timeout=120)
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter / "share" / "jupyter"))
    monkeypatch.setenv("PIP_FIND_LINKS", f"{os.environ.get('PIP_FIND_LINKS', '')} {wheels}".strip())

    # 3. every chapter at smoke in that kernel; the first one's install cell installs the library
    problems = []
    for i, notebook in enumerate(NOTEBOOKS):
        out = tmp_path / "executed" / notebook.name
        out.parent.mkdir(exist_ok=True)
        cells = json.loads(notebook.read_text())["cells"]
        install = cells[script.install_cell_index(cells)]
        assert "".join(install["source"]) == script.cell_source(), f"{notebook.name}: stale install cell"
        try:
            papermill.execute_notebook(
                str(notebook), str(out), parameters={"scale": "smoke"}, kernel_name=KERNEL, cwd=str(tmp_path),
                progress_bar=False, log_output=False, execution_timeout=INSTALL_TIMEOUT if i == 0 else CELL_TIMEOUT,
            )
        except Exception as err:  # noqa: BLE001 - collect every chapter's failure
            problems.append(f"{notebook.name}: {type(err).__name__}: {str(err)[-1500:]}")
            continue
        text = "".join("".join(o.get("text", "")) for c in json.loads(out.read_text())["cells"] for o in c.get("outputs", []))
        if "scale = 'smoke'" not in text or "❌" in text or text.count("✅") != text.count("⏳"):
            problems.append(f"{notebook.name}: wrong scale or exercise verdicts")
    assert not problems, "\n".join(problems)

    # 4. what the cell installed is the wheel, with the extras' packages
    where = _run([str(py), "-c", "import elasticity_lab, wordfreq, datasets; print(elasticity_lab.__file__, elasticity_lab.__version__)"],
                 timeout=300).stdout.split()
    assert where[0].startswith(str(venv)) and where[1] == script.project_version(), where
