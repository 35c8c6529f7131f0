"""Beyond one GPU: the shipped ``accelerate launch`` configs and the commands that run the study with them.

The configs live in the package (``elasticity_lab/assets/accelerate/``), so an installed wheel on Colab or a cluster
has them too; :func:`launch_command` writes the command with the installed file's path. What each config does:

- ``cpu_2proc``: two ranks on a machine without a GPU (gloo): the tested one (``tests/test_distributed.py``).
- ``ddp_multi_gpu``: data parallel on every card of one machine (DDP): each rank a full model, its share of every batch.
- ``cpu_2proc_fsdp``: FSDP2 on two CPU ranks (gloo): the tested FSDP one (the library shards with torch's ``fully_shard``).
- ``fsdp_llama_7b_13b``: FSDP2 for models that do not fit one card (the paper's Llama-2-7B/13B), one unit per decoder layer.

Every rank runs the same study; the main rank alone reads and writes the cache and the JSON
(:mod:`elasticity_lab.core.ranks`, :mod:`elasticity_lab.lm.distributed`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from elasticity_lab.core.config import check_choice, check_int, check_positive
from elasticity_lab.experiments.realmodels.config import SCALE_PRESETS

CONFIG_DIR = Path(__file__).resolve().parents[2] / "assets" / "accelerate"
LAUNCH_CONFIGS: tuple[str, ...] = ("cpu_2proc", "cpu_2proc_fsdp", "ddp_multi_gpu", "fsdp_llama_7b_13b")
BYTES_PER_PARAMETER = 16
"""Full fine-tuning with AdamW in fp32: weights 4, gradients 4, two moments 8 (bytes a parameter, before activations)."""


def launch_config_path(name: str) -> Path:
    """The installed path of a shipped launch config (:data:`LAUNCH_CONFIGS`)."""
    check_choice("name", name, LAUNCH_CONFIGS)
    return CONFIG_DIR / f"{name}.yaml"


def launch_config(name: str) -> dict[str, Any]:
    """A shipped launch config as a dict (what ``accelerate launch --config_file`` reads)."""
    import yaml

    return dict(yaml.safe_load(launch_config_path(name).read_text("utf-8")))


def launch_command(name: str, scale: str = "paper", *, out: str | None = None, processes: int | None = None) -> str:
    """The shell command that runs chapter 10's study at ``scale`` under the launch config ``name`` (``processes``
    overrides its ``num_processes``: set it to the number of cards)."""
    check_choice("scale", scale, tuple(SCALE_PRESETS))
    extra = f" --num_processes {int(processes)}" if processes else ""
    return (f"accelerate launch --config_file {launch_config_path(name)}{extra} -m elasticity_lab run realmodels "
            f"--scale {scale} --json {out or f'realmodels-{scale}.json'}")


def memory_per_card(parameters: float, cards: int, *, sharded: bool) -> float:
    """GB a card holds for full fine-tuning (:data:`BYTES_PER_PARAMETER`), before activations: all of it with DDP, a
    ``1/cards`` share with FSDP."""
    check_choice("sharded", sharded, (True, False))
    return BYTES_PER_PARAMETER * parameters / (cards if sharded else 1) / 1e9


STORED_BYTES: dict[str, int] = {"fp32": 4, "bf16": 2}
"""Bytes a parameter of a plain (unsharded) model each rank keeps: the base, and a model between stages."""


def fsdp_memory(parameters: float, cards: int, *, stored: str = "bf16", kept: int = 0) -> dict[str, float]:
    """GB a card holds, before activations, in each phase of one FSDP fine-tuning run of a model of ``parameters``
    over ``cards`` ranks, when every rank keeps its plain models in ``stored`` (:data:`STORED_BYTES`: the FSDP path
    loads the base in bf16 where the precision is bf16; fp32 is what it held before). The shards always hold fp32
    master weights (4 bytes), their gradients (4) and AdamW's two moments (8), a ``1/cards`` share each.

    - ``sharding``: the base, the plain copy being trained (:func:`elasticity_lab.lm.training.sft` copies the base; a
      layer is freed once sharded) and the fp32 shards it becomes;
    - ``training``: the base and the whole sharded state;
    - ``gathering``: the base, the fp32 weight shards (optimiser state and gradients freed first) and the plain
      model gathered from them on every rank (:meth:`elasticity_lab.lm.distributed.DataParallel.close`);
    - ``peak``: the largest of the three.

    ``kept``: further plain models each rank holds throughout (the resistance study's θ₁-θ₃: 3; the rebound study
    keeps none beyond the base)."""
    check_choice("stored", stored, tuple(STORED_BYTES))
    check_positive("parameters", parameters)
    check_int("cards", cards, 1)
    check_int("kept", kept, 0)
    plain, gb = STORED_BYTES[stored] * parameters, 1e9
    phases = {"base": (1 + kept) * plain / gb,
              "sharding": ((2 + kept) * plain + 4 * parameters / cards) / gb,
              "training": ((1 + kept) * plain + BYTES_PER_PARAMETER * parameters / cards) / gb,
              "gathering": ((2 + kept) * plain + 4 * parameters / cards) / gb}
    phases["peak"] = max(phases["sharding"], phases["training"], phases["gathering"])
    return phases


def fsdp_memory_sentence(model: str, parameters: float, cards: int, card_gb: float) -> str:
    """One sentence on ``model``'s peak GB a card under FSDP before (plain models kept in fp32) and now (in bf16),
    and whether each fits a card of ``card_gb``."""
    before, after = fsdp_memory(parameters, cards, stored="fp32"), fsdp_memory(parameters, cards, stored="bf16")
    resist = fsdp_memory(parameters, cards, stored="bf16", kept=3)["peak"]
    fits = lambda gb: "fits" if gb <= card_gb else "does not fit"  # noqa: E731
    # one decimal: "at most 58 GB" for a peak of 58.5 would understate it
    return (f"{model}: {memory_per_card(parameters, 1, sharded=False):.1f} GB to fine-tune on one card; sharded over "
            f"{cards} cards, at most {after['peak']:.1f} GB a card with the base kept in bf16 ({after['base']:.1f} GB, "
            f"training state {after['training'] - after['base']:.1f} GB), which {fits(after['peak'])} a card of "
            f"{card_gb:g} GB before activations; with the base kept in fp32 it would be {before['peak']:.1f} GB "
            f"({fits(before['peak'])}). The resistance study, which keeps its three θ checkpoints whole on every rank "
            f"too, would peak at {resist:.1f} GB a card ({fits(resist)}).")


PAPER_SIZE_MODELS: tuple[str, ...] = ("meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-13b-hf")
"""The paper's own sizes (gated on the hub: accept the licence and log in with ``huggingface-cli login`` first)."""


def study_script(size_models: tuple[str, ...] = PAPER_SIZE_MODELS, scale: str = "paper", out: str = "realmodels-7b-13b.csv") -> str:
    """A Python file that runs the size study on ``size_models`` at ``scale`` under a launcher: every rank runs it, the
    main rank writes the curves and the verdicts (for models the CLI's presets do not name, such as the paper's 7B-13B)."""
    check_choice("scale", scale, tuple(SCALE_PRESETS))
    return f'''# accelerate launch --config_file {launch_config_path("fsdp_llama_7b_13b")} this_file.py
from elasticity_lab.core import ranks
from elasticity_lab.experiments import realmodels as rm

config = rm.default_config({scale!r}, studies=("size",), size_models={tuple(size_models)!r}, source="hub")
result = rm.run_study(config)
if ranks.is_main():  # every rank holds the same result; one writes it
    result.curves.to_csv({out!r}, index=False)
    print(rm.verdict_prose(rm.verdict_rows(rm.drops(result.curves)), stand_ins=False))
ranks.shutdown()
'''
