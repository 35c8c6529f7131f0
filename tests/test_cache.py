"""The cache: stable keys, atomic writes, a second request trains nothing, an interrupted run resumes.

Damage, locks and keys that follow the code: tests/test_cache_damage.py."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from elasticity_lab.core import cache
from elasticity_lab.lm import pretraining
from elasticity_lab.lm.pretraining import PretrainConfig, log_budgets, pretrain
from elasticity_lab.microworld.world import World

TINY = PretrainConfig(tokens=16 * 32 * 12, batch_size=16, seq_len=32, checkpoints=(16 * 32 * 3, 16 * 32 * 6), eval_tokens=1024)


@pytest.fixture()
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV_VAR, str(tmp_path))
    return tmp_path


def test_cache_dir_follows_the_environment(tmp_cache) -> None:
    assert cache.cache_dir() == tmp_cache


def test_config_hash_is_stable_and_sensitive() -> None:
    a = cache.config_hash({"x": 1, "y": [1, 2]})
    assert a == cache.config_hash({"y": (1, 2), "x": 1})
    assert a != cache.config_hash({"x": 2, "y": [1, 2]})


def test_atomic_writes_leave_no_temporary_files(tmp_cache) -> None:
    path = tmp_cache / "sub" / "f.txt"
    cache.atomic_write_text(path, "one")
    cache.atomic_write_text(path, "two")
    assert path.read_text() == "two"
    assert [p.name for p in path.parent.iterdir()] == ["f.txt"]

    def broken(tmp: str) -> None:
        open(tmp, "w").write("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        cache.atomic_save_file(path, broken)
    assert path.read_text() == "two" and [p.name for p in path.parent.iterdir()] == ["f.txt"]


def test_tensors_and_states_round_trip_without_pickle(tmp_cache) -> None:
    t = {"a": torch.arange(6.0).reshape(2, 3)}
    cache.save_tensors(tmp_cache / "t.safetensors", t)
    assert torch.equal(cache.load_tensors(tmp_cache / "t.safetensors")["a"], t["a"])
    cache.save_torch_state(tmp_cache / "s.pt", {"step": 3, "m": torch.ones(2)})
    assert cache.load_torch_state(tmp_cache / "s.pt")["step"] == 3


def test_cached_table_computes_once(tmp_cache) -> None:
    calls = []

    def compute() -> pd.DataFrame:
        calls.append(1)
        return pd.DataFrame({"n": [1, 2], "score": [0.5, 0.25]})

    first = cache.cached_table("demo", {"k": 1}, compute)
    second = cache.cached_table("demo", {"k": 1}, compute)
    pd.testing.assert_frame_equal(first, second)
    assert len(calls) == 1


def test_log_budgets() -> None:
    b = log_budgets(4096 * 1024, 6, 4096)
    assert b[-1] == 4096 * 1024 and b == sorted(b) and len(b) == 6
    assert abs(b[-1] / b[-2] - 4) < 0.01


def _weights(run, tokens=None):
    return run.load(tokens).state_dict()


def test_second_request_trains_nothing(tmp_cache, monkeypatch) -> None:
    world = World()
    run = pretrain(world, "nano", TINY, progress=False)
    assert run.budgets == [1536, 3072, 6144]
    assert run.curve["heldout_bits_per_token"].notna().sum() == 3

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(pretraining, "token_batches", no_training)
    again = pretrain(world, "nano", TINY, progress=False)
    assert again.path == run.path
    pd.testing.assert_frame_equal(again.curve, run.curve)


def test_interrupted_run_resumes_to_the_same_weights(tmp_path, monkeypatch) -> None:
    world = World()
    monkeypatch.setenv(cache.CACHE_ENV_VAR, str(tmp_path / "a"))
    whole = pretrain(world, "nano", TINY, progress=False)
    monkeypatch.setenv(cache.CACHE_ENV_VAR, str(tmp_path / "b"))
    with pytest.raises(InterruptedError):
        pretrain(world, "nano", TINY, progress=False, stop_after_steps=8, resume_every=4)
    assert (pretraining.run_dir(world, "nano", TINY) / pretraining.RESUME_FILE).exists()
    resumed = pretrain(world, "nano", TINY, progress=False)
    assert resumed.curve["step"].tolist() == list(range(1, 13))
    for budget in whole.budgets:
        a, b = _weights(whole, budget), _weights(resumed, budget)
        assert all(torch.equal(a[k], b[k]) for k in a), budget
    pd.testing.assert_series_equal(whole.curve["loss"], resumed.curve["loss"])


def test_same_seed_same_pretrained_weights(tmp_path, monkeypatch) -> None:
    world = World()
    runs = []
    for sub in ("x", "y"):
        monkeypatch.setenv(cache.CACHE_ENV_VAR, str(tmp_path / sub))
        runs.append(pretrain(world, "nano", TINY, progress=False))
    a, b = _weights(runs[0]), _weights(runs[1])
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bad_pretrain_config_names_the_parameter() -> None:
    with pytest.raises(ValueError, match="tokens"):
        PretrainConfig(tokens=10)
    with pytest.raises(ValueError, match="checkpoints"):
        PretrainConfig(tokens=8192, batch_size=8, seq_len=16, checkpoints=(10**9,))
    with pytest.raises(ValueError, match="preset"):
        pretrain(World(), "gigantic", TINY)
