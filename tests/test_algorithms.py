"""The algorithms study: calibration choice, per-curve summary, verdicts that can say yes and no (synthetic
summaries with known answers), validation errors naming the parameter, and the CLI at the smoke scale."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from elasticity_lab.experiments import algorithms as al
from elasticity_lab.experiments.stats import ABSENT, NOT_RUN, SHOWS, UNDECIDED, Interval

ALGS = ("sft", "dpo", "kto", "simpo", "rloo")


def _config(**kw):
    return al.AlgorithmsConfig(scale="smoke", lrs={a: 1e-3 for a in ALGS}, **kw)


def _summary(*, aligned=0.6, n_half=20.0, settled=0.15, lost=0.8, control_lost=0.8, control_gain=0.4, spread=0.02,
             per_alg: dict | None = None, seeds=(0, 1, 2)) -> pd.DataFrame:
    """A synthetic summary: every algorithm like SFT unless ``per_alg`` overrides a field for one algorithm;
    seed noise of ±``spread`` (relative for n_half) so that intervals have a width."""
    rows = []
    for a in ALGS:
        for kind in ("pretrained", "light", "random"):
            for i, s in enumerate(seeds):
                e = (i - 1) * spread
                vals = {"aligned": aligned + e, "n_half": n_half * (1 + e), "settled": settled + e, "lost_share": lost + e,
                        "gain": 0.45, "kl_aligned": 0.1, "lr": 1e-3, "base_rule": 0.15}
                if kind != "pretrained":
                    vals.update(lost_share=control_lost + e, gain=control_gain)
                if per_alg and a in per_alg and kind == "pretrained":
                    vals.update({k: (v + e if k != "n_half" else v * (1 + e)) for k, v in per_alg[a].items()})
                rows.append({"algorithm": a, "base_kind": kind, "seed": s, **vals})
    return pd.DataFrame(rows)


def _verdict(table: pd.DataFrame, finding: str, algorithm: str = "all", base_kind: str = "pretrained") -> pd.Series:
    r = table[(table["finding"] == finding) & (table["algorithm"] == algorithm) & (table["base_kind"] == base_kind)]
    assert len(r) == 1, (finding, algorithm, base_kind)
    return r.iloc[0]


INDEPENDENT = "the rebound is independent of the alignment algorithm"


def test_within_says_shows_does_not_show_undecided() -> None:
    assert al.within(Interval(0.05, -0.1, 0.2, n=3), 0.3) == SHOWS
    assert al.within(Interval(0.5, 0.4, 0.6, n=3), 0.3) == ABSENT
    assert al.within(Interval(-0.5, -0.6, -0.4, n=3), 0.3) == ABSENT
    assert al.within(Interval(0.3, 0.1, 0.5, n=3), 0.3) == UNDECIDED
    assert al.within(Interval(math.nan, math.nan, math.nan, n=0), 0.3) == NOT_RUN


def test_independence_shows_when_every_algorithm_is_like_sft() -> None:
    t = al.verdicts(_summary(), _config())
    assert _verdict(t, INDEPENDENT)["verdict"] == SHOWS
    for a in ALGS[1:]:
        assert _verdict(t, "matched alignment", a)["verdict"] == SHOWS


def test_independence_does_not_show_when_one_algorithm_rebounds_four_times_slower() -> None:
    t = al.verdicts(_summary(per_alg={"dpo": {"n_half": 80.0}}), _config())
    assert _verdict(t, "same n-to-halfway as SFT", "dpo")["verdict"] == ABSENT
    assert _verdict(t, "same n-to-halfway as SFT", "kto")["verdict"] == SHOWS
    assert _verdict(t, INDEPENDENT)["verdict"] == ABSENT


def test_independence_does_not_show_when_one_algorithm_settles_elsewhere() -> None:
    t = al.verdicts(_summary(per_alg={"rloo": {"settled": 0.5}}), _config())
    assert _verdict(t, "same settled level as SFT", "rloo")["verdict"] == ABSENT
    assert _verdict(t, INDEPENDENT)["verdict"] == ABSENT


def test_independence_is_undecided_with_noisy_seeds() -> None:
    t = al.verdicts(_summary(spread=0.3), _config())
    assert _verdict(t, INDEPENDENT)["verdict"] == UNDECIDED


def test_never_halfway_counts_beyond_the_grid() -> None:
    t = al.verdicts(_summary(per_alg={"kto": {"n_half": math.inf}}), _config())
    row = _verdict(t, "same n-to-halfway as SFT", "kto")
    assert row["verdict"] == ABSENT and row["estimate"] > 1


def test_rebounds_shows_and_survives_or_not_against_its_controls() -> None:
    t = al.verdicts(_summary(lost=0.8, control_lost=0.1), _config())
    row = _verdict(t, "rebounds", "dpo")
    assert row["verdict"] == SHOWS and row["survives_controls"] == "survives"
    t = al.verdicts(_summary(lost=0.8, control_lost=0.8), _config())
    assert _verdict(t, "rebounds", "dpo")["survives_controls"] == "does not survive"
    t = al.verdicts(_summary(lost=0.8, control_lost=0.8, control_gain=0.02), _config())
    row = _verdict(t, "rebounds", "dpo")
    assert row["survives_controls"] == UNDECIDED and "left out" in row["detail"]  # no control counted


def test_rebounds_does_not_show_or_is_undecided() -> None:
    t = al.verdicts(_summary(lost=0.2), _config())
    assert _verdict(t, "rebounds", "sft")["verdict"] == ABSENT
    t = al.verdicts(_summary(lost=0.5, spread=0.2), _config())
    assert _verdict(t, "rebounds", "sft")["verdict"] == UNDECIDED


def test_matched_alignment_can_fail() -> None:
    t = al.verdicts(_summary(per_alg={"simpo": {"aligned": 0.3}}), _config())
    assert _verdict(t, "matched alignment", "simpo")["verdict"] == ABSENT
    text = al.verdict_text(t)
    assert "simpo does not show" in text and INDEPENDENT.split(" of ")[0].capitalize().split()[0] in text


def test_curve_summary_on_a_hand_made_curve() -> None:
    n = [0, 8, 16, 32, 64]
    curves = pd.DataFrame({"algorithm": "dpo", "base_kind": "pretrained", "seed": 0, "lr": 3e-4, "align_steps": 8, "n": n,
                           "rule": [0.6, 0.5, 0.3, 0.2, 0.2], "kl": [0.2, 0.1, 0.05, 0.04, 0.03], "base_rule": 0.2})
    s = al.curve_summary(curves, 32).iloc[0]
    assert s["aligned"] == pytest.approx(0.6) and s["gain"] == pytest.approx(0.4) and s["kl_aligned"] == pytest.approx(0.2)
    assert s["lost_share"] == pytest.approx(1.0)  # (0.6 − 0.2) / 0.4
    assert s["n_half"] == pytest.approx(12.0)  # halfway level 0.4 between n = 8 (0.5) and 16 (0.3)
    assert s["settled"] == pytest.approx(0.2)
    flat = curves.assign(rule=[0.6, 0.6, 0.6, 0.6, 0.6])
    assert math.isinf(al.curve_summary(flat, 32).iloc[0]["n_half"])
    with pytest.raises(ValueError, match="n_align = 48"):
        al.curve_summary(curves, 48)


def test_choose_rates_picks_the_rate_closest_to_the_target() -> None:
    cal = pd.DataFrame({"algorithm": ["dpo"] * 4 + ["sft"] * 2, "lr": [1e-4, 3e-4, 1e-3, 1e-3, 3e-4, 1e-3], "seed": 100,
                        "rule": [0.3, 0.55, 0.05, 0.05, 0.5, 0.7], "kl": [0.01, 0.09, 1.0, 1.0, 0.02, 0.1]})
    rates = al.choose_rates(cal, 0.6)
    assert rates["dpo"] == 3e-4  # 0.55 is the highest before the peak: closest
    assert rates["sft"] == pytest.approx(5.48e-4)  # 0.6 halfway between 0.5 and 0.7: the geometric mean of the rates
    assert al.choose_rates(cal, 0.2) == {"dpo": 1e-4, "sft": 3e-4}  # below every score: the closest, no extrapolation
    with pytest.raises(ValueError, match="columns"):
        al.choose_rates(cal.drop(columns="kl"), 0.6)


@pytest.mark.parametrize("kwargs, name", [
    (dict(algorithms=("dpo", "kto")), "without 'sft'"),
    (dict(algorithms=("sft", "ppo")), "algorithms entry"),
    (dict(n_align=24), "must contain n_align"),
    (dict(n_perturb=(0, 8, 12, 16)), "n_perturb"),
    (dict(seeds=(0,)), "at least 2 seeds"),
    (dict(calibration_seeds=(0,)), "overlap"),
    (dict(bases=("light",)), "bases="),
    (dict(target=1.5), "target=1.5"),
    (dict(halfway_factor=1.0), "halfway_factor=1.0"),
    (dict(lrs={"sft": 1e-3}), "lrs has no rate for algorithm 'dpo'"),
    (dict(lrs={a: -1.0 for a in ALGS}), "lrs\\['sft'\\]=-1.0"),
    (dict(lrs=None, lr_grid={"sft": (1e-3,)}), "lr_grid has no rates for algorithm 'dpo'"),
    (dict(align_overrides={"dpo": {"beta": 0.0}}), "beta=0.0"),
    (dict(align_overrides={"rloo": {"k": 1}}), "k=1"),
    (dict(align_overrides={"dpo": {"lr": 1e-3}}), "sets 'lr'"),
    (dict(control_lr_grid={"sft": (1e-3,)}), "control_lr_grid has no rates for algorithm 'dpo'"),
    (dict(control_lr_grid={a: (0.0,) for a in ALGS}), "control_lr_grid\\['sft'\\] entry=0.0"),
])
def test_invalid_parameters_name_themselves(kwargs: dict, name: str) -> None:
    base = dict(n_align=16, n_perturb=(0, 8, 16, 32), seeds=(0, 1))
    base.update(kwargs)
    if "lrs" not in base:
        base["lrs"] = {a: 1e-3 for a in ALGS}
    with pytest.raises(ValueError, match=name):
        al.AlgorithmsConfig(scale="smoke", **base)


def test_default_configs_are_valid() -> None:
    for scale in ("smoke", "reader", "full"):
        c = al.default_config(scale)
        assert len(c.seeds) >= 2 and c.n_align in c.n_perturb
    assert len(al.default_config("reader").seeds) >= 3
    assert al.default_config("smoke", 3).seeds == (0, 1, 2)


def test_cli_at_smoke_scale(tmp_path) -> None:
    out = tmp_path / "algorithms.json"
    proc = subprocess.run([sys.executable, "-m", "elasticity_lab", "run", "algorithms", "--scale", "smoke", "--json", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["experiment"] == "algorithms" and data["config"]["scale"] == "smoke"
    curves = pd.DataFrame(data["tables"]["curves"])
    assert set(curves["algorithm"]) == set(ALGS) and set(curves["base_kind"]) == {"pretrained", "light", "random"}
    verdict_rows = pd.DataFrame(data["tables"]["verdicts"])
    assert "algorithm" in verdict_rows and INDEPENDENT in set(verdict_rows["finding"])
    assert set(verdict_rows["verdict"]) <= {SHOWS, ABSENT, UNDECIDED, NOT_RUN}
    assert np.isfinite(pd.DataFrame(data["tables"]["summary"])["aligned"]).all()


def test_controls_calibrated_on_their_own(tmp_path, monkeypatch) -> None:
    """With control_lr_grid each control base gets its own rate (from its own calibration points), and its curves use it;
    without it the controls align at the pre-trained base's rate."""
    monkeypatch.setenv("ELASTICITY_CACHE", str(tmp_path / "cache"))
    config = al.default_config("smoke", algorithms=("sft",), bases=("pretrained", "light"), lrs={"sft": 3e-4},
                               control_lr_grid={"sft": (1e-3, 1e-2)}, gate_controls=False)
    result = al.run_algorithms(config, progress=False)
    cal = result.control_calibration
    assert set(cal["base_kind"]) == {"light"} and sorted(cal["lr"]) == [1e-3, 1e-2]
    assert {"rule", "kl", "base_rule"} <= set(cal.columns) and cal["rule"].notna().all()
    rate = result.control_lrs["light"]["sft"]
    assert 1e-3 <= rate <= 1e-2 and result.lr_of("sft", "light") == rate and result.lr_of("sft") == 3e-4
    lrs = result.curves.groupby("base_kind")["lr"].unique()
    assert list(lrs["light"]) == [rate] and list(lrs["pretrained"]) == [3e-4]
    default = al.calibrate_controls(al.default_config("smoke", control_lr_grid=None))
    assert default[0].empty and default[1] == {}


def test_choose_rates_skips_rates_past_the_peak() -> None:
    cal = pd.DataFrame({"algorithm": "simpo", "lr": [3e-4, 4e-4, 5e-4, 7e-4], "seed": 100,
                        "rule": [0.53, 0.66, 0.73, 0.61], "kl": [0.1, 0.19, 0.27, 0.45]})
    rate = al.choose_rates(cal, 0.6)["simpo"]  # 7e-4 scores 0.61, closest to 0.6, but is past the peak (collapsing)
    assert 3e-4 < rate < 4e-4 and rate == pytest.approx(3.5e-4)


def test_gated_control_curve_is_left_out() -> None:
    one = pd.DataFrame({"algorithm": "sft", "base_kind": "random", "seed": 0, "lr": 3e-4, "align_steps": 8, "n": [0],
                        "rule": [0.03], "kl": [0.01], "base_rule": 0.01})
    s = al.curve_summary(one, 32).iloc[0]
    assert s["gain"] == pytest.approx(0.02) and math.isnan(s["lost_share"]) and math.isnan(s["n_half"])
    summ = _summary()
    summ.loc[summ["base_kind"] == "random", ["lost_share", "gain"]] = [math.nan, 0.02]
    t = al.verdicts(summ, _config())
    row = _verdict(t, "rebounds", "sft")
    assert "random: not run, not counted" in row["detail"] and "nan" not in al.verdict_text(t).lower()


def test_study_texts_never_say_nan() -> None:
    summ = _summary(per_alg={"kto": {"n_half": math.inf}})
    table = al.algorithm_table(summ)
    text = al.alignment_text(table, 0.6) + al.rebound_text(table, 32)
    assert "nan" not in text.lower() and "kto never halfway" in text and "aligned score of 0.6" in text


def test_unlifted_controls_are_called_not_measurable_and_kl_claims_need_an_interval() -> None:
    summ = _summary(lost=1.3, control_lost=0.8, control_gain=0.02)
    t = al.verdicts(summ, _config())
    text = al.verdict_text(t)
    assert "Against the controls, not measurable here" in text and "below the base's own level" in text
    assert "+0.020 on average" in _verdict(t, "rebounds", "sft", "light")["detail"]
    shown = al.verdict_text(al.verdicts(_summary(lost=0.8, control_lost=0.1), _config()))
    assert "not measurable" not in shown
    same = al.alignment_text(al.algorithm_table(summ), 0.6, summ)
    assert "No algorithm's KL differs from SFT's" in same and "do not all move" not in same
    apart = _summary(per_alg={"dpo": {"kl_aligned": 0.3}})
    assert "differs from zero for dpo" in al.alignment_text(al.algorithm_table(apart), 0.6, apart)
    assert "went past it" in al.rebound_text(al.algorithm_table(summ), 32)
    assert "went past it" not in al.rebound_text(al.algorithm_table(_summary(lost=0.8)), 32)
    flat = _summary(per_alg={"kto": {"n_half": math.nan}})
    assert "kto no rebound to time" in al.rebound_text(al.algorithm_table(flat), 32)
    from elasticity_lab.plots.algorithms import verdict_table

    shown_rows = verdict_table(t)["estimate [95 % interval]"].tolist()
    assert "combines the rows above" in shown_rows and not any("nan" in str(x).lower() for x in shown_rows)


def test_exercise_8b1_check_says_yes_and_no() -> None:
    import torch.nn.functional as F

    from elasticity_lab.exercises import ch08b, solutions

    assert ch08b.check_dpo_loss(solutions.dpo_loss).passed
    flipped = lambda c, r, rc, rr, b: -F.logsigmoid(b * ((r - rr) - (c - rc))).mean()  # noqa: E731
    no_ref = lambda c, r, rc, rr, b: -F.logsigmoid(b * (c - r)).mean()  # noqa: E731
    assert not ch08b.check_dpo_loss(flipped).passed and not ch08b.check_dpo_loss(no_ref).passed


@pytest.mark.notebook
def test_chapter_8_section_runs_at_smoke() -> None:
    """Chapter 8's section "Does the algorithm matter?" executes at smoke, with its verdict in words and no nan."""
    import json
    import re

    from conftest import ROOT, executed_notebook

    cells = json.loads(executed_notebook(ROOT / "notebooks" / "08_scale.ipynb").read_text())["cells"]
    start = next(i for i, c in enumerate(cells) if "".join(c["source"]).startswith("## Does the algorithm matter?"))
    assert "section-setup" in cells[start + 1]["metadata"].get("tags", [])
    text = "".join(str(o.get("data", {}).get("text/markdown", "")) + "".join(o.get("text", "")) for c in cells[start:]
                   if c["cell_type"] == "code" for o in c.get("outputs", []))
    assert not re.search(r"\bnan\b", text, re.I)
    assert "independent of the alignment algorithm" in text


def test_against_controls_is_the_same_word_in_the_table_and_the_text() -> None:
    """An unlifted set of controls reads "not measurable here" in the verdict table and the prose alike (the table once
    said "undecided" beside prose saying "not measurable here"); a counted control keeps survives / does not survive."""
    from elasticity_lab.plots.algorithms import verdict_table

    t = al.verdicts(_summary(lost=1.3, control_lost=0.8, control_gain=0.02), _config())
    row = _verdict(t, "rebounds", "sft")
    assert row["survives_controls"] == UNDECIDED and al.against_controls(row) == al.NOT_MEASURABLE
    shown = verdict_table(t).set_index(["finding", "algorithm", "base"]).loc[("rebounds", "sft", "pretrained"), "against its controls"]
    assert shown == al.NOT_MEASURABLE and "sft rebounds** (more than 50% of the gain undone): shows" in al.verdict_text(t)
    assert "against its controls: not measurable here" in al.verdict_text(t)
    t = al.verdicts(_summary(lost=0.8, control_lost=0.8), _config())
    row = _verdict(t, "rebounds", "sft")
    assert al.against_controls(row) == "does not survive" and "lifted by +0.400 on average" in row["detail"]
    text = al.verdict_text(t)
    assert "**Does not survive its controls** (sft, dpo, kto, simpo, rloo)" in text and "not measurable" not in text
    t = al.verdicts(_summary(lost=0.8, control_lost=0.1), _config())
    assert al.against_controls(_verdict(t, "rebounds", "sft")) == "survives"
    assert "**Survives its controls**" in al.verdict_text(t) and "Does not survive" not in al.verdict_text(t)
    # a finding that does not show keeps its own word; a row without controls stays "undecided", not "not measurable"
    t = al.verdicts(_summary(lost=0.2), _config())
    assert al.against_controls(_verdict(t, "rebounds", "sft")) == ABSENT
    t = al.verdicts(_summary(lost=0.8), _config(bases=("pretrained",)))
    assert al.against_controls(_verdict(t, "rebounds", "sft")) == UNDECIDED


def _control_calibration(light_rules, random_rules, *, kl=0.5, base_rule=0.02) -> pd.DataFrame:
    rows = []
    for kind, rules in (("light", light_rules), ("random", random_rules)):
        for a in ALGS:
            for lr, rule in zip((1e-3, 3e-3, 1e-2), rules):
                rows.append({"base_kind": kind, "algorithm": a, "lr": lr, "seed": 100, "rule": rule,
                             "kl": 0.0 if kind == "random" and a == "rloo" else kl, "base_rule": base_rule})
    return pd.DataFrame(rows)


def test_control_calibration_text_says_which_controls_no_rate_lifts() -> None:
    config = _config(control_lr_grid={a: (1e-3, 3e-3, 1e-2) for a in ALGS})
    lrs = {k: {a: 3e-3 for a in ALGS} for k in ("light", "random")}
    lifted = al.control_calibration_text(_control_calibration((0.2, 0.5, 0.9), (0.1, 0.3, 0.7)), lrs, config)
    assert "sft up to 0.90 at 0.01 (reached the target), rate used 0.003" in lifted and "No rate of the grid" not in lifted
    flat = al.control_calibration_text(_control_calibration((0.03, 0.05, 0.04), (0.02, 0.03, 0.04)), lrs, config)
    assert "- **light** (its own score 0.02; rates 0.001, 0.003, 0.01): sft at most 0.05 (KL to the base up to 0.5" in flat
    assert flat.count("No rate of the grid lifted it by 0.1 for sft, dpo, kto, simpo, rloo.") == 2
    assert "rloo at most 0.04 (KL to the base 0: it did not change the model)" in flat and "reached the target" not in flat
    short = al.control_calibration_text(_control_calibration((0.03, 0.05, 0.04), (0.02, 0.03, 0.2)), lrs, config)
    assert "kto up to 0.20 at 0.01 (short of the target)" in short and short.count("No rate of the grid") == 1
    assert al.control_calibration_text(pd.DataFrame(), lrs, config) == ""
    # in the verdicts' prose: the controls' own calibration replaces "a rate of their own" as the thing to try
    t = al.verdicts(_summary(lost=1.3, control_lost=0.8, control_gain=0.02), _config())
    with_cal = al.verdict_text(t, _control_calibration((0.03, 0.05, 0.04), (0.02, 0.03, 0.04)))
    assert "Nor did any rate of the controls' own grid" in with_cal and "rates beyond the controls' grid" in with_cal
    without = al.verdict_text(t)
    assert "Nor did any rate" not in without and "control_lr_grid" in without and "nan" not in with_cal.lower()


def test_calibration_figure_circles_an_interpolated_rate() -> None:
    """The chosen rate lies between two rates of the grid (interpolated in log rate): the circle the title promises is
    drawn on the line there (it was an empty trace when only rates of the grid could be circled)."""
    from elasticity_lab.plots.algorithms import calibration_figure

    cal = pd.DataFrame({"algorithm": "sft", "lr": [3e-4, 4e-4, 5e-4], "seed": 100, "rule": [0.5, 0.7, 0.75], "kl": [0.02, 0.04, 0.07]})
    fig = calibration_figure(cal, {"sft": 3.46e-4}, 0.6)
    circles = [t for t in fig.data if t.mode == "markers"]
    assert len(circles) == 2 and all(len(t.x) == 1 for t in circles)
    assert 0.5 < circles[0].y[0] < 0.7 and circles[0].x[0] == pytest.approx(3.46e-4)
    assert calibration_figure(cal, {"sft": 4e-4}, 0.6).data[1].y[0] == pytest.approx(0.7)
    assert all(len(t.x) == 0 for t in calibration_figure(cal, {"sft": 1e-2}, 0.6).data if t.mode == "markers")
