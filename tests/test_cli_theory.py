"""``python -m elasticity_lab theory``: JSON output and clear errors (exit code 2)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "elasticity_lab", "theory", *args], capture_output=True,
                          text=True, timeout=60)


def test_theory_json() -> None:
    out = _run("--k", "1000", "--l", "0.001", "--depth", "8", "--seed", "0", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    for key in ("k", "l", "depth", "gamma_p", "gamma_a", "gamma_t", "dgamma_p_dl", "dgamma_a_dl", "slope_ratio"):
        assert key in data
    assert data["k"] == 1000 and data["depth"] == 8
    assert abs(data["slope_ratio"] / 1000 - 1) < 0.01
    assert data["slope_ratio"] == pytest.approx(-data["dgamma_a_dl"] / data["dgamma_p_dl"])


@pytest.mark.parametrize(("flag", "value"), [("--k", "0"), ("--l", "-1"), ("--depth", "0")])
def test_invalid_value_exits_2_with_a_clear_message(flag: str, value: str) -> None:
    out = _run(flag, value, "--json")
    assert out.returncode == 2
    name = flag.lstrip("-")
    assert f"{name}=" in out.stderr and "not allowed" in out.stderr
    assert out.stdout == ""
