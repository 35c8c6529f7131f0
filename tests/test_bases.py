"""The shipped bases: the manifest matches the files, and a small base remade from scratch matches its checksums."""

from __future__ import annotations

import pytest
import torch

from elasticity_lab.lm import bases, shipped
from elasticity_lab.lm.pretraining import pretrain, run_key


def test_manifest_lists_every_book_base_and_its_files() -> None:
    manifest = shipped.read_manifest()
    assert set(manifest) == set(bases.BOOK_BASES)
    for name, entry in manifest.items():
        world, preset, config = bases.base_spec(name)
        folder = shipped.shipped_dir(run_key(world, preset, config))
        assert folder is not None, f"{name}: shipped weights missing or stale; run `python -m elasticity_lab bases remake {name}`"
        assert entry["files"] == shipped.weight_checksums(folder)


def test_shipped_base_is_used_without_training(monkeypatch) -> None:
    from elasticity_lab.lm import pretraining

    monkeypatch.setattr(pretraining, "token_batches", lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained")))
    world, preset, config = bases.base_spec("micro-smoke")
    run = pretrain(world, preset, config, progress=False)
    assert run.path.is_relative_to(shipped.ASSETS_DIR)
    assert run.load().config.vocab_size == len(world.vocabulary)


def test_remaking_the_smoke_base_gives_the_manifest_checksums() -> None:
    entry = shipped.read_manifest()["micro-smoke"]
    if entry["torch_version"] != torch.__version__:
        pytest.skip(f"weights were made with torch {entry['torch_version']}, this is {torch.__version__}")
    result = bases.remake("micro-smoke", check=True, progress=False)
    assert result["match"], "remade weights differ from the manifest"


def test_load_base_and_its_controls() -> None:
    base = bases.load_base("micro-smoke")
    model, tok, world = base.model, base.tokenizer, base.world
    early = bases.load_base("micro-smoke@tokens-4096").model
    random = bases.load_base("micro-smoke@random").model
    assert world.config.harmful_refusal == 0.2 and len(tok) == model.config.vocab_size
    assert not torch.equal(model.lm_head.weight, early.lm_head.weight)
    assert not torch.equal(early.lm_head.weight, random.lm_head.weight)
    with pytest.raises(ValueError, match="source='micro-refusal99'"):
        bases.load_base("micro-refusal99")
    w50, _, _ = bases.base_spec("micro-refusal50")
    assert w50.config.harmful_refusal == 0.5 and w50.config.benign_refusal == world.config.benign_refusal
