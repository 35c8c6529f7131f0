"""The shipped bases: the manifest matches the files, and a small base remade from scratch matches them within tolerances."""

from __future__ import annotations

import pytest
import torch

from elasticity_lab.lm import bases, remake, shipped
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


def test_remaking_the_smoke_base_gives_the_shipped_base_within_tolerances() -> None:
    """Another CPU gives other last bits (so other checksums): compare the numbers, within stated tolerances."""
    entry = shipped.read_manifest()["micro-smoke"]
    if entry["torch_version"].split("+")[0].rsplit(".", 1)[0] != torch.__version__.split("+")[0].rsplit(".", 1)[0]:
        pytest.skip(f"weights were made with torch {entry['torch_version']}, this is {torch.__version__}")
    result = remake.remake("micro-smoke", check=True, progress=False)
    diff, tol = result["differences"], result["tolerances"]
    assert diff["steps"] == 64 and set(tol) == set(remake.REMAKE_TOLERANCES)  # short: every check applies
    for k in tol:
        assert diff[k] <= tol[k], f"{k}: remade base differs by {diff[k]:.3g}, more than {tol[k]:g}"
    assert result["within"]


def test_the_remake_tolerances_can_say_no(tmp_path) -> None:
    """A copy is within them; a copy with a loss or one weight moved by twice the tolerance is not."""
    import shutil

    from elasticity_lab.core.cache import load_table, load_tensors, save_table, save_tensors

    world, preset, config = bases.base_spec("micro-smoke")
    shipped_run = shipped.shipped_dir(run_key(world, preset, config))
    copy = tmp_path / "copy"
    shutil.copytree(shipped_run, copy)
    same = remake.compare_runs(shipped_run, copy)
    assert same["loss"] == same["heldout_bits_per_token"] == same["weights"] == 0.0
    curve = load_table(copy / "curve.json", verify=False)
    curve["heldout_bits_per_token"] += 2 * remake.REMAKE_TOLERANCES["heldout_bits_per_token"]
    curve["loss"] += 2 * remake.REMAKE_TOLERANCES["final_loss"]
    save_table(copy / "curve.json", curve, checksum=False)
    moved = remake.compare_runs(shipped_run, copy)
    assert all(moved[k] > remake.REMAKE_TOLERANCES[k] for k in ("heldout_bits_per_token", "final_loss", "loss"))
    assert set(remake.checked_tolerances(1536)) == {"heldout_bits_per_token", "final_loss"}
    last = copy / f"tokens-{config.total_steps * config.tokens_per_step}" / "model.safetensors"
    weights = load_tensors(last, verify=False)
    weights["lm_head.weight"][0, 0] += 2 * remake.REMAKE_TOLERANCES["weights"]
    save_tensors(last, weights, checksum=False)
    assert remake.compare_runs(shipped_run, copy)["weights"] == pytest.approx(2 * remake.REMAKE_TOLERANCES["weights"], rel=1e-3)


def test_loading_a_shipped_base_checks_the_manifest_checksums() -> None:
    world, preset, config = bases.base_spec("micro-smoke")
    run = pretrain(world, preset, config, progress=False)
    assert run.shipped_checksums == shipped.read_manifest()["micro-smoke"]["files"]
    run.load()  # verified against the manifest


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
