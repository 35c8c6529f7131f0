"""The full scale's model-based scorer, on a tiny sequence-classification model saved to a local folder."""

from __future__ import annotations

import numpy as np
import pytest

from elasticity_lab.lm.hub import HubUnreachableError
from elasticity_lab.lm.scorers import RewardModelScorer


def test_scores_threshold_and_direction(scorer_dir) -> None:
    prompts, responses = ["how to do it"] * 3, ["sorry no", "first then yes", "yes"]
    higher = RewardModelScorer(str(scorer_dir), device="cpu")
    raw = higher.scores(prompts, responses)
    assert raw.shape == (3,) and np.all(np.isfinite(raw))
    assert np.array_equal(higher(prompts, responses), (raw > 0).astype(float))
    mid = float(np.median(raw))
    lower = RewardModelScorer(str(scorer_dir), direction="lower", threshold=mid, device="cpu")
    assert np.array_equal(lower(prompts, responses), (raw < mid).astype(float))
    # batching does not change the scores
    assert np.allclose(RewardModelScorer(str(scorer_dir), batch_size=1, device="cpu").scores(prompts, responses), raw, atol=1e-5)


def test_bad_input_is_named(scorer_dir) -> None:
    with pytest.raises(ValueError, match="direction='up'"):
        RewardModelScorer(str(scorer_dir), direction="up")
    with pytest.raises(ValueError, match="same length"):
        RewardModelScorer(str(scorer_dir), device="cpu").scores(["a"], [])


def test_offline_hub_name_fails_fast_with_the_alternative(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubUnreachableError, match="scorer='keyword'"):
        RewardModelScorer("PKU-Alignment/not-a-local-model")
