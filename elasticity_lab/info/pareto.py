"""The mass distribution of a token tree's leaves and the Pareto assumption the paper's theorem rests on.

Why its own module: fitting and testing a power-law tail (Clauset, Shalizi and Newman's method:
x_min by the smallest Kolmogorov-Smirnov distance, alpha by maximum likelihood, a likelihood-ratio test
against a log-normal) is statistics about a list of numbers, not about trees; the tree only supplies
the numbers (:func:`mass_distribution`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, special, stats

from elasticity_lab.core.config import check_positive

__all__ = ["ParetoFit", "mass_distribution", "fit_pareto", "pareto_verdict"]


def mass_distribution(pruned: Any, dataset: int = 0) -> np.ndarray:
    """The leaf probabilities of one data set's pruned tree (positive ones), largest first: the sample
    whose distribution the paper assumes to be Pareto."""
    p = pruned.probs[dataset]
    return np.sort(p[p > 0])[::-1]


@dataclass(frozen=True)
class ParetoFit:
    """Maximum-likelihood Pareto tail P(X > x) = (x / x_min)^(-alpha) for x >= x_min.

    ``alpha`` is the tail index of the survival function (numpy's ``pareto(a)``, scipy's ``b``); the
    density exponent in Clauset et al.'s convention is ``alpha + 1``. ``loglik_ratio`` > 0 favours the
    Pareto over a log-normal fitted to the same tail; ``p_value`` says whether the sign is significant
    (Vuong's test; a large p-value means the data cannot tell the two apart).
    """

    alpha: float
    alpha_se: float
    x_min: float
    n_tail: int
    n_total: int
    ks: float
    loglik_ratio: float
    loglik_ratio_z: float
    p_value: float
    lognormal_mu: float
    lognormal_sigma: float

    @property
    def alpha_density(self) -> float:
        return self.alpha + 1.0

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.__dict__.items()}


def _pareto_alpha(tail: np.ndarray, x_min: float) -> float:
    s = np.log(tail / x_min).sum()
    return float(tail.size / s) if s > 0 else math.inf


def fit_pareto(samples: Sequence[float] | np.ndarray, *, x_min: float | None = None, n_candidates: int = 200,
               min_tail: int = 50) -> ParetoFit:
    """Fit a Pareto tail by maximum likelihood; choose ``x_min`` by Clauset, Shalizi & Newman's (2009)
    method (the candidate that minimises the Kolmogorov–Smirnov distance between the tail and its fit),
    scanning ``n_candidates`` quantiles rather than every value to stay fast on 10^5 samples.

    Then compare against a log-normal truncated at the same ``x_min`` with a likelihood-ratio test:
    a straight line on a log-log plot is weak evidence on its own, and this test is what says so.
    """
    x = np.sort(np.asarray(samples, dtype=float).ravel())
    x = x[x > 0]
    n = x.size
    if n < min_tail:
        raise ValueError(f"samples has {n} positive values; the fit needs at least min_tail={min_tail}.")

    def ks_of(i: int) -> tuple[float, float]:
        tail = x[i:]
        xm = tail[0]
        a = _pareto_alpha(tail, xm)
        if not math.isfinite(a):
            return math.inf, a
        cdf_fit = 1.0 - (tail / xm) ** (-a)
        m = tail.size
        emp_hi = np.arange(1, m + 1) / m
        emp_lo = np.arange(0, m) / m
        return float(max(np.abs(emp_hi - cdf_fit).max(), np.abs(emp_lo - cdf_fit).max())), a

    if x_min is None:
        last = n - min_tail
        cand = np.unique(np.linspace(0, last, min(n_candidates, last + 1)).astype(np.int64))
        # move each candidate to the first occurrence of its value (ties)
        cand = np.unique(np.searchsorted(x, x[cand], side="left"))
        best = min(((ks_of(int(i))[0], int(i)) for i in cand), key=lambda t: t[0])
        i0 = best[1]
    else:
        check_positive("x_min", x_min)
        i0 = int(np.searchsorted(x, x_min, side="left"))
        if n - i0 < min_tail:
            raise ValueError(f"x_min={x_min!r} leaves {n - i0} samples in the tail; need >= {min_tail}.")
    tail = x[i0:]
    xm = float(tail[0])
    ks, alpha = ks_of(i0)
    m = tail.size
    alpha_se = alpha / math.sqrt(m)

    # log-normal truncated at x_min, fitted by maximum likelihood on the same tail
    logs = np.log(tail)
    log_xm = math.log(xm)

    def nll(theta: np.ndarray) -> float:
        mu, log_sigma = theta
        sigma = math.exp(log_sigma)
        z = (logs - mu) / sigma
        tail_mass = stats.norm.logsf((log_xm - mu) / sigma)
        ll = -0.5 * z**2 - logs - math.log(sigma) - 0.5 * math.log(2 * math.pi) - tail_mass
        return float(-ll.sum())

    theta0 = np.array([logs.mean(), math.log(max(logs.std(), 1e-3))])
    res = optimize.minimize(nll, theta0, method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-8, "maxiter": 2000})
    mu, sigma = float(res.x[0]), float(math.exp(res.x[1]))
    z = (logs - mu) / sigma
    ll_ln = -0.5 * z**2 - logs - math.log(sigma) - 0.5 * math.log(2 * math.pi) - stats.norm.logsf((log_xm - mu) / sigma)
    ll_pa = math.log(alpha) + alpha * log_xm - (alpha + 1) * logs
    diff = ll_pa - ll_ln
    r = float(diff.sum())
    sd = float(diff.std())
    zstat = r / (sd * math.sqrt(m)) if sd > 0 else 0.0
    p_value = float(special.erfc(abs(zstat) / math.sqrt(2)))
    return ParetoFit(
        alpha=float(alpha), alpha_se=float(alpha_se), x_min=xm, n_tail=int(m), n_total=int(n), ks=float(ks),
        loglik_ratio=r, loglik_ratio_z=float(zstat), p_value=p_value, lognormal_mu=mu, lognormal_sigma=sigma,
    )


def pareto_verdict(fit: ParetoFit, *, level: float = 0.1) -> str:
    """One sentence saying what the likelihood-ratio test of ``fit`` can tell, chosen from its p-value.

    ``p ≥ level``: the test cannot tell a Pareto law from a log-normal on this tail (the assumption is
    not rejected, but neither is the alternative). ``p < level``: the sign of ``z`` says which law fits
    the tail better. The numbers in the sentence are the fit's own.
    """
    if not (0.0 < level < 1.0):
        raise ValueError(f"level={level!r} is not allowed; it must be in (0, 1).")
    stats_text = f"z = {fit.loglik_ratio_z:.1f}, p = {fit.p_value:.2f}"
    if fit.p_value >= level:
        return (f"the test cannot tell a Pareto law from a log-normal on this tail ({stats_text}): "
                f"the Pareto assumption is not rejected here, but the log-normal is not either")
    if fit.loglik_ratio_z > 0:
        return f"a Pareto law fits this tail better than a log-normal ({stats_text})"
    return f"a log-normal fits this tail better than a Pareto law ({stats_text}): evidence against the Pareto assumption"
