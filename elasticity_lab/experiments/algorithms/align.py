"""Stage 1 of the rebound protocol with any of five alignment algorithms, on a micro-world task.

``n_examples`` means the same *information* for every algorithm: SFT sees the ``n`` aligned answers of
the rebound's stage-1 data; DPO and SimPO see those answers each against an unaligned answer to the
same prompt; KTO sees the ``n`` aligned answers as desirable plus ``n`` unaligned answers to *other*
prompts as undesirable; RLOO sees the ``n`` prompts alone and answers them itself, rewarded by the
world's exact judge. Steps differ (an RLOO step costs k samples per prompt), which is why
:class:`AlignResult` reports the aligned score and the KL to the base reached, so algorithms can be
compared at matched alignment and not only at matched data.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd

from elasticity_lab.core.config import check_choice, check_positive

ALGORITHMS: tuple[str, ...] = ("sft", "dpo", "kto", "simpo", "rloo")


def default_align_config(algorithm: str, **overrides: Any) -> Any:
    """The config of an algorithm with the rebound's stage-1 defaults (batch 16, one epoch, seed 0)."""
    from elasticity_lab.lm.preference import PreferenceConfig
    from elasticity_lab.lm.rl import RLConfig
    from elasticity_lab.lm.training import SFTConfig

    check_choice("algorithm", algorithm, ALGORITHMS)
    if algorithm == "sft":
        return SFTConfig(**{"batch_size": 16, **overrides})
    if algorithm == "rloo":
        return RLConfig(**{"batch_size": 8, **overrides})
    return PreferenceConfig(**{"algorithm": algorithm, "batch_size": 16, **overrides})


@dataclass
class AlignResult:
    """The aligned model, its training curve, and (when ``evaluate=True``) the held-out scores and the KL to the base."""

    model: Any
    algorithm: str
    curve: pd.DataFrame
    steps: int
    seconds: float
    scores: dict[str, float] = dataclasses.field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """One table row: algorithm, steps, seconds, rule, likelihood, kl."""
        return {"algorithm": self.algorithm, "steps": self.steps, "seconds": self.seconds, **self.scores}


def align(model: Any, tokenizer: Any, algorithm: str, task: Any, n_examples: int, config: Any | None = None, *,
          seed: int = 0, ref_model: Any | None = None, evaluate: bool = True, n_prompts: int = 64, n_kl: int = 64,
          progress: bool = False) -> AlignResult:
    """Align ``model`` on ``task`` (a :class:`~elasticity_lab.experiments.rebound.MicroTask`) with ``algorithm``.

    ``config`` is the algorithm's own config (:class:`~elasticity_lab.lm.training.SFTConfig`,
    :class:`~elasticity_lab.lm.preference.PreferenceConfig` or :class:`~elasticity_lab.lm.rl.RLConfig`),
    default :func:`default_align_config`; its ``seed`` is replaced by ``seed``, which also picks the
    data (the rebound's seed streams). With ``evaluate`` the result carries the rule score, the
    likelihood score and KL(p_base ‖ p_θ) on the task's held-out probe (as in chapter 7).
    """
    from elasticity_lab.lm.preference import PreferenceConfig, preference_train
    from elasticity_lab.lm.rl import RLConfig, rl_train
    from elasticity_lab.microworld import preferences as prefs
    from elasticity_lab.lm.training import SFTConfig, sft

    check_choice("algorithm", algorithm, ALGORITHMS)
    check_positive("n_examples", n_examples)
    if not (hasattr(task, "world") and hasattr(task, "task")) or task.world is None:
        raise ValueError(f"task={task!r} is not allowed; pass a micro-world task (experiments.rebound.MicroTask).")
    expected = {"sft": SFTConfig, "rloo": RLConfig}.get(algorithm, PreferenceConfig)
    config = default_align_config(algorithm) if config is None else config
    if type(config) is not expected:
        raise ValueError(f"config is a {type(config).__name__}; algorithm={algorithm!r} needs a {expected.__name__}.")
    if isinstance(config, PreferenceConfig) and config.algorithm != algorithm:
        raise ValueError(f"config.algorithm={config.algorithm!r} does not match algorithm={algorithm!r}.")
    config = dataclasses.replace(config, seed=seed)
    world, name = task.world, task.task
    start = time.perf_counter()
    if algorithm == "sft":
        if ref_model is not None:
            raise ValueError("ref_model is not allowed for algorithm='sft'; SFT has no reference model.")
        result: Any = sft(model, tokenizer, task.data("aligned", n_examples, seed), config, progress=progress)
    elif algorithm == "rloo":
        result = rl_train(model, tokenizer, prefs.rl_prompts(world, name, n_examples, seed=seed), prefs.judge_reward(world, name),
                          config, ref_model=ref_model, progress=progress)
    else:
        pairs = prefs.preference_pairs(world, name, n_examples, seed=seed)
        data: Any = pairs
        if algorithm == "kto":
            bad = prefs.unpaired_examples(world, name, 2 * n_examples, seed=seed, desirable_share=0.5)
            data = prefs.unpair(pairs)[0::2] + [e for e in bad if not e.desirable]
            import numpy as np

            order = np.random.default_rng(seed).permutation(len(data))
            data = [data[i] for i in order]
        result = preference_train(model, tokenizer, data, config, ref_model=ref_model, progress=progress)
    seconds = time.perf_counter() - start
    out = AlignResult(result.model, algorithm, result.curve, len(result.curve), seconds)
    if evaluate:
        from elasticity_lab.experiments.rebound import evaluate as score

        out.scores = score(result.model, tokenizer, task, task.probe(n_prompts, n_kl), model, seed=seed)
    return out
