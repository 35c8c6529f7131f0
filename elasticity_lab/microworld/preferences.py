"""Preference, unpaired and reward data for alignment algorithms other than SFT, from the micro-world.

Why the micro-world makes this easy: the paper needs human preference pairs (PKU-SafeRLHF) for DPO,
KTO and SimPO, and a learned reward or cost model for PPO. Here every prompt has a known aligned
and a known unaligned way to answer, so

- a **preference pair** is (prompt, an aligned response, an unaligned response to the same prompt)
  (DPO, SimPO);
- an **unpaired example** is (prompt, response, desirable?), aligned responses desirable and unaligned
  ones undesirable, on *different* prompts, which is the data KTO was designed for;
- the **reward** of an on-policy method is the world's exact judge (:meth:`World.classify`): 1 when a
  sampled response has the aligned label, 0 otherwise. No reward model is learned, so no reward
  hacking of a learned model and no reward-model error enter the comparison of algorithms.

The chosen responses of :func:`preference_pairs` are exactly the stage-1 SFT data of the rebound
protocol for the same ``seed`` (same seed stream as ``MicroTask.data("aligned", n, seed)``), so an
algorithm comparison at equal ``n`` shows each algorithm the same aligned answers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from elasticity_lab.core.config import check_choice, check_positive
from elasticity_lab.microworld.world import ALIGNED_LABEL, TASKS, World

ALIGNED_STREAM, UNALIGNED_STREAM = 11, 12
"""Seed streams of the rebound protocol's positive and negative data (``MicroTask.data``)."""


@dataclass(frozen=True)
class PreferencePair:
    """One prompt with a preferred (aligned) and a dispreferred (unaligned) response."""

    prompt: str
    chosen: str
    rejected: str


@dataclass(frozen=True)
class LabelledExample:
    """One prompt/response with a binary judgement, the unpaired data of KTO."""

    prompt: str
    response: str
    desirable: bool


def _check_kind(task: str, prompt_kind: str) -> None:
    check_choice("task", task, TASKS)
    check_choice("prompt_kind", prompt_kind, ("harmful", "benign", "mixed"))
    if task == "safety" and prompt_kind != "harmful":
        raise ValueError(f"prompt_kind={prompt_kind!r} is not allowed for preferences on safety; use 'harmful' "
                         f"(a benign request is answered the same way by aligned and unaligned models, so it has no preference).")


def preference_pairs(world: World, task: str, n: int, *, seed: int = 0, split: str = "train",
                     prompt_kind: str = "harmful") -> list[PreferencePair]:
    """``n`` pairs: the aligned responses of the rebound's stage-1 data, each against an unaligned one.

    The rejected response is one wording of the unaligned behaviour for the *same* prompt (for
    safety: compliance with one of the tools; for sentiment: one of the negative words), drawn with
    a generator seeded by ``seed``.
    """
    _check_kind(task, prompt_kind)
    check_positive("n", n)
    examples = world.dataset(task, n, behaviour="aligned", split=split, prompt_kind=prompt_kind,
                             seed=1000 * ALIGNED_STREAM + seed)
    rng = np.random.default_rng([world.config.seed, 3000 + TASKS.index(task), seed])
    pairs = []
    for e in examples:
        options = world.responses_of(task, e.meta, False)
        pairs.append(PreferencePair(e.prompt, e.response, options[int(rng.integers(len(options)))]))
    return pairs


def unpaired_examples(world: World, task: str, n: int, *, seed: int = 0, desirable_share: float = 0.5,
                      split: str = "train", prompt_kind: str = "harmful") -> list[LabelledExample]:
    """``n`` KTO examples: ``round(desirable_share·n)`` aligned (desirable), the rest unaligned, shuffled.

    The desirable ones are the first examples of the stage-1 SFT data; the undesirable ones come from
    the rebound's negative stream, i.e. other prompts: the data are genuinely unpaired.
    """
    _check_kind(task, prompt_kind)
    check_positive("n", n)
    if not 0.0 < desirable_share < 1.0:
        raise ValueError(f"desirable_share={desirable_share!r} is not allowed; it must be in (0, 1) (KTO needs both kinds).")
    n_good = min(max(1, round(desirable_share * n)), n - 1) if n > 1 else 1
    good = world.dataset(task, n_good, behaviour="aligned", split=split, prompt_kind=prompt_kind,
                         seed=1000 * ALIGNED_STREAM + seed)
    bad = world.dataset(task, n - n_good, behaviour="unaligned", split=split, prompt_kind=prompt_kind,
                        seed=1000 * UNALIGNED_STREAM + seed) if n > n_good else []
    out = [LabelledExample(e.prompt, e.response, True) for e in good] + [LabelledExample(e.prompt, e.response, False) for e in bad]
    order = np.random.default_rng([world.config.seed, 4000 + TASKS.index(task), seed]).permutation(len(out))
    return [out[i] for i in order]


def unpair(pairs: Sequence[PreferencePair]) -> list[LabelledExample]:
    """Preference pairs as KTO data: each pair gives one desirable and one undesirable example."""
    out: list[LabelledExample] = []
    for p in pairs:
        out += [LabelledExample(p.prompt, p.chosen, True), LabelledExample(p.prompt, p.rejected, False)]
    return out


def rl_prompts(world: World, task: str, n: int, *, seed: int = 0, split: str = "train",
               prompt_kind: str = "harmful") -> list[str]:
    """The prompts of the stage-1 data without their answers: what an on-policy method answers itself."""
    return [p.prompt for p in preference_pairs(world, task, n, seed=seed, split=split, prompt_kind=prompt_kind)]


def judge_reward(world: World, task: str) -> Callable[[Sequence[str], Sequence[str]], np.ndarray]:
    """The exact judge as a reward: 1.0 for a response with the aligned label, 0.0 otherwise (``other`` too)."""
    check_choice("task", task, TASKS)
    target = ALIGNED_LABEL[task]

    def reward(prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        if len(prompts) != len(responses):
            raise ValueError(f"prompts and responses must have the same length, got {len(prompts)} and {len(responses)}.")
        return np.array([float(world.classify(task, p, r) == target) for p, r in zip(prompts, responses)])

    reward.__name__ = f"judge_{task}"
    return reward
