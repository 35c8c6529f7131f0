"""Answers from a model to a list of prompts: sampled (temperature, top-p) or greedy.

Why its own module: the resistance experiment needs each checkpoint's answers to a shared query set
at the authors' settings (temperature 0.05, top-p 0.95) and greedily; the behaviour scores need
samples at temperature 1 (the model's own distribution). One seeded function serves both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from elasticity_lab.lm.presets import autocast_for, inference_threads

from elasticity_lab.lm.batching import encode_prompt, left_pad, pad_id_of
from elasticity_lab.lm.distributed import is_sharded
from elasticity_lab.core.config import check_int, check_positive, check_range, show_value

MAX_NEW_TOKENS = 4096
"""The longest answer one call asks for (micro-world presets stop at their 128 positions anyway)."""


@torch.no_grad()
@inference_threads
def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 16,
    temperature: float = 1.0,
    top_p: float = 1.0,
    greedy: bool = False,
    batch_size: int = 256,
    seed: int = 0,
) -> list[str]:
    """The model's responses (text after the prompt, up to end-of-sequence, special tokens removed).

    ``greedy=True`` takes the most likely token each step (temperature and top-p are then unused).
    Sampling is seeded: same model, prompts and seed → same answers on the CPU.
    """
    check_int("max_new_tokens", max_new_tokens, 1, MAX_NEW_TOKENS)
    check_int("batch_size", batch_size, 1)
    check_int("seed", seed, 0, 2**63 - 1, why="torch's seed range")
    if not isinstance(greedy, (bool, np.bool_)):
        raise ValueError(f"greedy={greedy!r} is not allowed; it must be True or False.")
    if not greedy:
        check_positive("temperature", temperature)
        check_range("top_p", top_p, 0, 1, lo_open=True)
    if isinstance(prompts, (str, bytes)) or not isinstance(prompts, Sequence):
        raise ValueError(f"prompts={show_value(prompts)} is not allowed; it must be a list of strings.")
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise ValueError(f"prompts[{i}]={show_value(p)} is not allowed; it must be a string.")
    if not prompts:
        return []
    pad = pad_id_of(tokenizer)
    device = next(model.parameters()).device
    sharded = is_sharded(model)
    was = model.training
    model.eval()
    out: list[str] = []
    torch.manual_seed(seed)
    for i in range(0, len(prompts), batch_size):
        batch = left_pad([encode_prompt(tokenizer, p) for p in prompts[i:i + batch_size]], pad)
        batch = {k: v.to(device) for k, v in batch.items()}
        kwargs: dict[str, Any] = dict(max_new_tokens=max_new_tokens, pad_token_id=pad, eos_token_id=tokenizer.eos_token_id)
        if sharded:  # an FSDP model all-gathers in every forward: every rank keeps stepping until all are done
            kwargs["synced_gpus"] = True
        if greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=0)
        with autocast_for(device):
            seqs = model.generate(**batch, **kwargs)
        new = seqs[:, batch["input_ids"].shape[1]:]
        for row in new.tolist():
            if tokenizer.eos_token_id in row:
                row = row[: row.index(tokenizer.eos_token_id)]
            out.append(tokenizer.decode(row, skip_special_tokens=True).strip())
    model.train(was)
    return out
