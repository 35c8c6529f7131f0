"""From prompt/response examples to token tensors, with response-only loss masks.

Why a module: the SFT loss, the likelihood score and the KL to a base all need to know exactly which
positions are the response. The paper's recipe computes the loss on response tokens only (the prompt
masked with -100); :func:`encode_example` is the one place that decides those positions, for the
micro-world's tokenizer and for hub tokenizers with their own chat templates alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

IGNORE_INDEX = -100


def _is_micro_world(tokenizer: Any) -> bool:
    return "<assistant>" in tokenizer.get_vocab()


def encode_prompt(tokenizer: Any, prompt: str) -> list[int]:
    """Token ids of the chat template up to where the model answers (generation starts here)."""
    if _is_micro_world(tokenizer):
        from elasticity_lab.microworld.world import chat_prompt

        return tokenizer(chat_prompt(prompt), add_special_tokens=False)["input_ids"]
    if getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return list(ids)
    text = f"User: {prompt}\nAssistant:"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ([tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []) + ids


def encode_response(tokenizer: Any, response: str) -> list[int]:
    """Token ids of a response followed by the end-of-sequence token (the model must learn to stop)."""
    text = response if _is_micro_world(tokenizer) else " " + response
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        ids = ids + [tokenizer.eos_token_id]
    return ids


def encode_example(tokenizer: Any, prompt: str, response: str) -> tuple[list[int], list[int]]:
    """``(input_ids, labels)`` with labels = -100 on every prompt position (response-only loss)."""
    p = encode_prompt(tokenizer, prompt)
    r = encode_response(tokenizer, response)
    return p + r, [IGNORE_INDEX] * len(p) + r


def collate(encoded: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch for training: padded positions are masked out of attention and loss."""
    width = max(len(ids) for ids, _ in encoded)
    n = len(encoded)
    input_ids = torch.full((n, width), pad_id, dtype=torch.long)
    labels = torch.full((n, width), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((n, width), dtype=torch.long)
    for i, (ids, lab) in enumerate(encoded):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, : len(lab)] = torch.tensor(lab)
        attention[i, : len(ids)] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention}


def left_pad(sequences: Sequence[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Left-pad prompts for generation, so every prompt ends where the new tokens begin."""
    width = max(len(s) for s in sequences)
    n = len(sequences)
    input_ids = torch.full((n, width), pad_id, dtype=torch.long)
    attention = torch.zeros((n, width), dtype=torch.long)
    for i, s in enumerate(sequences):
        input_ids[i, width - len(s):] = torch.tensor(s)
        attention[i, width - len(s):] = 1
    return {"input_ids": input_ids, "attention_mask": attention}


def pad_id_of(tokenizer: Any) -> int:
    """The padding id, falling back to end-of-sequence for hub tokenizers that have none."""
    if tokenizer.pad_token_id is not None:
        return int(tokenizer.pad_token_id)
    if tokenizer.eos_token_id is not None:
        return int(tokenizer.eos_token_id)
    raise ValueError("tokenizer has neither a pad nor an eos token; set tokenizer.pad_token first.")
