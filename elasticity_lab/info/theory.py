"""Theorem 4.2 (elasticity) on an exact model, and the series-spring picture computed from it.

Setting. Three data sets are distributions over the ``M = V^d`` leaves of a pruned token tree (every
response has ``d`` tokens from a vocabulary of ``V``; leaves in lexicographic order): pre-training
``P_p``, alignment ``P_a`` and perturbation ``P_t``, of sizes ``|D_p| = k·|D_a|``, ``|D_a|`` and
``|D_t| = l·|D_a|``. Only the ratios matter, so ``|D_a| = 1`` throughout.

The model. A model that can represent the tree to depth ``d`` and is trained to the optimum on the
union codes it with the size-weighted mixture ``q = (k P_p + P_a + l P_t) / (k + 1 + l)`` (the joint
weights of the paper). A shallower model of depth ``d' < d`` sees only the top ``d'`` levels: it
learns the mixture of the depth-``d'`` prefix marginals and spreads each prefix's mass uniformly over
the tokens below it (it cannot tell them apart).

Rates. The compression rate of ``D_i`` is its ideal code length under the model per token,
``γ_i = H(P_i, q)/d`` (bits); the normalized rate subtracts the uniform code's ``log2 M / d``, so it
is the paper's ``γ - log M`` with both terms per token. Constants do not change derivatives in ``l``.

Why the slope ratio is exactly ``k`` at ``l = 0``: the optimum of the total code length
``Σ_i w_i H(P_i, q)`` satisfies ``Σ_i w_i ∂H(P_i, q)/∂q = 0`` for every ``l`` (first-order condition),
so along the path of optima ``k·dγ_p/dl + dγ_a/dl + l·dγ_t/dl = 0``. At ``l = 0`` the last term
vanishes and ``-(dγ_a/dl)/(dγ_p/dl) = k`` exactly; at ``l > 0`` it bends by ``l·dγ_t/dl`` (see
:func:`force_balance`). Since ``H(P_i, q) = H(P_i) + KL(P_i‖q)`` the same holds for the KL slopes.
Nothing here needs the Pareto assumption; it holds for any model trained exactly to its optimum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from elasticity_lab.core.config import check_choice, check_positive, check_range
from elasticity_lab.info.measures import check_distribution, kl_divergence

NAMES: tuple[str, str, str] = ("p", "a", "t")
"""Pre-training, alignment, perturbation."""

SUPPORTS: tuple[str, ...] = ("overlap", "disjoint")
PERTURBATIONS: tuple[str, ...] = ("random", "like_pretraining")
"""What ``P_t`` looks like: drawn independently of the others, or equal to ``P_p`` (a perturbation drawn
like the pre-training data)."""
KL_DIRECTIONS: tuple[str, ...] = ("data||model", "model||data")

__all__ = [
    "LeafModel",
    "random_leaf_distributions",
    "toward_pretraining",
    "check_distribution",
    "mixture",
    "normalized_rates",
    "rate_derivatives",
    "rate_shifts",
    "kl_shifts",
    "slope_ratio",
    "force_balance",
    "kl_bits",
    "kl_divergences",
    "kl_derivatives",
    "spring_state",
    "slope_ratio_vs_k",
    "absolute_slopes_vs_k",
    "alignment_gap_closed",
    "loglog_slope",
    "theorem_summary",
]


# ----------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------


MAX_SIZE_RATIO = 1e12
"""The largest k or l accepted: beyond it the slopes overflow double precision (k = 1e200 gave inf)."""


def _check_kl(k: float, l: float) -> None:
    check_range("k", k, 0, MAX_SIZE_RATIO, lo_open=True, why="|D_p| / |D_a|; larger overflows the slopes")
    check_range("l", l, 0, MAX_SIZE_RATIO, why="|D_t| / |D_a|; larger overflows the slopes")


def _check_depth(name: str, depth: int, *, upper: int | None = None) -> int:
    if isinstance(depth, bool) or int(depth) != depth:
        raise ValueError(f"{name}={depth!r} is not allowed; it must be an integer >= 1.")
    if depth < 1 or (upper is not None and depth > upper):
        bound = f"in 1..{upper}" if upper is not None else ">= 1"
        raise ValueError(f"{name}={depth!r} is not allowed; it must be {bound}.")
    return int(depth)


# ----------------------------------------------------------------------------------------------
# The three distributions
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeafModel:
    """``P_p``, ``P_a``, ``P_t`` over the ``vocab_size**depth`` leaves of a full pruned tree."""

    p: np.ndarray
    a: np.ndarray
    t: np.ndarray
    vocab_size: int = 2
    depth: int = 8

    def __post_init__(self) -> None:
        _check_depth("depth", self.depth)
        check_positive("vocab_size", self.vocab_size)
        m = self.vocab_size**self.depth
        for name in NAMES:
            arr = check_distribution(f"P_{name}", getattr(self, name), atol=1e-8)
            if arr.size != m:
                raise ValueError(f"P_{name} has {arr.size} leaves; vocab_size**depth = {m}.")
            object.__setattr__(self, name, arr)

    @property
    def n_leaves(self) -> int:
        return int(self.vocab_size**self.depth)

    def dist(self, name: str) -> np.ndarray:
        return getattr(self, check_choice("name", name, NAMES))

    def marginal(self, name: str, model_depth: int) -> np.ndarray:
        """The distribution of the first ``model_depth`` tokens (the top levels a shallow model sees)."""
        d = _check_depth("model_depth", model_depth, upper=self.depth)
        p = self.dist(name)
        return p.reshape(self.vocab_size**d, -1).sum(axis=1)


def _pareto_masses(rng: np.random.Generator, m: int, alpha: float) -> np.ndarray:
    x = rng.pareto(alpha, size=m) + 1.0
    return x / x.sum()


def random_leaf_distributions(
    depth: int = 8,
    *,
    vocab_size: int = 2,
    seed: int = 0,
    alpha: float = 1.5,
    supports: str = "overlap",
    perturbation: str = "random",
) -> LeafModel:
    """Three independent leaf distributions whose masses follow a Pareto law (the paper's assumption
    A.7), each randomly permuted over the leaves.

    ``supports="disjoint"`` puts ``P_a`` and ``P_t`` on disjoint halves of the leaves (a perturbation
    that shares no response with the alignment data); ``P_p`` always covers every leaf, as a
    pre-training corpus does.

    ``perturbation="like_pretraining"`` sets ``P_t = P_p`` (a perturbation drawn like the
    pre-training data); ``P_p`` and ``P_a`` are the same as with ``"random"`` for the same
    seed, so the two cases differ only in ``P_t``. See :func:`toward_pretraining` for the cases between.
    """
    _check_depth("depth", depth)
    check_positive("alpha", alpha)
    check_choice("supports", supports, SUPPORTS)
    check_choice("perturbation", perturbation, PERTURBATIONS)
    if perturbation == "like_pretraining" and supports == "disjoint":
        raise ValueError("perturbation='like_pretraining' sets P_t = P_p, which covers every leaf; it cannot be "
                         "combined with supports='disjoint'. Use supports='overlap'.")
    m = int(vocab_size) ** int(depth)
    if m > 2**22:
        raise ValueError(f"vocab_size**depth = {m} leaves is too many for the exact model (max 2**22).")
    rng = np.random.default_rng(seed)
    p = _pareto_masses(rng, m, alpha)[rng.permutation(m)]
    if supports == "overlap":
        a = _pareto_masses(rng, m, alpha)[rng.permutation(m)]
        t = _pareto_masses(rng, m, alpha)[rng.permutation(m)]
    else:
        if m < 2:
            raise ValueError("supports='disjoint' needs at least 2 leaves.")
        perm = rng.permutation(m)
        half = m // 2
        a, t = np.zeros(m), np.zeros(m)
        a[perm[:half]] = _pareto_masses(rng, half, alpha)
        t[perm[half:]] = _pareto_masses(rng, m - half, alpha)
    model = LeafModel(p=p, a=a, t=t, vocab_size=int(vocab_size), depth=int(depth))
    return toward_pretraining(model, 1.0) if perturbation == "like_pretraining" else model


def toward_pretraining(model: LeafModel, weight: float) -> LeafModel:
    """The same model with the perturbation mixed toward the pre-training data:
    ``P_t ← (1 − weight)·P_t + weight·P_p``. ``weight=0`` keeps ``P_t``, ``weight=1`` gives ``P_t = P_p``.

    With ``P_t = P_p`` the perturbation only adds to the pre-training size, the first-order condition
    reads ``(k + l)·dγ_p/dl + dγ_a/dl = 0``, and ``dγ_p/dl ≤ 0 ≤ dγ_a/dl`` for every draw
    (Cauchy–Schwarz: ``Σ P_p²/q ≥ (Σ P_p)²/Σ q = 1``); the slope ratio is exactly ``k + l``.
    """
    w = float(weight)
    if not (math.isfinite(w) and 0.0 <= w <= 1.0):
        raise ValueError(f"weight={weight!r} is not allowed; it must be in [0, 1] "
                         f"(0 keeps P_t, 1 makes P_t = P_p).")
    t = model.p.copy() if w == 1.0 else (1.0 - w) * model.t + w * model.p
    return LeafModel(p=model.p, a=model.a, t=t, vocab_size=model.vocab_size, depth=model.depth)


# ----------------------------------------------------------------------------------------------
# Rates and their derivatives
# ----------------------------------------------------------------------------------------------


def _parts(model: LeafModel, model_depth: int | None) -> tuple[dict[str, np.ndarray], int]:
    d = model.depth if model_depth is None else _check_depth("model_depth", model_depth, upper=model.depth)
    return {n: model.marginal(n, d) for n in NAMES}, d


def mixture(model: LeafModel, k: float, l: float, model_depth: int | None = None) -> np.ndarray:
    """The optimal model on the union: ``(k P_p + P_a + l P_t)/(k+1+l)`` over the depth-``d'`` prefixes."""
    _check_kl(k, l)
    parts, _ = _parts(model, model_depth)
    return (k * parts["p"] + parts["a"] + l * parts["t"]) / (k + 1.0 + l)


def _xent_bits(p: np.ndarray, q: np.ndarray) -> float:
    mask = p > 0
    return float(-(p[mask] * np.log2(q[mask])).sum())


def normalized_rates(model: LeafModel, k: float, l: float, model_depth: int | None = None) -> dict[str, float]:
    """γ^{D_i/D} for i in p, a, t: bits per token above (below, if negative) the uniform code.

    For a shallow model the ``d - d'`` unseen tokens cost ``log2 V`` each, exactly what the uniform
    code pays, so they cancel in the normalized rate: ``γ_i = (H(P_i', q') - d' log2 V) / d``.
    """
    parts, d = _parts(model, model_depth)
    q = mixture(model, k, l, d)
    base = d * math.log2(model.vocab_size)
    return {n: (_xent_bits(parts[n], q) - base) / model.depth for n in NAMES}


def rate_shifts(model: LeafModel, k: float, l: float, model_depth: int | None = None) -> dict[str, float]:
    """γ_i(l) − γ_i(0) for i in p, a, t, computed without cancellation.

    Subtracting two rates loses the digits that matter: at k = 10^5 and l = 10^-5 the pre-training
    rate moves by ~1e-16 bits, at the rounding level of γ itself. Here the shift is summed directly:
    with N = k P_p + P_a and W = k + 1, ``q_l/q_0 = (1 + l P_t/N) / (1 + l/W)``, so
    ``Δγ_i = -(1/d) Σ P_i [log1p(l P_t/N) - log1p(l/W)] / ln 2``.
    """
    _check_kl(k, l)
    parts, _ = _parts(model, model_depth)
    n0 = k * parts["p"] + parts["a"]
    w0 = k + 1.0
    ratio = np.divide(l * parts["t"], n0, out=np.zeros_like(n0), where=n0 > 0)
    log_change = np.log1p(ratio) - math.log1p(l / w0)
    out = {}
    for n in NAMES:
        mask = parts[n] > 0
        out[n] = -float(np.dot(parts[n][mask], log_change[mask])) / (math.log(2) * model.depth)
    return out


def rate_derivatives(model: LeafModel, k: float, l: float, model_depth: int | None = None) -> dict[str, float]:
    """dγ_i/dl, analytically: with W = k+1+l, dq/dl = (P_t - q)/W, so

    dγ_i/dl = -(1 / (d ln 2 · W)) · (Σ_x P_i(x) P_t(x) / q(x) - 1).

    The bracket is summed as ``Σ_x P_t(x) (P_i(x) − q(x)) / q(x)`` with ``P_i − q = Σ_j w_j (P_i − P_j) / W``
    (sizes ``w = (k, 1, l)``): no ``… − 1`` at the end, which at ``k = 10^5`` would leave only a few
    correct digits of the pre-training slope.
    """
    parts, d = _parts(model, model_depth)
    _check_kl(k, l)
    q = mixture(model, k, l, d)
    w = k + 1.0 + l
    sizes = {"p": k, "a": 1.0, "t": l}
    pt_over_q = np.divide(parts["t"], q, out=np.zeros_like(q), where=q > 0)
    out = {}
    for n in NAMES:
        gap = sum(sizes[j] * (parts[n] - parts[j]) for j in NAMES if j != n) / w  # P_n − q
        out[n] = -float(np.dot(pt_over_q, gap)) / (model.depth * math.log(2) * w)
    return out


def slope_ratio(model: LeafModel, k: float, l: float, model_depth: int | None = None) -> float:
    """-(dγ_a/dl)/(dγ_p/dl): how many times faster the alignment rate moves than the pre-training rate."""
    der = rate_derivatives(model, k, l, model_depth)
    return -der["a"] / der["p"] if der["p"] != 0 else math.copysign(math.inf, -der["a"])


def force_balance(model: LeafModel, k: float, l: float, model_depth: int | None = None) -> dict[str, float]:
    """The three size-weighted slopes ``k·dγ_p/dl``, ``dγ_a/dl``, ``l·dγ_t/dl`` and their sum.

    The sum is 0 up to rounding for every ``l`` (first-order optimality). Hence
    ``slope_ratio = k + l·(dγ_t/dl)/(dγ_p/dl)``: exactly ``k`` at ``l=0``, bent by the third term after.
    """
    der = rate_derivatives(model, k, l, model_depth)
    terms = {"p": k * der["p"], "a": der["a"], "t": l * der["t"]}
    scale = max(abs(v) for v in terms.values()) or 1.0
    return {**terms, "sum": sum(terms.values()), "relative_residual": abs(sum(terms.values())) / scale}


def slope_ratio_vs_k(model: LeafModel, ks: Sequence[float] | np.ndarray, l: float,
                     model_depth: int | None = None) -> np.ndarray:
    """The slope ratio at each ``k`` (same ``l``), for the log-log plot of ratio against ``k``."""
    return np.array([slope_ratio(model, float(k), l, model_depth) for k in ks])


def absolute_slopes_vs_k(model: LeafModel, ks: Sequence[float] | np.ndarray, l: float = 0.0,
                         model_depth: int | None = None) -> dict[str, dict[str, np.ndarray]]:
    """|dγ_a/dl| and |dγ_p/dl| at each ``k`` (same ``l``), for two perturbations of the same ``P_p``, ``P_a``.

    ``out["random"]`` uses ``model``'s ``P_t`` as drawn, ``out["like_pretraining"]`` sets ``P_t = P_p``
    (:func:`toward_pretraining` with weight 1); each holds ``"a"`` and ``"p"``, arrays over ``ks``.

    The ratio of the two slopes is ``k`` (at ``l = 0``), but the slopes themselves shrink as ``k`` grows,
    because the trained model is ``q_0 = P_p + (P_a − P_p)/(k + 1)``: the alignment data move it by only
    ``1/(k + 1)``. With ``W = k + 1``, ``dγ_a/dl ∝ (1/W)·(Σ P_a P_t/q_0 − 1)``. For a random ``P_t`` the
    bracket tends to ``Σ P_a P_t/P_p − 1 ≠ 0``, so ``|dγ_a/dl| ∝ 1/k``; for ``P_t = P_p`` it is
    ``Σ P_a P_p/q_0 − 1 = O(1/k)``, so ``|dγ_a/dl| ∝ 1/k²``, and ``|dγ_p/dl|`` is ``k`` times smaller still.
    """
    _check_kl(1.0, l)
    ks_arr = np.asarray(ks, dtype=float)
    if ks_arr.ndim != 1 or ks_arr.size == 0 or not np.all(np.isfinite(ks_arr)) or np.any(ks_arr <= 0):
        raise ValueError(f"ks={ks!r} is not allowed; it must be a non-empty 1-D sequence of finite k > 0.")
    cases = {"random": model, "like_pretraining": toward_pretraining(model, 1.0)}
    out: dict[str, dict[str, np.ndarray]] = {}
    for case, m in cases.items():
        der = [rate_derivatives(m, float(k), l, model_depth) for k in ks_arr]
        out[case] = {n: np.array([abs(d[n]) for d in der]) for n in ("a", "p")}
    return out


def alignment_gap_closed(model: LeafModel, k: float, model_depth: int | None = None) -> float:
    """How aligned the model trained on ``D_p ∪ D_a`` is: the share of the alignment data's excess code
    length under the pre-training code that training on ``D_a`` removed,
    ``1 − KL(P_a‖q_0) / KL(P_a‖P_p)`` with ``q_0 = (k P_p + P_a)/(k + 1)``.

    0: the model codes ``D_a`` no better than the pre-training distribution does; 1: as well as ``P_a``
    itself. Infinite ``KL(P_a‖P_p)`` (``P_p`` misses part of ``P_a``) gives nan.
    """
    check_positive("k", k)
    parts, d = _parts(model, model_depth)
    q0 = mixture(model, k, 0.0, d)
    before = kl_bits(parts["a"], parts["p"])
    if not math.isfinite(before) or before == 0.0:
        return math.nan
    return 1.0 - kl_bits(parts["a"], q0) / before


def loglog_slope(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept of log10 y against log10 x (the exponent of a power law)."""
    lx, ly = np.log10(np.asarray(x, dtype=float)), np.log10(np.abs(np.asarray(y, dtype=float)))
    slope, intercept = np.polyfit(lx, ly, 1)
    return float(slope), float(intercept)


# ----------------------------------------------------------------------------------------------
# KL divergences and the springs
# ----------------------------------------------------------------------------------------------


def kl_bits(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p‖q) in bits; inf where q misses some of p's mass."""
    return kl_divergence(p, q, "bits")


def kl_divergences(model: LeafModel, k: float, l: float, model_depth: int | None = None,
                   direction: str = "data||model") -> dict[str, float]:
    """KL between the trained model and each data set, per token (bits / d).

    ``"data||model"`` is KL(P_{D_i}‖P_θ) = H(P_i, q) - H(P_i): what the compression rate measures and
    what the first-order condition balances. ``"model||data"`` is KL(P_θ‖P_{D_i}), the order the paper
    writes; it is infinite when a data set misses some of the model's support (disjoint supports).
    """
    check_choice("direction", direction, KL_DIRECTIONS)
    parts, d = _parts(model, model_depth)
    q = mixture(model, k, l, d)
    if direction == "data||model":
        return {n: kl_bits(parts[n], q) / model.depth for n in NAMES}
    return {n: kl_bits(q, parts[n]) / model.depth for n in NAMES}


def kl_derivatives(model: LeafModel, k: float, l: float, model_depth: int | None = None,
                   direction: str = "data||model") -> dict[str, float]:
    """d KL_i / dl per token. For ``data||model`` it equals dγ_i/dl (the entropy of P_i is constant).
    For ``model||data``: d KL(q‖P_i)/dl = Σ (dq/dl) log2(q/P_i)."""
    check_choice("direction", direction, KL_DIRECTIONS)
    if direction == "data||model":
        return rate_derivatives(model, k, l, model_depth)
    parts, d = _parts(model, model_depth)
    q = mixture(model, k, l, d)
    dq = (parts["t"] - q) / (k + 1.0 + l)
    out = {}
    for n in NAMES:
        pi = parts[n]
        if np.any(pi[q > 0] <= 0):
            out[n] = math.nan
        else:
            out[n] = float(np.dot(dq, np.log2(q / pi))) / model.depth
    return out


def kl_shifts(model: LeafModel, k: float, l: float, model_depth: int | None = None,
              direction: str = "data||model") -> dict[str, float]:
    """KL_i(l) − KL_i(0) per token (bits / d), computed without subtracting two KLs.

    ``"data||model"``: KL(P_i‖q) − H(P_i) is the cross-entropy, so the shift is :func:`rate_shifts`.
    ``"model||data"``: with ``q_l − q_0 = l (P_t − q_0)/(k + 1 + l)``,
    ``KL(q_l‖P_i) − KL(q_0‖P_i) = Σ (q_l − q_0) log2(q_0/P_i) + KL(q_l‖q_0)``, both sums formed
    directly. Infinite before the pull (``P_i`` misses some of ``q_0``) gives nan; finite before and
    infinite after gives inf, as the plain difference would.
    """
    check_choice("direction", direction, KL_DIRECTIONS)
    if direction == "data||model":
        return rate_shifts(model, k, l, model_depth)
    _check_kl(k, l)
    parts, _ = _parts(model, model_depth)
    w0 = k + 1.0
    n0 = k * parts["p"] + parts["a"]
    q0 = n0 / w0
    dq = l * (parts["t"] - q0) / (w0 + l)
    ql = q0 + dq
    ratio = np.divide(l * parts["t"], n0, out=np.zeros_like(n0), where=n0 > 0)
    log_change = np.log1p(ratio) - math.log1p(l / w0)  # ln(q_l/q_0) where q_0 > 0
    on = q0 > 0
    fresh = ~on & (ql > 0)  # leaves only the perturbation reaches
    kl_l0 = float(np.dot(ql[on], log_change[on]))  # KL(q_l‖q_0) over the old support
    out = {}
    for n in NAMES:
        pi = parts[n]
        if np.any(pi[on] <= 0):
            out[n] = math.nan
        elif np.any(pi[fresh] <= 0):
            out[n] = math.inf
        else:
            first = float(np.dot(dq[on], np.log(q0[on] / pi[on])))
            new = float(np.dot(ql[fresh], np.log(ql[fresh] / pi[fresh])))
            out[n] = (first + kl_l0 + new) / (math.log(2) * model.depth)
    return out


def spring_state(model: LeafModel, n_p: float, n_a: float, n_t: float, model_depth: int | None = None,
                 direction: str = "data||model") -> dict[str, dict[str, float]]:
    """The series-spring reading of a perturbation of size ``n_t`` applied to a model trained on
    ``n_p`` pre-training and ``n_a`` alignment examples.

    Stiffness = |D_i|, deformation = ΔKL_i (KL after the perturbation minus before, per token, summed
    directly by :func:`kl_shifts`: at |D_p| = 10^7, |D_a| = 1 the plain difference loses digits),
    force = stiffness · deformation. Hooke's picture predicts the pre-training and alignment forces
    to be equal in size; here they are computed, and the first-order condition makes them equal and
    opposite up to O(n_t²) (the perturbation's own term), in the ``data||model`` direction.
    """
    check_positive("n_p", n_p)
    check_positive("n_a", n_a)
    check_positive("n_t", n_t, allow_zero=True)
    k, l = n_p / n_a, n_t / n_a
    before = kl_divergences(model, k, 0.0, model_depth, direction)
    after = kl_divergences(model, k, l, model_depth, direction)
    sizes = {"p": float(n_p), "a": float(n_a), "t": float(n_t)}
    deform = kl_shifts(model, k, l, model_depth, direction)  # not after − before: no cancellation
    force = {n: sizes[n] * deform[n] for n in NAMES}
    return {"stiffness": sizes, "kl_before": before, "kl_after": after, "deformation": deform, "force": force}


# ----------------------------------------------------------------------------------------------
# One call for the command line
# ----------------------------------------------------------------------------------------------


def theorem_summary(k: float, l: float, depth: int, seed: int = 0, *, vocab_size: int = 2,
                    model_depth: int | None = None, alpha: float = 1.5, supports: str = "overlap",
                    perturbation: str = "random") -> dict:
    """Everything needed to check Theorem 4.2 at one (k, l, depth) on seeded Pareto leaf distributions.

    ``slope_ratio`` is the ratio of compression-rate slopes, ``kl_slope_ratio`` the ratio of KL(data‖model)
    slopes (identical by construction), ``kl_slope_ratio_model_data`` the ratio in the paper's KL order,
    and ``force_balance_residual`` the first-order condition k·dγ_p + dγ_a + l·dγ_t (≈ 0).
    ``perturbation="like_pretraining"`` uses ``P_t = P_p`` (see :func:`random_leaf_distributions`).
    """
    _check_kl(k, l)
    _check_depth("depth", depth)
    if vocab_size**depth > 2**22:
        raise ValueError(f"depth={depth} gives vocab_size**depth = {vocab_size**depth} leaves; the exact model "
                         f"allows at most 2**22 (depth <= {int(22 // math.log2(vocab_size))} for vocab_size={vocab_size}).")
    model = random_leaf_distributions(depth, vocab_size=vocab_size, seed=seed, alpha=alpha, supports=supports,
                                      perturbation=perturbation)
    md = depth if model_depth is None else _check_depth("model_depth", model_depth, upper=depth)
    rates = normalized_rates(model, k, l, md)
    der = rate_derivatives(model, k, l, md)
    kl_md = kl_derivatives(model, k, l, md, "model||data")
    balance = force_balance(model, k, l, md)
    ratio = slope_ratio(model, k, l, md)
    n_a = 1.0
    spring = spring_state(model, k * n_a, n_a, l * n_a, md)
    return {
        "k": float(k),
        "l": float(l),
        "depth": int(depth),
        "model_depth": int(md),
        "seed": int(seed),
        "vocab_size": int(vocab_size),
        "n_leaves": model.n_leaves,
        "alpha": float(alpha),
        "supports": supports,
        "perturbation": perturbation,
        "gamma_p": rates["p"],
        "gamma_a": rates["a"],
        "gamma_t": rates["t"],
        "dgamma_p_dl": der["p"],
        "dgamma_a_dl": der["a"],
        "dgamma_t_dl": der["t"],
        "slope_ratio": ratio,
        "slope_ratio_over_k": ratio / k,
        "slope_ratio_at_l0": slope_ratio(model, k, 0.0, md),
        "kl_slope_ratio": ratio,
        "kl_slope_ratio_model_data": (-kl_md["a"] / kl_md["p"]) if kl_md["p"] else math.nan,
        "force_balance_residual": balance["sum"],
        "spring_force_p": spring["force"]["p"],
        "spring_force_a": spring["force"]["a"],
        "spring_force_t": spring["force"]["t"],
    }
