"""Task data of the resistance protocol: stage-1 pairs and the held-out queries Q, from the micro-world or a hub data set."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from elasticity_lab.core.config import check_choice
from elasticity_lab.experiments.resistance.config import TASKS
from elasticity_lab.lm.hub import dataset_rows, split_source

# --------------------------------------------------------------------------- data


def load_rows(source: str) -> list[dict[str, Any]]:
    """Rows of a data set (``name:config:split`` on the hub, a local folder or JSON file); the split defaults to ``train``."""
    return dataset_rows(source, split_source(source)[2] or "train")


def task_pairs(task: str, rows: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """(prompt, aligned response) pairs of a hub data set: Alpaca's output, TruthfulQA's best answer, BeaverTails' safe responses."""
    check_choice("task", task, TASKS)
    out: list[tuple[str, str]] = []
    for r in rows:
        if task == "instruction":
            prompt = str(r["instruction"]) + (f"\n\n{r['input']}" if r.get("input") else "")
            out.append((prompt, str(r["output"])))
        elif task == "truthfulness":
            out.append((str(r["question"]), str(r["best_answer"])))
        elif r.get("is_safe", True):
            out.append((str(r["prompt"]), str(r["response"])))
    return out


def hub_task_data(task: str, source: str, n_train: int, n_queries: int, seed: int) -> tuple[list[tuple[str, str]], list[str]]:
    """Stage-1 SFT pairs and the held-out query prompts Q (disjoint prompts), shuffled by ``seed``."""
    pairs = task_pairs(task, load_rows(source))
    by_prompt: dict[str, str] = {}
    for p, r in pairs:
        by_prompt.setdefault(p, r)
    prompts = sorted(by_prompt)
    if len(prompts) < n_train + n_queries:
        raise ValueError(f"n_train + n_queries = {n_train + n_queries} is not allowed for {source!r}: it has only {len(prompts)} distinct prompts for task {task!r}.")
    order = np.random.default_rng(seed).permutation(len(prompts))
    queries = [prompts[i] for i in order[:n_queries]]
    train = [(prompts[i], by_prompt[prompts[i]]) for i in order[n_queries:n_queries + n_train]]
    return train, queries


