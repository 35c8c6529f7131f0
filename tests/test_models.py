"""Presets, seeded random bases, and the one way to a base model (load_base): presets, checkpoints, the hub path
through a local folder, offline errors."""

from __future__ import annotations

import time

import pytest
import torch

from elasticity_lab.lm.bases import BaseSpec, load_base
from elasticity_lab.lm.hub import HubUnreachableError
from elasticity_lab.lm.presets import CPU_PRESETS, PRESETS, count_parameters, get_device, preset_parameters, random_model
from elasticity_lab.microworld.world import World


def test_presets_span_the_size_axis() -> None:
    sizes = [preset_parameters(p) for p in CPU_PRESETS]
    assert sizes == sorted(sizes)
    in_range = [s for s in sizes if 0.09e6 <= s <= 5.5e6]
    assert len(in_range) >= 4, sizes
    assert preset_parameters("full") > 1e7
    assert set(CPU_PRESETS) < set(PRESETS)


def test_random_models_are_seeded_and_eager_on_cpu() -> None:
    a, b, c = (random_model("nano", 50, seed=s) for s in (1, 1, 2))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.model.embed_tokens.weight, c.model.embed_tokens.weight)
    assert a.config._attn_implementation == "eager"
    assert count_parameters(a) == preset_parameters("nano", 50)


def test_get_device_prefers_accelerators() -> None:
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert get_device().type == expected
    assert get_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="prefer"):
        get_device("tpu")


def test_hub_path_through_a_local_folder(tmp_path) -> None:
    """The full-scale code path (from_pretrained, safetensors, no remote code) on a saved tiny model."""
    world = World()
    model, tok = random_model("nano", len(world.vocabulary), seed=0), world.tokenizer()
    model.save_pretrained(tmp_path, safe_serialization=True)
    tok.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    base = load_base(str(tmp_path), device="cpu")
    loaded, tok2 = base.model, base.tokenizer
    assert base.world is None and not BaseSpec.parse(str(tmp_path)).micro_world
    x = torch.tensor([world.encode("<bos> the car sees the dog .")])
    with torch.no_grad():
        assert torch.allclose(model(input_ids=x).logits, loaded(input_ids=x).logits, atol=1e-6)
    assert tok2("the car", add_special_tokens=False)["input_ids"] == world.encode("the car")


def test_offline_hub_fails_fast_with_one_clear_sentence(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(HubUnreachableError, match="micro-world preset"):
        load_base("some-org/model-that-is-not-cached-here", device="cpu")
    assert time.perf_counter() - start < 20


def test_base_specs_parse_and_validate_before_any_work() -> None:
    assert BaseSpec.parse("micro-smoke").revision is None and BaseSpec.parse("micro-smoke@random").kind == "random"
    assert BaseSpec.parse("micro-smoke@tokens-4096").revision == 4096
    assert BaseSpec.parse("micro-smoke@light").kind == "light"
    assert BaseSpec.parse("micro-smoke@light").light_tokens() < BaseSpec.parse("micro-smoke").budgets()[-1]
    with pytest.raises(ValueError, match="revision='step-3'"):
        BaseSpec.parse("micro-smoke@step-3")
    with pytest.raises(ValueError, match="tokens-123.*not a checkpoint"):
        BaseSpec.parse("nano@tokens-123", scale="smoke")
    with pytest.raises(ValueError, match="source='gigantic'"):
        BaseSpec.parse("gigantic")
    base = load_base(BaseSpec("nano", "random", scale="smoke"), device="cpu")
    assert count_parameters(base.model) == preset_parameters("nano", len(base.tokenizer))
    assert base.key["kind"] == "random"


def test_bad_preset_names_the_parameter() -> None:
    with pytest.raises(ValueError, match="preset"):
        random_model("gigantic", 10)
