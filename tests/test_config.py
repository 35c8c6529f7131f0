from __future__ import annotations

import pytest

from elasticity_lab.core.config import by_scale, check_choice, resolve_scale


def test_environment_overrides_the_parameter(monkeypatch) -> None:
    monkeypatch.setenv("ELASTICITY_SCALE", "full")
    assert resolve_scale("smoke") == "full"
    monkeypatch.delenv("ELASTICITY_SCALE")
    assert resolve_scale("smoke") == "smoke"
    assert resolve_scale(None) == "reader"


def test_bad_scale_names_the_parameter_and_the_choices(monkeypatch) -> None:
    monkeypatch.delenv("ELASTICITY_SCALE", raising=False)
    with pytest.raises(ValueError, match=r"scale='huge'.*'smoke', 'reader', 'full'"):
        resolve_scale("huge")
    monkeypatch.setenv("ELASTICITY_SCALE", "tiny")
    with pytest.raises(ValueError, match="ELASTICITY_SCALE='tiny'"):
        resolve_scale("reader")


def test_by_scale_and_check_choice() -> None:
    assert by_scale("reader", smoke=1, reader=2, full=3) == 2
    with pytest.raises(ValueError, match="colour='red'"):
        check_choice("colour", "red", ["blue"])
