"""Reference solutions of every chapter's exercises, kept in one place. Each chapter adds its functions under a
``# Chapter N`` heading. An exercise that teaches a library function has that function as its solution.

Students never need this module: ``python -m elasticity_lab teach student`` writes notebooks without the
solution cells (see the teacher's guide); the chapters show a solution only in a hidden cell."""

from __future__ import annotations

# Chapter 1

import math

import numpy as np


def code_lengths(p: np.ndarray) -> np.ndarray:
    """Exercise 1.1: the ideal code length of each symbol, in bits."""
    return -np.log2(np.asarray(p, dtype=float))


def cross_entropy(p: np.ndarray, q: np.ndarray) -> float:
    """Exercise 1.2: expected bits to code data from p with a code built for q."""
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    support = p > 0
    if np.any(q[support] == 0):
        return math.inf
    return float(-(p[support] * np.log2(q[support])).sum())


def bits_per_token(tokens: list[int], model) -> float:
    """Exercise 1.3: the model's average -log2 p(token | prefix) over the sequence."""
    total = sum(-math.log2(model(tokens[:i])[t]) for i, t in enumerate(tokens))
    return total / len(tokens)


# Chapter 2


def joint_node_weights(weights: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Exercise 2.1: each data set's node weights pull with its size."""
    weights, sizes = np.asarray(weights, dtype=float), np.asarray(sizes, dtype=float)
    return (sizes[:, None] * weights).sum(axis=0) / sizes.sum()


def huffman_lengths(p: np.ndarray) -> np.ndarray:
    """Exercise 2.2: merge the two lightest subtrees until one is left; a symbol's length is how many
    merges its subtree took part in."""
    import heapq

    heap = [(float(w), [i]) for i, w in enumerate(p)]
    heapq.heapify(heap)
    lengths = np.zeros(len(heap), dtype=int)
    while len(heap) > 1:
        w1, s1 = heapq.heappop(heap)
        w2, s2 = heapq.heappop(heap)
        lengths[s1 + s2] += 1
        heapq.heappush(heap, (w1 + w2, s1 + s2))
    return lengths


# Chapter 3


def rate_slope(p_i: np.ndarray, p_p: np.ndarray, p_a: np.ndarray, p_t: np.ndarray, k: float, l: float) -> float:
    """Exercise 3.1: dq/dl = (P_t - q)/W, so d/dl H(P_i, q) = -(Σ P_i P_t / q - 1) / (W ln 2)."""
    w = k + 1 + l
    q = (k * p_p + p_a + l * p_t) / w
    return -(float(np.sum(p_i * p_t / q)) - 1.0) / (w * math.log(2))


def ratio_from_balance(k: float, l: float, dgamma_p: float, dgamma_t: float) -> float:
    """Exercise 3.2: dγ_a = -k dγ_p - l dγ_t, so -dγ_a/dγ_p = k + l dγ_t/dγ_p."""
    return k + l * dgamma_t / dgamma_p


# Chapter 4


def softest_spring(sizes: dict[str, float]) -> str:
    """Exercise 4.1: the smallest data set is the softest spring and stretches most."""
    return min(sizes, key=sizes.get)


def stretches(force: float, sizes: dict[str, float]) -> dict[str, float]:
    """Exercise 4.2: springs in series carry one force; each stretches by force / stiffness."""
    return {name: force / n for name, n in sizes.items()}


# Chapter 5


def response_labels(ids: list[int], assistant_id: int) -> list[int]:
    """Exercise 5.1: mask everything up to and including the assistant token; keep the response and its end."""
    cut = list(ids).index(assistant_id) + 1
    return [-100] * cut + list(ids[cut:])


def entropy_rate(p_type: list[float], h_doc: list[float], n_doc: list[float]) -> float:
    """Exercise 5.2: (H(type) + Σ p H_doc) / Σ p n_doc, converted from nats to bits."""
    p = np.asarray(p_type, dtype=float)
    h_type = -float(np.sum(p[p > 0] * np.log(p[p > 0])))
    return (h_type + float(p @ np.asarray(h_doc, dtype=float))) / float(p @ np.asarray(n_doc, dtype=float)) / math.log(2)


def token_kl(base_logits: np.ndarray, logits: np.ndarray, mask: np.ndarray) -> float:
    """Exercise 5.3: KL(p_base ‖ p_θ) at each position from log-softmax, averaged where mask is True."""

    def log_softmax(z: np.ndarray) -> np.ndarray:
        z = z - z.max(-1, keepdims=True)
        return z - np.log(np.exp(z).sum(-1, keepdims=True))

    lb, lt = log_softmax(np.asarray(base_logits, float)), log_softmax(np.asarray(logits, float))
    kl = (np.exp(lb) * (lb - lt)).sum(-1)
    return float(kl[np.asarray(mask, bool)].mean())


def beats_control(base_rate: float, control_rate: float, pretraining_rate: float, n_prompts: int) -> bool:
    """Exercise 5.4: the base is closer to the pre-training rate than the control, by more than two
    standard errors of a rate measured on ``n_prompts`` prompts."""
    noise = 2 * math.sqrt(pretraining_rate * (1 - pretraining_rate) / n_prompts)
    return abs(control_rate - pretraining_rate) - abs(base_rate - pretraining_rate) > noise


# Chapter 6


def sign_test_p(differences: list[float]) -> float:
    """Exercise 6.1: drop ties, count the seeds with inverse < forward, two-sided binomial test at 1/2."""
    from scipy import stats

    d = np.asarray(differences, dtype=float)
    lower, higher = int((d < 0).sum()), int((d > 0).sum())
    return float(stats.binomtest(lower, lower + higher, 0.5).pvalue)


def answer_entropy(logits: np.ndarray, temperature: float, top_p: float) -> float:
    """Exercise 6.2: divide by the temperature, keep the most likely tokens up to mass top_p, renormalise, H in nats."""
    z = np.asarray(logits, dtype=float) / temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    order = np.argsort(p)  # ascending, as transformers' top-p filter
    remove = np.cumsum(p[order]) <= 1 - top_p
    remove[-1] = False
    keep = np.ones_like(p, dtype=bool)
    keep[order[remove]] = False
    q = np.where(keep, p, 0.0)
    q /= q.sum()
    q = q[q > 0]
    return float(-(q * np.log(q)).sum())


def fraction_inverse_lower(table: pd.DataFrame) -> float:
    """Exercise 6.3: mean loss per cell and direction, then the share of cells where inverse < forward."""
    means = table.groupby(["task", "pair", "direction"])["loss"].mean().unstack("direction")
    return float((means["inverse"] < means["forward"]).mean())


def fraction_floor_lower(table: pd.DataFrame) -> float:
    """Exercise 6.4: exercise 6.3's count on the answers' own entropy (the loss's floor) instead of the loss."""
    means = table.groupby(["task", "pair", "direction"])["answer_entropy"].mean().unstack("direction")
    return float((means["inverse"] < means["forward"]).mean())


# Chapter 7


# Exercises 7.1 and 7.2 teach the library's own functions: their solutions are those functions (see _LIBRARY).


def attractor_slope(base_rates: list[float], settled: list[float]) -> float:
    """Exercise 7.3: the least-squares slope cov(x, y) / var(x) of settling levels on base rates."""
    x, y = np.asarray(base_rates, float), np.asarray(settled, float)
    return float(((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum())


def never_moved_slope(levels: pd.DataFrame) -> float:
    """Exercise 7.4: where stage 1 left the pre-trained bases (`start`), regressed on their base rates."""
    pre = levels[levels["base_kind"] == "pretrained"]
    return float(np.polyfit(pre["base_rate"].astype(float), pre["start"].astype(float), 1)[0])


# Chapter 8


def rank_trend(x: list[float], y: list[float]) -> float:
    """Exercise 8.1: Spearman's rho = Pearson's correlation of the ranks (ties share their average rank)."""
    import pandas as pd

    rx, ry = pd.Series(x, dtype=float).rank(), pd.Series(y, dtype=float).rank()
    return float(np.corrcoef(rx, ry)[0, 1])


def scale_verdict(finding: str, controls: list[str]) -> str:
    """Exercise 8.2: the rule of :func:`elasticity_lab.experiments.stats.survives`, written out."""
    if finding != "shows":
        return finding
    counted = [c for c in controls if c != "not run"]
    if not counted:
        return "undecided"
    return "survives" if all(c != "shows" for c in counted) else "does not survive"


def control_trends() -> tuple[float, float]:
    """Exercise 8.2, part 2: the pre-trained bases' measures fall along the axis (a negative slope) and the controls'
    fall just as fast, so the trend shows on both and does not survive."""
    return (-1.0, -1.0)


# Chapter 9


# Exercises 9.1 and 9.3 teach the library's own functions: their solutions are those functions (see _LIBRARY).


def protection_verdict(low: float, high: float, margin: float) -> str:
    """Exercise 9.2: above 0 → sticks; below 0, or inside ±margin → does not; otherwise undecided."""
    if low > 0:
        return "makes alignment stick"
    if high < 0 or (margin > 0 and low >= -margin and high <= margin):
        return "does not make alignment stick"
    return "undecided"


def area_over_start(n: list[float], y: list[float]) -> float:
    """Exercise 9.4: the area under the curve (exercise 9.1) divided by the curve's start; nan where the start is at
    most MIN_START (0.05), where the ratio would be noise: the library's ``kept_share`` of its ``area_under_curve``."""
    from elasticity_lab.experiments.mitigation.analysis import area_under_curve, kept_share

    start = float(np.asarray(y, dtype=float)[np.argsort(np.asarray(n, dtype=float))][0])
    return kept_share(area_under_curve(n, y), start)


# Chapter 10


# Exercise 10.1 teaches the library's own function: its solution is that function (see _LIBRARY).


def pythia_tokens(revision: str) -> float:
    """Exercise 10.2: ``"stepN"`` → N steps × 1024 sequences × 2048 tokens."""
    return float(int(revision.removeprefix("step")) * 1024 * 2048)


def saturated(start: float, after: float, resolution: float) -> bool:
    """Exercise 10.3: both scores within ``resolution`` of the same bound, 0 or 1."""
    return any(abs(start - bound) < resolution and abs(after - bound) < resolution for bound in (0.0, 1.0))


# Solutions that are library functions, imported on first use: importing them here at once would pull torch and
# transformers (seconds) into the theory chapters 1-4, which need neither.
_LIBRARY: dict[str, tuple[str, str]] = {
    "kl_threshold": ("elasticity_lab.experiments.rebound.analysis", "kl_threshold_n"),  # exercise 7.2
    "n_to_halfway": ("elasticity_lab.experiments.rebound.analysis", "n_to_halfway"),  # exercise 7.1
    "dpo_loss": ("elasticity_lab.lm.preference", "dpo_loss"),  # exercise 8.3
    "area_under_curve": ("elasticity_lab.experiments.mitigation.analysis", "area_under_curve"),  # exercise 9.1
    "alignment_needed": ("elasticity_lab.experiments.mitigation.analysis", "needed_for"),  # exercise 9.3
    "early_drop": ("elasticity_lab.experiments.realmodels.verdicts", "early_drop"),  # exercise 10.1
}


def __getattr__(name: str):
    """``solutions.<name>`` for the solutions in :data:`_LIBRARY` (PEP 562)."""
    if name not in _LIBRARY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module, attribute = _LIBRARY[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LIBRARY))
