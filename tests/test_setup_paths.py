"""The ways in agree with each other: conda's environment.yml and pyproject.toml name the same
packages with the same bounds, and the book's build vendors its offline JavaScript itself."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from conftest import ROOT

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

# conda-forge spells these differently from PyPI
CONDA_TO_PYPI = {"pytorch": "torch"}
# in environment.yml only: the interpreter, pip itself, and npm for the offline JavaScript
CONDA_ONLY = {"python", "pip", "nodejs"}


def _pyproject_requirements() -> dict[str, SpecifierSet]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs: dict[str, SpecifierSet] = {}
    for line in [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]:
        req = Requirement(line)
        if req.name == project["name"]:  # an extra that includes another extra
            continue
        assert reqs.get(req.name, req.specifier) == req.specifier, f"pyproject.toml gives {req.name} two different bounds"
        reqs[req.name] = req.specifier
    return reqs


def _conda_requirements() -> dict[str, SpecifierSet]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    reqs: dict[str, SpecifierSet] = {}
    for dep in env["dependencies"]:
        assert isinstance(dep, str), f"environment.yml: a nested entry ({dep!r}) is not checked by this test"
        name, spec = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", dep.strip()).groups()
        if name in CONDA_ONLY:
            continue
        reqs[CONDA_TO_PYPI.get(name, name)] = SpecifierSet(spec.replace(" ", ""))
    return reqs


def test_environment_yml_matches_pyproject() -> None:
    pip, conda = _pyproject_requirements(), _conda_requirements()
    assert sorted(set(pip) - set(conda)) == [], "in pyproject.toml but not in environment.yml"
    assert sorted(set(conda) - set(pip)) == [], "in environment.yml but not in pyproject.toml"
    different = {name: (str(pip[name]), str(conda[name])) for name in pip if pip[name] != conda[name]}
    assert not different, f"bounds differ (pyproject.toml, environment.yml): {different}"


def test_book_extra_installs_jupyterlab() -> None:
    """README and how_to_run say `jupyter lab ...`; `make clean-notebooks` needs nbconvert (jupyter-server's)."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(Requirement(r).name == "jupyterlab" for r in extras["book"])


def _vendor_extension():
    spec = importlib.util.spec_from_file_location("vendor_assets_ext", ROOT / "book" / "_ext" / "vendor_assets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_book_build_runs_the_vendoring() -> None:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["sphinx"]["local_extensions"].get("vendor_assets") == "book/_ext"
    assert "_vendor" in config["sphinx"]["config"]["html_static_path"]


def test_vendoring_is_a_no_op_when_up_to_date(tmp_path: Path, capsys) -> None:
    ext = _vendor_extension()
    (tmp_path / "_vendor").mkdir()
    (tmp_path / "_vendor" / "versions.json").write_text(json.dumps(ext._stamp(tmp_path)))
    app = SimpleNamespace(confdir=str(tmp_path))
    ext._vendor_on_config(app, SimpleNamespace(html_static_path=["_vendor", "book/_assets"]))
    assert "up to date" in capsys.readouterr().out


def test_vendoring_without_npm_says_what_to_install(tmp_path: Path, monkeypatch) -> None:
    from sphinx.errors import ExtensionError

    ext = _vendor_extension()
    monkeypatch.setattr(ext.shutil, "which", lambda name: None)
    with pytest.raises(ExtensionError, match="install Node.js"):
        ext._vendor_on_config(SimpleNamespace(confdir=str(tmp_path)), SimpleNamespace(html_static_path=["_vendor"]))
    assert not (tmp_path / "_vendor").exists()


def test_vendoring_runs_before_sphinx_drops_missing_static_paths() -> None:
    """Sphinx's html builder removes html_static_path entries that do not exist at config-inited, priority 800."""
    ext = _vendor_extension()
    connected = []
    ext.setup(SimpleNamespace(connect=lambda event, fn, priority=500: connected.append((event, priority))))
    assert connected == [("config-inited", 100)]


def _install_cell_script():
    spec = importlib.util.spec_from_file_location("install_cell", ROOT / "scripts" / "install_cell.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_chapter_has_the_current_install_cell() -> None:
    """Same cell everywhere, pinned to pyproject.toml's version (`python scripts/install_cell.py` rewrites them)."""
    script = _install_cell_script()
    stale = [nb.name for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) if not script.sync(nb, check=True)]
    assert not stale, f"install cells out of date in {stale}: run `python scripts/install_cell.py`"
    source = script.cell_source()
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert f'"elasticity-lab[text,full]=={version}"' in source and f"@v{version}\"" in source
    assert "@main" not in source and "@master" not in source, "never a moving branch"


def test_install_cell_extras_exist_and_version_agrees() -> None:
    script = _install_cell_script()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert set(script.EXTRAS) <= set(project["optional-dependencies"])
    import elasticity_lab

    assert elasticity_lab.__version__ == project["version"], "elasticity_lab.__version__ differs from pyproject.toml"


def test_install_cell_does_nothing_where_the_library_is_importable() -> None:
    import subprocess

    source = _install_cell_script().cell_source()
    code = "import subprocess\nsubprocess.run = None  # any pip call would fail\n" + source + "\nprint('ok')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
