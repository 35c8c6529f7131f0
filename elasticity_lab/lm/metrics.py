"""What the experiments measure: behaviour scores, likelihood scores, KL to a base, bits per token.

Why these: the rule score (share of sampled responses with the aligned label) is what the paper
plots; the likelihood score P(aligned) / (P(aligned) + P(unaligned)) on held-out prompts measures the
same thing with far less variance; the token-averaged KL(p_base ‖ p_θ) over response tokens is our
estimator for the paper's Table 3 (the paper gives none); bits per token sets a model against the
world's exact entropy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from elasticity_lab.lm.presets import autocast_for, inference_threads

from elasticity_lab.lm.batching import IGNORE_INDEX, collate, encode_example, pad_id_of
from elasticity_lab.core.config import check_choice, check_positive

LN2 = math.log(2)


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
@inference_threads
def response_logprobs(model: Any, tokenizer: Any, prompts: Sequence[str], responses: Sequence[str], *, batch_size: int = 128) -> pd.DataFrame:
    """Per example: the log-probability (nats) of the response (with its end token) given the prompt, and its length."""
    if len(prompts) != len(responses):
        raise ValueError(f"prompts and responses must have the same length, got {len(prompts)} and {len(responses)}.")
    pad = pad_id_of(tokenizer)
    device = _device(model)
    was = model.training
    model.eval()
    logps, lengths = [], []
    for i in range(0, len(prompts), batch_size):
        enc = [encode_example(tokenizer, p, r) for p, r in zip(prompts[i:i + batch_size], responses[i:i + batch_size])]
        batch = {k: v.to(device) for k, v in collate(enc, pad).items()}
        with autocast_for(device):
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float()
        labels = batch["labels"][:, 1:]
        mask = labels != IGNORE_INDEX
        lp = torch.log_softmax(logits, dim=-1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        logps += (lp * mask).sum(1).tolist()
        lengths += mask.sum(1).tolist()
    model.train(was)
    return pd.DataFrame({"logp": logps, "tokens": lengths})


def encode_pairs(tokenizer: Any, pairs: Sequence[tuple[str, Any, Any]], *, batch_size: int = 128) -> dict[str, Any]:
    """Token batches of every (prompt, response) of likelihood ``pairs`` and, per sequence, its (pair index, side).

    Experiments that score the same pairs many times encode them once (tokenising took longer than
    the forward pass) and call :func:`likelihood_from_encoded`; :func:`likelihood_score` does both.
    """
    if not pairs:
        raise ValueError("pairs is not allowed to be empty.")
    pad = pad_id_of(tokenizer)
    seqs, owner = [], []
    for i, (prompt, aligned, unaligned) in enumerate(pairs):
        for side, group in ((0, aligned), (1, unaligned)):
            for r in ([group] if isinstance(group, str) else list(group)):
                seqs.append(encode_example(tokenizer, prompt, r))
                owner.append((i, side))
    return {"batches": [collate(seqs[i:i + batch_size], pad) for i in range(0, len(seqs), batch_size)],
            "owner": owner, "n_pairs": len(pairs)}


@torch.no_grad()
@inference_threads
def likelihood_from_encoded(model: Any, encoded: dict[str, Any]) -> float:
    """The likelihood score of pairs encoded by :func:`encode_pairs`."""
    return likelihood_and_mass(model, encoded)[0]


@torch.no_grad()
@inference_threads
def likelihood_and_mass(model: Any, encoded: dict[str, Any]) -> tuple[float, float]:
    """(likelihood score, mean probability mass P(aligned) + P(unaligned) that the score covers) of encoded pairs.

    The score is a ratio: a model that puts almost no probability on either side can still score 0.5 or
    1.0, so the mass says how much of the model's answers the score describes.
    """
    device = _device(model)
    was = model.training
    model.eval()
    lps: list[float] = []
    for batch in encoded["batches"]:
        b = {k: v.to(device) for k, v in batch.items()}
        with autocast_for(device):
            logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits[:, :-1].float()
        labels = b["labels"][:, 1:]
        mask = labels != IGNORE_INDEX
        lp = torch.log_softmax(logits, dim=-1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        lps += (lp * mask).sum(1).tolist()
    model.train(was)
    sides = np.full((encoded["n_pairs"], 2), -np.inf)
    for (i, side), value in zip(encoded["owner"], lps):
        sides[i, side] = np.logaddexp(sides[i, side], value)
    score = float(np.mean(1.0 / (1.0 + np.exp(sides[:, 1] - sides[:, 0]))))
    return score, float(np.mean(np.exp(np.logaddexp(sides[:, 0], sides[:, 1]))))


def likelihood_score(model: Any, tokenizer: Any, pairs: Sequence[tuple[str, Any, Any]]) -> float:
    """Mean over held-out prompts of P(aligned) / (P(aligned) + P(unaligned)): 1 = always aligned, 0 = never.

    ``pairs`` are (prompt, aligned, unaligned), each side one response or a tuple of responses whose
    probabilities are summed (``World.contrast_pairs`` lists every wording of a behaviour, so a model
    that has learnt the pre-training text exactly scores the base rate).
    """
    return likelihood_from_encoded(model, encode_pairs(tokenizer, pairs))


@torch.no_grad()
@inference_threads
def kl_over_batches(base: Any, model: Any, batches: Iterable[dict[str, torch.Tensor]]) -> float:
    """Token-averaged KL(p_base ‖ p_θ) in nats over the response positions of encoded batches.

    ``batches`` are :func:`elasticity_lab.lm.batching.collate` outputs; positions whose label is
    ``IGNORE_INDEX`` (prompt and padding) are left out. Experiments that score the same probe many
    times encode it once and call this directly; :func:`kl_to_base` encodes text first.
    """
    device = _device(model)
    total, count = 0.0, 0
    flags = (base.training, model.training)
    base.eval()
    model.eval()
    try:
        for batch in batches:
            b = {k: v.to(device) for k, v in batch.items()}
            with autocast_for(device):
                base_logits = base(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
                logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
            lq = torch.log_softmax(base_logits[:, :-1].float(), -1)
            lp = torch.log_softmax(logits[:, :-1].float(), -1)
            mask = b["labels"][:, 1:] != IGNORE_INDEX
            kl = (lq.exp() * (lq - lp)).sum(-1)
            total += float((kl * mask).sum())
            count += int(mask.sum())
    finally:
        base.train(flags[0])
        model.train(flags[1])
    return total / count


def kl_to_base(base: Any, model: Any, tokenizer: Any, prompts: Sequence[str], responses: Sequence[str], *, batch_size: int = 128) -> float:
    """Token-averaged KL(p_base ‖ p_θ) in nats over the response tokens of (prompt, response) pairs.

    At every response position (including the end token) both models' next-token distributions
    over the whole vocabulary are compared given the same context; the mean over all such positions
    is returned. This is the book's estimator for the paper's Table 3.
    """
    if len(prompts) != len(responses) or not prompts:
        raise ValueError("prompts and responses must be non-empty and of the same length.")
    pad = pad_id_of(tokenizer)
    batches = (
        collate([encode_example(tokenizer, p, r) for p, r in zip(prompts[i:i + batch_size], responses[i:i + batch_size])], pad)
        for i in range(0, len(prompts), batch_size)
    )
    return kl_over_batches(base, model, batches)


def bits_per_token(model: Any, blocks: torch.Tensor, *, batch_size: int = 64) -> float:
    """Mean next-token loss in bits over packed token blocks (to set against ``World.entropy_per_token``)."""
    from elasticity_lab.lm.pretraining import stream_loss

    return stream_loss(model, blocks, batch_size) / LN2


def behaviour_score(
    model: Any,
    tokenizer: Any,
    world: Any,
    task: str,
    *,
    n_prompts: int = 128,
    prompt_kind: str = "harmful",
    split: str = "heldout",
    temperature: float = 1.0,
    top_p: float = 1.0,
    greedy: bool = False,
    seed: int = 0,
) -> dict[str, float]:
    """Sample answers to held-out prompts and score them by the world's rule.

    Returns the aligned share (``score``), the share of each label, and the likelihood score.
    Temperature 1 (the default) measures the model's own behaviour distribution, which is what a
    base rate is.
    """
    from elasticity_lab.lm.generation import generate
    from elasticity_lab.microworld.world import TASKS

    check_choice("task", task, TASKS)
    check_positive("n_prompts", n_prompts)
    queries = world.prompts(task, n_prompts, split=split, prompt_kind=prompt_kind, seed=seed)
    prompts = [q.prompt for q in queries]
    answers = generate(model, tokenizer, prompts, temperature=temperature, top_p=top_p, greedy=greedy, seed=seed, max_new_tokens=16)
    labels = [world.classify(task, p, a) for p, a in zip(prompts, answers)]
    out: dict[str, float] = {"score": float(np.mean([lab == _aligned(task) for lab in labels]))}
    for lab in sorted(set(labels) | {"other"}):
        out[f"share_{lab}"] = float(np.mean([x == lab for x in labels]))
    out["likelihood_score"] = likelihood_score(model, tokenizer, world.contrast_pairs(task, n_prompts, split=split, prompt_kind=prompt_kind, seed=seed))
    return out


def _aligned(task: str) -> str:
    from elasticity_lab.microworld.world import ALIGNED_LABEL

    return ALIGNED_LABEL[task]


def behaviour_table(model: Any, tokenizer: Any, world: Any, *, tasks: Sequence[str] | None = None, n_prompts: int = 128, seed: int = 0) -> pd.DataFrame:
    """One row per task (safety split into harmful and benign requests): the model's rule and likelihood
    scores next to the pre-training base rate and the aligned data's rate (1.0, or 0.0 for benign refusal)."""
    from elasticity_lab.microworld.world import TASKS

    rows = []
    for task in tasks or TASKS:
        kinds = ("harmful", "benign") if task == "safety" else ("harmful",)
        for kind in kinds:
            s = behaviour_score(model, tokenizer, world, task, n_prompts=n_prompts, prompt_kind=kind, seed=seed)
            name = f"safety ({kind})" if task == "safety" else task
            rows.append({
                "task": name,
                "behaviour": "refusal" if task == "safety" else _aligned(task),
                "model_rate": s["score"],
                "likelihood_score": s["likelihood_score"],
                "other_rate": s.get("share_other", 0.0),
                "pretraining_rate": world.base_rate(task, kind),
                "aligned_data_rate": 0.0 if (task == "safety" and kind == "benign") else 1.0,
            })
    return pd.DataFrame(rows)


def answer_distribution(logits: torch.Tensor, *, temperature: float = 1.0, top_p: float = 1.0, greedy: bool = False) -> torch.Tensor:
    """Log-probabilities of the next-token distribution that :func:`elasticity_lab.lm.generation.generate`
    samples from, for ``logits`` of shape (..., vocab): temperature first, then the nucleus (top-p),
    as ``transformers`` applies them; ``greedy`` is a one-hot on the arg-max. Filtered tokens get -inf.

    Why: the SFT loss on a teacher's answers is, in expectation, the entropy of *this* distribution
    plus the student's KL to it; the entropy is the part no student can remove (the resistance
    chapter's entropy confound).
    """
    logits = logits.float()
    if greedy:
        out = torch.full_like(logits, -math.inf)
        return out.scatter(-1, logits.argmax(-1, keepdim=True), 0.0)
    check_positive("temperature", temperature)
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p={top_p!r} is not allowed; it must be in (0, 1].")
    scores = logits / temperature
    if top_p < 1.0:
        sorted_scores, order = torch.sort(scores, descending=False, dim=-1)
        remove_sorted = sorted_scores.softmax(-1).cumsum(-1) <= (1 - top_p)
        remove_sorted[..., -1:] = False
        remove = remove_sorted.scatter(-1, order, remove_sorted)
        scores = scores.masked_fill(remove, -math.inf)
    return torch.log_softmax(scores, dim=-1)


@torch.no_grad()
@inference_threads
def teacher_student_gap(
    teacher: Any,
    student: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    temperature: float = 1.0,
    top_p: float = 1.0,
    greedy: bool = False,
    batch_size: int = 128,
) -> dict[str, float]:
    """How far a student is from the process that wrote a teacher's answers, per response token (nats).

    At every response position (with the end token) of the (prompt, response) pairs, ``q`` is the
    teacher's next-token distribution as sampled (:func:`answer_distribution` with the same
    ``temperature``/``top_p``/``greedy``), ``p`` the student's. Token-averaged over all positions,
    like the SFT loss:

    - ``entropy``: H(q), the floor of the SFT loss on these answers (0 for greedy answers);
    - ``teacher_entropy``: the teacher's own entropy at temperature 1 (what the raw loss confounds);
    - ``cross_entropy``: E_q[-log p], the student's expected loss per token;
    - ``kl``: KL(q ‖ p) = cross_entropy − entropy, the part the student must close by training;
    - ``student_nll``: -log p of the tokens actually written (the loss of the first SFT step, in expectation).

    ``student=None`` computes only the teacher's entropies.
    """
    if len(prompts) != len(responses) or not prompts:
        raise ValueError("prompts and responses must be non-empty and of the same length.")
    pad = pad_id_of(tokenizer)
    device = _device(teacher)
    sums = dict.fromkeys(("entropy", "teacher_entropy", "cross_entropy", "kl", "student_nll"), 0.0)
    count = 0
    models = [m for m in (teacher, student) if m is not None]
    flags = [m.training for m in models]
    for m in models:
        m.eval()
    for i in range(0, len(prompts), batch_size):
        enc = [encode_example(tokenizer, p, r) for p, r in zip(prompts[i:i + batch_size], responses[i:i + batch_size])]
        batch = {k: v.to(device) for k, v in collate(enc, pad).items()}
        mask = batch["labels"][:, 1:] != IGNORE_INDEX
        logits_t = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float()
        lq = answer_distribution(logits_t, temperature=temperature, top_p=top_p, greedy=greedy)
        q = lq.exp()
        lt = torch.log_softmax(logits_t, -1)
        sums["entropy"] += float((-(torch.where(q > 0, q * lq, torch.zeros_like(q))).sum(-1) * mask).sum())
        sums["teacher_entropy"] += float((-(lt.exp() * lt).sum(-1) * mask).sum())
        if student is not None:
            lp = torch.log_softmax(student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float(), -1)
            ce = -(torch.where(q > 0, q * lp, torch.zeros_like(q))).sum(-1)
            kl = torch.where(q > 0, q * (lq - lp), torch.zeros_like(q)).sum(-1)
            nll = -lp.gather(-1, batch["labels"][:, 1:].clamp(min=0).unsqueeze(-1)).squeeze(-1)
            sums["cross_entropy"] += float((ce * mask).sum())
            sums["kl"] += float((kl * mask).sum())
            sums["student_nll"] += float((nll * mask).sum())
        count += int(mask.sum())
    for m, f in zip(models, flags):
        m.train(f)
    out = {k: v / count for k, v in sums.items()}
    if student is None:
        out = {k: out[k] for k in ("entropy", "teacher_entropy")}
    return out
