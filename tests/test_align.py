"""Stage 1 of the rebound with each algorithm: same data, a model, a curve, held-out scores; validation."""

from __future__ import annotations

import pytest

from elasticity_lab.experiments.algorithms import (
    ALGORITHMS,
    align,
    default_align_config,
)
from elasticity_lab.experiments.rebound import MicroTask


@pytest.fixture(scope="module")
def base():
    from elasticity_lab.lm.bases import load_base

    b = load_base("micro")
    model, tok, world = b.model, b.tokenizer, b.world
    return model, tok, MicroTask(world, "safety")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_align_returns_a_model_with_scores(base, algorithm) -> None:
    model, tok, task = base
    config = default_align_config(algorithm, max_steps=2)
    result = align(model, tok, algorithm, task, 16, config, n_prompts=16, n_kl=16)
    assert result.steps == 2 and result.algorithm == algorithm
    row = result.row()
    assert set(row) >= {"algorithm", "steps", "rule", "likelihood", "kl"}
    assert 0.0 <= row["rule"] <= 1.0 and 0.0 <= row["likelihood"] <= 1.0 and row["kl"] > 0.0
    assert result.model is not model


def test_align_validates_its_inputs(base) -> None:
    model, tok, task = base
    with pytest.raises(ValueError, match="algorithm='ppo'"):
        align(model, tok, "ppo", task, 16)
    with pytest.raises(ValueError, match="n_examples"):
        align(model, tok, "dpo", task, 0)
    with pytest.raises(ValueError, match="needs a PreferenceConfig"):
        align(model, tok, "dpo", task, 16, default_align_config("sft"))
    with pytest.raises(ValueError, match="does not match"):
        align(model, tok, "dpo", task, 16, default_align_config("kto"))
    with pytest.raises(ValueError, match="task="):
        align(model, tok, "dpo", "safety", 16)
