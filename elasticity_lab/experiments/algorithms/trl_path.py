"""Stage 1 on a hub model through TRL's own trainers, as a practitioner would run it (the ``full`` scale).

The micro-world study trains with the library's short loops (:mod:`elasticity_lab.lm.preference`,
:mod:`elasticity_lab.lm.rl`), whose losses tests/test_preference.py and tests/test_rl.py check against
TRL's. On a hub base (``"org/model"``, ``"org/model@revision"`` or a ``save_pretrained`` folder) the
same five algorithms run through TRL 1.16 instead:

========  ==========================================================================================
``sft``   ``SFTTrainer`` on (prompt, safe response); loss on the completion only
``dpo``   ``DPOTrainer`` on (prompt, safe response, unsafe response), the frozen base as reference
``kto``   ``KTOTrainer`` on the safe responses (desirable) and unsafe ones to other prompts (undesirable)
``simpo`` ``CPOTrainer`` with ``loss_type="simpo"``, ``cpo_alpha=0`` (SimPO: reference-free, length-normalised)
``rloo``  ``RLOOTrainer`` on the prompts alone, k samples each, rewarded by the task's own scoring rule
========  ==========================================================================================

RLOO, not GRPO: TRL 1.16's ``RLOOTrainer`` takes a reward *function* and a reference built from the policy's
path, exactly the micro-world's method (leave-one-out baseline, KL penalty in the reward, clipped ratio), so the
two paths run the same algorithm; GRPO would change the baseline (group mean and std) as well as the library.

The data come from the hub's safety sets (BeaverTails, PKU-SafeRLHF; the columns
:class:`~elasticity_lab.experiments.rebound.tasks.HubTask` reads): a preference pair is a prompt with one
response the data set labels safe and one it labels unsafe. The reward for RLOO cannot be the data set's label:
the label exists only for the data set's own responses, and RLOO scores answers the model has just sampled. So
the reward is the rule the study scores every model with (a refusal phrase, :func:`~elasticity_lab.experiments.
rebound.tasks.refusal_rule`, or the reward model the task was built with): the micro-world's exact judge has no
exact counterpart on real text, and a rule the reader can read is the closest stand-in.

Prompts are given to TRL as text in the very format the library trains and samples with
(:func:`~elasticity_lab.lm.batching.encode_prompt`, decoded), so that stage 2 and the probe see the answers where
stage 1 put them.
"""

from __future__ import annotations

import copy
import dataclasses
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from elasticity_lab.core.config import check_choice, check_positive
from elasticity_lab.experiments.algorithms.align import ALGORITHMS, AlignResult, default_align_config

TRAINERS: dict[str, str] = {"sft": "SFTTrainer", "dpo": "DPOTrainer", "kto": "KTOTrainer",
                            "simpo": "CPOTrainer (loss_type='simpo', cpo_alpha=0)", "rloo": "RLOOTrainer"}
"""Which TRL trainer runs each algorithm's stage 1 on a hub model."""
NEEDS_REFERENCE: tuple[str, ...] = ("dpo", "kto", "rloo")
"""Algorithms whose loss compares the policy with a frozen reference (RLOO only while its KL coefficient β > 0)."""


# --------------------------------------------------------------------------- validation


def check_hyperparameters(algorithm: str, config: Any, *, ref_model: Any | None = None) -> None:
    """One sentence naming the parameter, the value and what is allowed, before any trainer is built.

    The algorithm's own config (:class:`~elasticity_lab.lm.training.SFTConfig`,
    :class:`~elasticity_lab.lm.preference.PreferenceConfig`, :class:`~elasticity_lab.lm.rl.RLConfig`) has already
    checked its ranges (β > 0, k ≥ 2, 0 < ε < 1, KTO batch ≥ 2); here what the TRL path adds: full fine-tuning only,
    a learning rate, and the reference model where the method needs one (the frozen base, which this path supplies
    itself: an explicit ``ref_model`` must be a model, and SFT and SimPO take none)."""
    from elasticity_lab.lm.preference import PreferenceConfig
    from elasticity_lab.lm.rl import RLConfig
    from elasticity_lab.lm.training import SFTConfig

    check_choice("algorithm", algorithm, ALGORITHMS)
    expected = {"sft": SFTConfig, "rloo": RLConfig}.get(algorithm, PreferenceConfig)
    if type(config) is not expected:
        raise ValueError(f"config is a {type(config).__name__}; algorithm={algorithm!r} needs a {expected.__name__}.")
    if isinstance(config, PreferenceConfig) and config.algorithm != algorithm:
        raise ValueError(f"config.algorithm={config.algorithm!r} does not match algorithm={algorithm!r}.")
    if config.method != "full":
        raise ValueError(f"method={config.method!r} is not allowed on the TRL path; it runs full fine-tuning ('full') only.")
    if config.lr is None:
        raise ValueError(f"lr=None is not allowed on the TRL path; give the stage-1 learning rate of {algorithm!r} (a number > 0).")
    check_positive("lr", config.lr)
    if config.max_steps is not None or config.epochs != 1.0:
        raise ValueError(f"epochs={config.epochs!r}, max_steps={config.max_steps!r} are not allowed on the TRL path; "
                         "stage 1 is one epoch over the data (epochs=1.0, max_steps=None), as in the micro-world study.")
    if isinstance(config, PreferenceConfig) and config.strength <= 0:
        raise ValueError(f"beta={config.strength!r} is not allowed for {algorithm!r}; it must be > 0.")
    if ref_model is not None:
        if algorithm in ("sft", "simpo"):
            raise ValueError(f"ref_model is not allowed for algorithm={algorithm!r}; {algorithm.upper()} has no reference model.")
        if not hasattr(ref_model, "parameters"):
            raise ValueError(f"ref_model={type(ref_model).__name__} is not allowed; give a model (or None: the frozen base).")


# --------------------------------------------------------------------------- data


def prompt_text(tokenizer: Any, prompt: str) -> str:
    """The prompt as text in the library's format (chat template, or ``User: … Assistant:``), special tokens kept."""
    from elasticity_lab.lm.batching import encode_prompt

    return tokenizer.decode(encode_prompt(tokenizer, prompt), skip_special_tokens=False)


def hub_pairs(task: Any, n: int, seed: int) -> list[tuple[str, str, str]]:
    """``n`` (prompt, safe response, unsafe response) triples from the task's training part: prompts that have a
    response of each kind, in an order set by ``seed`` (cycled when ``n`` exceeds them)."""
    check_positive("n", n)
    safe: dict[str, list[str]] = {}
    for p, r in task.train["aligned"]:
        safe.setdefault(p, []).append(r)
    triples = [(p, safe[p][i % len(safe[p])], r) for i, (p, r) in enumerate(task.train["unaligned"]) if p in safe]
    if not triples:
        raise ValueError("the safety data set has no prompt with both a safe and an unsafe response in its training part; "
                         "use BeaverTails or PKU-SafeRLHF (PKU-Alignment/PKU-SafeRLHF pairs two responses per prompt).")
    order = np.random.default_rng([seed, 3]).permutation(len(triples)).tolist()
    return [triples[i] for i in (order * (n // len(triples) + 1))[:n]]


def hub_data(task: Any, tokenizer: Any, algorithm: str, n: int, seed: int) -> list[dict[str, Any]]:
    """Rows of TRL's data set for ``algorithm``: the same information per ``n`` as in the micro-world
    (:mod:`~elasticity_lab.experiments.algorithms.align`): SFT ``n`` safe answers; DPO and SimPO ``n`` pairs; KTO
    the ``n`` pairs' safe answers plus ``n`` unsafe answers to other prompts; RLOO the ``n`` pairs' prompts."""
    check_choice("algorithm", algorithm, ALGORITHMS)
    if algorithm == "sft":
        return [{"prompt": prompt_text(tokenizer, p), "completion": " " + r} for p, r in task.data("aligned", n, seed)]
    pairs = hub_pairs(task, n, seed)
    if algorithm in ("dpo", "simpo"):
        return [{"prompt": prompt_text(tokenizer, p), "chosen": " " + c, "rejected": " " + r} for p, c, r in pairs]
    if algorithm == "rloo":
        return [{"prompt": prompt_text(tokenizer, p)} for p, _, _ in pairs]
    rows = [{"prompt": prompt_text(tokenizer, p), "completion": " " + c, "label": True} for p, c, _ in pairs]
    rows += [{"prompt": prompt_text(tokenizer, p), "completion": " " + r, "label": False} for p, r in task.data("unaligned", n, seed)]
    order = np.random.default_rng(seed).permutation(len(rows))
    return [rows[i] for i in order]


# --------------------------------------------------------------------------- the trainers


def _args(cls: Any, config: Any, out: Path, seed: int, device: Any, **kw: Any) -> Any:
    """TRL's config with the library config's optimiser settings (constant rate, AdamW betas, clip, one epoch)."""
    import torch

    cuda = getattr(device, "type", str(device)) == "cuda"
    return cls(output_dir=str(out), per_device_train_batch_size=config.batch_size, learning_rate=float(config.lr),
               num_train_epochs=1.0, lr_scheduler_type="constant", warmup_steps=0, weight_decay=config.weight_decay,
               adam_beta1=config.betas[0], adam_beta2=config.betas[1], max_grad_norm=config.grad_clip or 0.0,
               seed=seed, data_seed=seed, report_to=[], save_strategy="no", logging_steps=1, disable_tqdm=True,
               use_cpu=not cuda, bf16=bool(cuda and torch.cuda.is_bf16_supported()), fp16=False,
               dataloader_num_workers=0, **kw)


def _trainer(algorithm: str, policy: Any, reference: Any, tokenizer: Any, rows: list[dict[str, Any]], config: Any,
             task: Any, out: Path, seed: int, device: Any, max_length: int, raw_prompts: dict[str, str]) -> Any:
    from datasets import Dataset

    ds = Dataset.from_list(rows)
    if algorithm == "sft":
        from trl import SFTConfig, SFTTrainer

        args = _args(SFTConfig, config, out, seed, device, max_length=max_length, completion_only_loss=True, packing=False)
        return SFTTrainer(model=policy, args=args, train_dataset=ds, processing_class=tokenizer)
    if algorithm == "dpo":
        from trl import DPOConfig, DPOTrainer

        args = _args(DPOConfig, config, out, seed, device, beta=config.strength, max_length=max_length, disable_dropout=True)
        return DPOTrainer(model=policy, ref_model=reference, args=args, train_dataset=ds, processing_class=tokenizer)
    if algorithm == "kto":
        from trl import KTOConfig, KTOTrainer

        args = _args(KTOConfig, config, out, seed, device, beta=config.strength, desirable_weight=config.desirable_weight,
                     undesirable_weight=config.undesirable_weight, max_length=max_length, disable_dropout=True)
        return KTOTrainer(model=policy, ref_model=reference, args=args, train_dataset=ds, processing_class=tokenizer)
    if algorithm == "simpo":
        from trl.experimental.cpo import CPOConfig, CPOTrainer

        args = _args(CPOConfig, config, out, seed, device, loss_type="simpo", cpo_alpha=0.0, beta=config.strength,
                     simpo_gamma=config.gamma, max_length=max_length, disable_dropout=True, remove_unused_columns=False)
        return CPOTrainer(model=policy, args=args, train_dataset=ds, processing_class=tokenizer)
    from trl import RLOOConfig, RLOOTrainer

    def reward(prompts: list[str], completions: list[str], **_: Any) -> list[float]:
        return [float(x) for x in task.aligned([raw_prompts.get(p, p) for p in prompts], completions)]

    args = _args(RLOOConfig, dataclasses.replace(config, batch_size=config.batch_size * config.k), out, seed, device,
                 num_generations=config.k, beta=config.beta, epsilon=config.epsilon, temperature=config.temperature,
                 max_completion_length=config.max_new_tokens, disable_dropout=True)
    return RLOOTrainer(model=policy, reward_funcs=[reward], args=args, train_dataset=ds, processing_class=tokenizer)


def trl_align(model: Any, tokenizer: Any, algorithm: str, task: Any, n_examples: int, config: Any | None = None, *,
              seed: int = 0, ref_model: Any | None = None, max_length: int = 256, workdir: str | Path | None = None) -> AlignResult:
    """Stage 1 of ``model`` (left unchanged: a copy is trained) on a hub ``task``
    (:class:`~elasticity_lab.experiments.rebound.tasks.HubTask`) with ``algorithm`` through TRL's trainer.

    ``config`` is the algorithm's library config (:func:`~elasticity_lab.experiments.algorithms.align.default_align_config`
    with an ``lr``): batch size, rate, β, γ, KTO's weights, RLOO's k, β, ε and sampling settings carry over. The
    reference of DPO, KTO and RLOO is ``ref_model`` or else a frozen copy of ``model`` (for RLOO, whose trainer loads
    its reference from the policy's path, ``model`` is first saved as safetensors under ``workdir``, so that a
    re-initialised or revised base is its own reference). Returns the same :class:`AlignResult` as the library's
    :func:`~elasticity_lab.experiments.algorithms.align.align` (``curve``: TRL's per-step log)."""
    check_choice("algorithm", algorithm, ALGORITHMS)
    check_positive("n_examples", n_examples)
    if getattr(task, "world", None) is not None or not hasattr(task, "train"):
        raise ValueError(f"task={task!r} is not allowed on the TRL path; pass a hub task (experiments.rebound.HubTask), "
                         "or use algorithms.align for the micro-world.")
    config = default_align_config(algorithm) if config is None else config
    check_hyperparameters(algorithm, config, ref_model=ref_model)
    check_positive("max_length", max_length)
    try:
        import trl  # noqa: F401
    except ImportError as err:
        raise ImportError("TRL is not installed; the algorithms study on a hub model needs it: "
                          "pip install 'elasticity-lab[full]' (trl==1.16.0).") from err
    from transformers import PrinterCallback

    config = dataclasses.replace(config, seed=seed)
    device = next(model.parameters()).device
    start = time.perf_counter()
    rows = hub_data(task, tokenizer, algorithm, n_examples, seed)
    raw = {prompt_text(tokenizer, p): p for p, _, _ in hub_pairs(task, n_examples, seed)} if algorithm == "rloo" else {}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        out = Path(tmp)
        policy = copy.deepcopy(model).train()
        reference = None
        if algorithm in ("dpo", "kto"):
            reference = (ref_model if ref_model is not None else copy.deepcopy(model)).eval()
            for p in reference.parameters():
                p.requires_grad_(False)
        elif algorithm == "rloo" and config.beta > 0:
            (ref_model if ref_model is not None else model).save_pretrained(out / "reference", safe_serialization=True)
            policy.config._name_or_path = str(out / "reference")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TRL's and transformers' notices about defaults, not about the run
            trainer = _trainer(algorithm, policy, reference, tokenizer, rows, config, task, out / "run", seed, device,
                               max_length, raw)
            trainer.remove_callback(PrinterCallback)  # the study's own bar says where it is; no dict per step
            trainer.train()
        trained = trainer.model
        log = pd.DataFrame([r for r in trainer.state.log_history if "loss" in r])
        steps = int(trainer.state.global_step)
        del trainer
    trained.eval()
    return AlignResult(trained, algorithm, log, steps, time.perf_counter() - start)
