"""The exact model of Theorem 4.2: derivatives, the slope ratio, the springs, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from elasticity_lab.info import theory as th


@pytest.mark.parametrize("seed", range(5))
def test_slope_ratio_within_one_percent_of_k(seed: int) -> None:
    model = th.random_leaf_distributions(8, seed=seed)
    ratio = th.slope_ratio(model, 1e3, 1e-4)
    assert abs(ratio / 1e3 - 1) < 0.01
    assert math.isclose(th.slope_ratio(model, 1e3, 0.0), 1e3, rel_tol=1e-9)  # exact at l = 0


def test_slope_ratio_bends_at_large_l() -> None:
    """The ratio is k only near l = 0; at l = 1 the perturbation's own term l·dγ_t/dl is not small."""
    model = th.random_leaf_distributions(8, seed=0)
    assert abs(th.slope_ratio(model, 1e3, 1.0) / 1e3 - 1) > 0.1


def test_loglog_slope_is_one() -> None:
    model = th.random_leaf_distributions(6, seed=2)
    ks = np.logspace(1, 5, 9)
    slope, _ = th.loglog_slope(ks, th.slope_ratio_vs_k(model, ks, 1e-4))
    assert abs(slope - 1) < 0.01


@pytest.mark.parametrize("model_depth", [None, 3])
@pytest.mark.parametrize("l", [1e-3, 0.5])
def test_derivatives_match_finite_differences(model_depth: int | None, l: float) -> None:
    model = th.random_leaf_distributions(7, seed=4)
    h = 1e-2 * min(l, 1e-3)  # small against l, large against rounding
    up = th.normalized_rates(model, 50.0, l + h, model_depth)
    dn = th.normalized_rates(model, 50.0, l - h, model_depth)
    der = th.rate_derivatives(model, 50.0, l, model_depth)
    for name in th.NAMES:
        fd = (up[name] - dn[name]) / (2 * h)
        assert math.isclose(der[name], fd, rel_tol=1e-4, abs_tol=1e-12), name
    kl_up = th.kl_divergences(model, 50.0, l + h, model_depth, "model||data")
    kl_dn = th.kl_divergences(model, 50.0, l - h, model_depth, "model||data")
    kd = th.kl_derivatives(model, 50.0, l, model_depth, "model||data")
    for name in th.NAMES:
        assert math.isclose(kd[name], (kl_up[name] - kl_dn[name]) / (2 * h), rel_tol=1e-4, abs_tol=1e-12)


def test_force_balance_holds_for_every_l() -> None:
    model = th.random_leaf_distributions(8, seed=1, supports="disjoint")
    for l in (0.0, 0.01, 1.0, 10.0):
        assert th.force_balance(model, 300.0, l)["relative_residual"] < 1e-9


def test_spring_invariant_equal_at_small_l() -> None:
    model = th.random_leaf_distributions(8, seed=3)
    state = th.spring_state(model, n_p=1e5, n_a=100.0, n_t=0.01)
    fp, fa = state["force"]["p"], state["force"]["a"]
    assert fp * fa < 0  # the two springs pull in opposite directions
    assert abs(abs(fp) / abs(fa) - 1) < 0.01
    assert state["stiffness"]["p"] == 1e5


def test_mixture_is_size_weighted() -> None:
    model = th.random_leaf_distributions(3, seed=0)
    q = th.mixture(model, 2.0, 1.0)
    assert np.allclose(q, (2 * model.p + model.a + model.t) / 4)


def test_shallow_model_sees_prefix_marginals() -> None:
    model = th.random_leaf_distributions(4, seed=0)
    marg = model.marginal("p", 1)
    assert np.allclose(marg, [model.p[:8].sum(), model.p[8:].sum()])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(k=0.0, l=0.1, depth=4), "k=0.0"),
        (dict(k=-5.0, l=0.1, depth=4), "k=-5.0"),
        (dict(k=10.0, l=-0.1, depth=4), "l=-0.1"),
        (dict(k=10.0, l=0.1, depth=0), "depth=0"),
    ],
)
def test_invalid_values_name_the_parameter(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        th.theorem_summary(seed=0, **kwargs)


def test_distribution_not_summing_to_one_is_rejected() -> None:
    m = th.random_leaf_distributions(2, seed=0)
    with pytest.raises(ValueError, match="P_a sums to"):
        th.LeafModel(p=m.p, a=m.a * 0.9, t=m.t, vocab_size=2, depth=2)


def test_same_seed_same_numbers() -> None:
    a = th.theorem_summary(1000.0, 1e-3, 6, seed=7)
    b = th.theorem_summary(1000.0, 1e-3, 6, seed=7)
    assert a == b
    assert a["slope_ratio"] == pytest.approx(-a["dgamma_a_dl"] / a["dgamma_p_dl"])


@pytest.mark.parametrize("model_depth", [None, 3])
def test_rate_shifts_match_differences_and_slopes(model_depth: int | None) -> None:
    """The cancellation-free shift equals γ(l) − γ(0) where that difference is accurate, and slope·l at tiny l."""
    model = th.random_leaf_distributions(6, seed=4)
    g0 = th.normalized_rates(model, 20.0, 0.0, model_depth)
    g1 = th.normalized_rates(model, 20.0, 0.5, model_depth)
    shift = th.rate_shifts(model, 20.0, 0.5, model_depth)
    for n in th.NAMES:
        assert shift[n] == pytest.approx(g1[n] - g0[n], rel=1e-9, abs=1e-15)
    slope = th.rate_derivatives(model, 1e5, 0.0, model_depth)
    tiny = th.rate_shifts(model, 1e5, 1e-7, model_depth)
    for n in th.NAMES:
        assert tiny[n] == pytest.approx(slope[n] * 1e-7, rel=1e-4)


@pytest.mark.parametrize("seed", range(6))
def test_like_pretraining_perturbation_gives_the_papers_signs(seed: int) -> None:
    """P_t = P_p: the alignment rate worsens, the pre-training rate improves, for every draw; ratio k + l."""
    model = th.random_leaf_distributions(7, seed=seed, perturbation="like_pretraining")
    base = th.random_leaf_distributions(7, seed=seed)
    assert np.array_equal(model.p, base.p) and np.array_equal(model.a, base.a)  # only P_t differs
    assert np.array_equal(model.t, model.p)
    for k, l in ((10.0, 0.0), (1e3, 1e-3), (1e3, 1.0), (1e5, 0.1)):
        der = th.rate_derivatives(model, k, l)
        assert der["a"] >= 0 >= der["p"]
        assert th.slope_ratio(model, k, l) == pytest.approx(k + l, rel=1e-9)
        state = th.spring_state(model, k, 1.0, l)
        if l:
            assert state["deformation"]["a"] >= 0 >= state["deformation"]["p"]


def test_toward_pretraining_interpolates_and_flips_the_sign() -> None:
    model = th.random_leaf_distributions(8, seed=0)
    assert th.rate_derivatives(model, 1e3, 0.0)["a"] < 0  # this draw: the random P_t improves D_a's code
    assert np.array_equal(th.toward_pretraining(model, 0.0).t, model.t)
    assert np.array_equal(th.toward_pretraining(model, 1.0).t, model.p)
    half = th.toward_pretraining(model, 0.5)
    assert np.allclose(half.t, (model.t + model.p) / 2)
    assert th.rate_derivatives(th.toward_pretraining(model, 1.0), 1e3, 0.0)["a"] > 0
    summary = th.theorem_summary(1e3, 1e-3, 6, seed=1, perturbation="like_pretraining")
    assert summary["perturbation"] == "like_pretraining" and summary["dgamma_a_dl"] >= 0 >= summary["dgamma_p_dl"]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: th.random_leaf_distributions(4, perturbation="pretraining"), "perturbation='pretraining'.*'random', 'like_pretraining'"),
        (lambda: th.random_leaf_distributions(4, perturbation="like_pretraining", supports="disjoint"), "supports='disjoint'"),
        (lambda: th.toward_pretraining(th.random_leaf_distributions(4), 1.5), r"weight=1.5.*\[0, 1\]"),
        (lambda: th.toward_pretraining(th.random_leaf_distributions(4), -0.1), r"weight=-0.1"),
        (lambda: th.theorem_summary(10.0, 0.1, 4, perturbation="x"), "perturbation='x'"),
    ],
)
def test_perturbation_options_are_validated(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("direction", th.KL_DIRECTIONS)
def test_kl_shifts_match_differences_and_keep_precision_at_extremes(direction: str) -> None:
    """ΔKL summed directly equals after − before where that is accurate, and slope·l where it is not."""
    model = th.random_leaf_distributions(6, seed=2)
    for k, l in ((100.0, 0.01), (20.0, 0.5), (1e-3, 100.0)):
        shift = th.kl_shifts(model, k, l, direction=direction)
        before = th.kl_divergences(model, k, 0.0, direction=direction)
        after = th.kl_divergences(model, k, l, direction=direction)
        for n in th.NAMES:
            assert shift[n] == pytest.approx(after[n] - before[n], rel=1e-7, abs=1e-14)
    # |D_p| = 1e7, |D_a| = 1, |D_t| = 0.01: the plain difference of KL_p is a few percent off
    slope = th.kl_derivatives(model, 1e7, 0.0, direction=direction)
    tiny = th.kl_shifts(model, 1e7, 1e-9, direction=direction)
    state = th.spring_state(model, 1e7, 1.0, 1e-9, direction=direction)
    for n in th.NAMES:
        assert tiny[n] == pytest.approx(slope[n] * 1e-9, rel=1e-5)
        assert state["deformation"][n] == tiny[n]


def test_kl_shifts_model_data_undefined_where_the_kl_is_infinite() -> None:
    disjoint = th.random_leaf_distributions(6, seed=0, supports="disjoint")
    shift = th.kl_shifts(disjoint, 1e3, 0.1, direction="model||data")
    assert math.isfinite(shift["p"]) and math.isnan(shift["a"]) and math.isnan(shift["t"])


@pytest.mark.parametrize("seed", range(3))
def test_absolute_slopes_shrink_like_one_over_k_and_one_over_k_squared(seed: int) -> None:
    """The ratio is k, but the slopes themselves shrink: |dγ_a/dl| ∝ 1/k for a random P_t, ∝ 1/k² for
    P_t = P_p (and |dγ_p/dl| one power of k faster still). Exponents fitted over k = 10^3 … 10^5."""
    model = th.random_leaf_distributions(7, seed=seed)
    ks = np.logspace(3, 5, 5)
    slopes = th.absolute_slopes_vs_k(model, ks, 0.0)
    want = {("random", "a"): -1.0, ("random", "p"): -2.0, ("like_pretraining", "a"): -2.0, ("like_pretraining", "p"): -3.0}
    for (case, name), exponent in want.items():
        fitted, _ = th.loglog_slope(ks, slopes[case][name])
        assert abs(fitted - exponent) < 0.02, (case, name, fitted)
    # the same numbers as rate_derivatives, and the ratio of the two slopes is still k at l = 0
    der = th.rate_derivatives(th.toward_pretraining(model, 1.0), 1e4, 0.0)
    assert math.isclose(slopes["like_pretraining"]["a"][2], abs(der["a"]), rel_tol=1e-12)
    assert np.allclose(slopes["random"]["a"] / slopes["random"]["p"], ks, rtol=1e-6)


def test_absolute_slopes_reject_bad_k() -> None:
    model = th.random_leaf_distributions(4, seed=0)
    for bad in ([], [1.0, -2.0], [[1.0]]):
        with pytest.raises(ValueError, match="ks="):
            th.absolute_slopes_vs_k(model, bad)


def test_alignment_gap_closed_is_small_and_shrinks_with_k() -> None:
    """The model trained on D_p ∪ D_a removes only a sliver of D_a's excess code length when k is large."""
    model = th.random_leaf_distributions(8, seed=0)
    shares = [th.alignment_gap_closed(model, k) for k in (10.0, 1e3, 1e5)]
    assert all(0.0 < s < 1.0 for s in shares)
    assert shares[0] > shares[1] > shares[2]
    assert shares[2] < 1e-3
    # k → 0 (almost no pre-training): the model is P_a and the whole gap is closed
    assert math.isclose(th.alignment_gap_closed(model, 1e-9), 1.0, abs_tol=1e-6)


def test_absolute_slopes_figure_has_a_line_per_case_and_slope() -> None:
    from elasticity_lab.plots import theory as figs

    model = th.random_leaf_distributions(5, seed=1)
    ks = np.logspace(1, 3, 3)
    fig = figs.absolute_slopes_figure(ks, th.absolute_slopes_vs_k(model, ks), fit={"random": (-1.0, 0.0)})
    assert len(fig.data) == 4
    assert "fitted log-log slope -1.000" in fig.data[0].name
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"


def test_ratio_bends_cuts_its_axis_only_where_a_curve_runs_off() -> None:
    from elasticity_lab.plots import theory as figs

    ls = np.logspace(-5, 1, 4)
    calm = figs.ratio_bends(ls, {"a": np.array([1.0, 0.9, 0.5, 0.2])})
    assert calm.layout.yaxis.range is None and "cut" not in calm.layout.yaxis.title.text
    pole = figs.ratio_bends(ls, {"a": np.array([1.0, 0.9, 0.5, 0.2]), "b": np.array([1.0, 2.2, -37.8, -1.1])})
    assert list(pole.layout.yaxis.range) == [-2.1, 2.3000000000000003] and "axis cut at -2 and 3" in pole.layout.yaxis.title.text
    assert len(pole.data) == 2 and all(len(t.y) == 4 for t in pole.data)
