"""The uncertainty behind every verdict: intervals clustered by seed, and the rule that turns an interval into "shows".

Why one module: every experiment's findings (rebound, resistance, scale, mitigation, algorithms) are
"an effect, measured over seeds, compared with a null". The book's rule is the same everywhere, so it
lives here once: a finding **shows** only where the interval of its estimate excludes the null in the
direction the claim predicts; it **does not show** where the interval excludes the null the other way
or lies within a stated margin of it; otherwise it is **undecided**. A rule that can only ever say one
of these is useless, so each is tested on synthetic data whose answer is known (tests/test_stats.py).

Intervals resample whole *clusters* (seeds; pre-training seeds where the finding is about
pre-training): the curves of one seed share their base and data, so they are not independent draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, stats

from elasticity_lab.core.config import check_choice, check_positive

SHOWS, ABSENT, UNDECIDED, NOT_RUN = "shows", "does not show", "undecided", "not run"
"""The four answers a verdict can give, in words (never NaN)."""


@dataclass(frozen=True)
class Interval:
    """An estimate with its two-sided interval at ``level`` and how it was made."""

    estimate: float
    low: float
    high: float
    level: float = 0.95
    n: int = 0
    method: str = "bootstrap over seeds"

    @property
    def finite(self) -> bool:
        return all(math.isfinite(v) for v in (self.estimate, self.low, self.high))

    def text(self, digits: int = 2) -> str:
        """``+0.12 [+0.03, +0.20]`` or ``not run`` (no NaN ever reaches a reader)."""
        if not self.finite:
            return NOT_RUN if self.n == 0 else UNDECIDED + f" (n = {self.n})"
        return f"{self.estimate:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"


def _clusters(values: Sequence[float], clusters: Sequence[Any] | None) -> list[np.ndarray]:
    v = np.asarray(values, dtype=float)
    if clusters is None:
        return [np.array([x]) for x in v if math.isfinite(x)]
    c = list(clusters)
    if len(c) != len(v):
        raise ValueError(f"clusters has {len(c)} entries but values has {len(v)}; give one cluster label per value.")
    groups: dict[Any, list[float]] = {}
    for label, x in zip(c, v):
        if math.isfinite(x):
            groups.setdefault(label, []).append(float(x))
    return [np.asarray(g) for g in groups.values()]


SMALL = 10
"""Below this many clusters, intervals are Student-t intervals on the cluster means (a percentile bootstrap
over 3-5 seeds has only a handful of distinct resamples and is far too narrow); from it on, a cluster bootstrap."""


def _t_interval(means: np.ndarray, level: float) -> tuple[float, float]:
    m, k = float(means.mean()), len(means)
    half = float(stats.t.ppf(0.5 + level / 2, k - 1) * means.std(ddof=1) / math.sqrt(k))
    return m - half, m + half


def mean_interval(values: Sequence[float], clusters: Sequence[Any] | None = None, *, level: float = 0.95,
                  n_boot: int = 2000, seed: int = 0) -> Interval:
    """Interval of the mean effect, clusters (seeds) as the independent units.

    Few clusters (< :data:`SMALL`): a t-interval on the cluster means, each seed one estimate; many: the
    percentile cluster bootstrap of the pooled mean (:func:`bootstrap_interval`).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level!r} is not allowed; it must be in (0, 1).")
    groups = _clusters(values, clusters)
    if not groups:
        return Interval(math.nan, math.nan, math.nan, level, 0, "t over seed means")
    n = int(sum(len(g) for g in groups))
    if len(groups) >= SMALL:
        return bootstrap_interval(values, clusters, level=level, n_boot=n_boot, seed=seed)
    means = np.array([g.mean() for g in groups])
    if len(groups) < 2:
        return Interval(float(means[0]), -math.inf, math.inf, level, n, "t over seed means")
    lo, hi = _t_interval(means, level)
    return Interval(float(means.mean()), lo, hi, level, n, f"t over {len(groups)} seed means")


def bootstrap_interval(values: Sequence[float], clusters: Sequence[Any] | None = None, *,
                       statistic: Callable[[np.ndarray], float] = np.mean, level: float = 0.95,
                       n_boot: int = 2000, seed: int = 0) -> Interval:
    """Percentile bootstrap interval of ``statistic`` over ``values``, resampling whole clusters.

    NaN values (a curve that never got there) are dropped and counted out of ``n``. With one cluster
    there is no spread to resample: the interval is the estimate's own, unbounded (undecided).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level!r} is not allowed; it must be in (0, 1).")
    check_positive("n_boot", n_boot)
    groups = _clusters(values, clusters)
    if not groups:
        return Interval(math.nan, math.nan, math.nan, level, 0)
    pooled = np.concatenate(groups)
    est = float(statistic(pooled))
    if len(groups) < 2:
        return Interval(est, -math.inf, math.inf, level, len(pooled))
    rng = np.random.default_rng(seed)
    draws = np.empty(n_boot)
    for i in range(n_boot):
        pick = rng.integers(0, len(groups), len(groups))
        draws[i] = statistic(np.concatenate([groups[j] for j in pick]))
    alpha = (1 - level) / 2
    lo, hi = np.quantile(draws, [alpha, 1 - alpha])
    return Interval(est, float(lo), float(hi), level, len(pooled))


def difference_interval(a: Sequence[float], b: Sequence[float], clusters_a: Sequence[Any] | None = None,
                        clusters_b: Sequence[Any] | None = None, *, level: float = 0.95) -> Interval:
    """Interval of mean(a) − mean(b) (e.g. a pre-trained base's slope minus its control's): Welch's t on the two
    sets of cluster means (each seed one estimate)."""
    ga, gb = _clusters(a, clusters_a), _clusters(b, clusters_b)
    n = int(sum(len(g) for g in ga) + sum(len(g) for g in gb))
    if not ga or not gb:
        return Interval(math.nan, math.nan, math.nan, level, 0, "Welch t over seed means")
    ma, mb = np.array([g.mean() for g in ga]), np.array([g.mean() for g in gb])
    est = float(ma.mean() - mb.mean())
    if len(ma) < 2 or len(mb) < 2:
        return Interval(est, -math.inf, math.inf, level, n, "Welch t over seed means")
    va, vb = ma.var(ddof=1) / len(ma), mb.var(ddof=1) / len(mb)
    se = math.sqrt(va + vb)
    if se == 0:
        return Interval(est, est, est, level, n, "Welch t over seed means")
    df = (va + vb) ** 2 / ((va ** 2) / (len(ma) - 1) + (vb ** 2) / (len(mb) - 1)) if va + vb > 0 else 1.0
    half = float(stats.t.ppf(0.5 + level / 2, df) * se)
    return Interval(est, est - half, est + half, level, n, "Welch t over seed means")


def trend_interval(x: Sequence[float], y: Sequence[float], clusters: Sequence[Any] | None = None, *,
                   level: float = 0.95) -> Interval:
    """A monotone trend of y in x: Spearman's rank correlation within each cluster (seed), and a t-interval over
    the clusters' correlations (each seed one estimate of the trend). Without clusters, one correlation and no
    interval (undecided)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    labels = np.asarray(list(clusters), dtype=object)[ok] if clusters is not None else np.zeros(int(ok.sum()), dtype=object)
    x, y = x[ok], y[ok]
    rhos = []
    for g in dict.fromkeys(labels.tolist()):
        idx = np.flatnonzero(labels == g)
        if len(idx) >= 3 and len(np.unique(x[idx])) >= 2:
            rhos.append(0.0 if len(np.unique(y[idx])) < 2 else float(stats.spearmanr(x[idx], y[idx]).statistic))
    method = "Spearman per seed, t over seeds"
    if not rhos:
        return Interval(math.nan, math.nan, math.nan, level, int(len(x)), method)
    r = np.array(rhos)
    if len(r) < 2:
        return Interval(float(r[0]), -math.inf, math.inf, level, int(len(x)), method)
    lo, hi = _t_interval(r, level)
    return Interval(float(r.mean()), max(lo, -1.0), min(hi, 1.0), level, int(len(x)), method)


def decide(interval: Interval, *, null: float = 0.0, direction: str = "greater", margin: float = 0.0) -> str:
    """``shows`` / ``does not show`` / ``undecided`` / ``not run`` for a claim that the effect is on
    ``direction``'s side of ``null``.

    Shows: the whole interval lies beyond ``null`` on the claimed side (it excludes the null). Does not
    show: the whole interval lies on the other side, or within ``margin`` of the null (an effect too small
    to matter, when a margin is given). Otherwise undecided: the data cannot tell.
    """
    check_choice("direction", direction, ("greater", "less"))
    check_positive("margin", margin, allow_zero=True)
    if interval.n == 0 or math.isnan(interval.estimate):
        return NOT_RUN
    lo, hi, null_ = interval.low, interval.high, null
    if direction == "less":
        lo, hi, null_ = -interval.high, -interval.low, -null
    if lo > null_:
        return SHOWS
    if hi < null_ or (margin > 0 and lo >= null_ - margin and hi <= null_ + margin):
        return ABSENT
    return UNDECIDED


def survives(finding: str, controls: Sequence[str]) -> str:
    """A finding survives its controls only if it shows and no counted control shows it too.

    ``controls`` are the :func:`decide` answers of the same claim measured on the control bases that
    count (a control that stage 1 never moved is left out before this). No counted control: undecided.
    """
    if finding != SHOWS:
        return finding
    counted = [c for c in controls if c != NOT_RUN]
    if not counted:
        return UNDECIDED
    return "survives" if all(c != SHOWS for c in counted) else "does not survive"


@dataclass(frozen=True)
class PlateauFit:
    """y(n) = c + (y0 − c)·exp(−n/τ): where a curve settles (``plateau`` c), how fast (τ), and what share of the
    way from its start to a reference level it travelled (``recovered``)."""

    y0: float
    plateau: float
    tau: float
    sse: float

    def recovered(self, reference: float) -> float:
        """(start − settled)/(start − reference): 1 = settled exactly at the reference (the base), 0 = never moved,
        > 1 = overshot past it."""
        gap = self.y0 - reference
        return float((self.y0 - self.plateau) / gap) if abs(gap) > 1e-12 else math.nan


def fit_plateau(n: Sequence[float], y: Sequence[float]) -> PlateauFit:
    """Least-squares fit of an exponential approach to a plateau (τ on a grid, then y0 and c in closed form).

    Why this model: "returns to the base" is a claim about where a curve *settles*, not about its
    shape; a decay to 0 and a decay that stops at the base have the same early/late slope ratio but
    different plateaus. τ is searched on a log grid from a tenth of the first step to ten times the
    largest n (beyond that the curve is a straight line and the plateau is not identified: then the
    plateau is the last value).
    """
    n = np.asarray(n, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(n) & np.isfinite(y)
    n, y = n[ok], y[ok]
    if len(n) < 3:
        raise ValueError(f"n has {len(n)} finite points; a plateau fit needs at least 3.")
    span = float(n.max() - n.min())
    if span <= 0:
        raise ValueError("n must contain at least two different values.")
    positive = np.diff(np.unique(n))
    taus = np.geomspace(max(positive.min() / 10, 1e-9), 10 * span, 200)
    best = (math.inf, math.nan, math.nan, math.nan)
    for tau in taus:
        e = np.exp(-(n - n.min()) / tau)
        design = np.column_stack([e, 1 - e])  # y = y0·e + c·(1 − e)
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        sse = float(((design @ coef - y) ** 2).sum())
        if sse < best[0]:
            best = (sse, float(coef[0]), float(coef[1]), float(tau))
    sse, y0, c, tau = best
    if tau >= taus[-1] * 0.999:  # no curvature within the grid: the plateau is beyond the data
        c = float(y[np.argmax(n)])

    def refine(t: float) -> float:
        e = np.exp(-(n - n.min()) / t)
        design = np.column_stack([e, 1 - e])
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        return float(((design @ coef - y) ** 2).sum())

    if tau < taus[-1] * 0.999:
        res = optimize.minimize_scalar(lambda lt: refine(math.exp(lt)), bounds=(math.log(tau) - 0.1, math.log(tau) + 0.1),
                                       method="bounded")
        if res.fun <= sse:
            tau = math.exp(res.x)
            e = np.exp(-(n - n.min()) / tau)
            coef, *_ = np.linalg.lstsq(np.column_stack([e, 1 - e]), y, rcond=None)
            y0, c, sse = float(coef[0]), float(coef[1]), float(res.fun)
    return PlateauFit(y0, c, tau, sse)
