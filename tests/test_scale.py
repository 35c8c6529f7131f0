"""The scale study: validated config, the plan's bases, the verdict rule on synthetic data with known answers
(both ways, on both axes), measures of known curves, and a tiny end-to-end run through the command line."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from elasticity_lab.experiments import scale as sc
from elasticity_lab.experiments.scale.verdicts import verdict_text
from elasticity_lab.experiments.stats import ABSENT, NOT_RUN, SHOWS, UNDECIDED


def _row(rows: pd.DataFrame, axis: str, measure: str = "n_half") -> pd.Series:
    return rows[(rows["axis"] == axis) & (rows["measure"] == measure)].iloc[0]


@pytest.mark.parametrize("axis", sc.AXES)
def test_a_falling_trend_with_flat_controls_survives(axis: str) -> None:
    rows = sc.verdicts(sc.synthetic_measures(-1.0, 0.0, seeds=(0, 1, 2, 3)))
    r = _row(rows, axis)
    assert r["finding"] == SHOWS and r["high"] < 0
    assert r["verdict"] == "survives"
    assert sc.headline(rows)[sc.verdicts(sc.synthetic_measures(-1.0, 0.0)).iloc[0]["claim"]] in ("survives", UNDECIDED)


@pytest.mark.parametrize("axis", sc.AXES)
def test_a_trend_the_controls_show_too_does_not_survive(axis: str) -> None:
    r = _row(sc.verdicts(sc.synthetic_measures(-1.0, -1.0, seeds=(0, 1, 2, 3))), axis)
    assert r["finding"] == SHOWS and r["verdict"] == "does not survive"


@pytest.mark.parametrize("axis", sc.AXES)
def test_a_rising_or_absent_trend_does_not_show(axis: str) -> None:
    up = _row(sc.verdicts(sc.synthetic_measures(+1.0, 0.0, seeds=(0, 1, 2, 3))), axis)
    assert up["finding"] == ABSENT and up["verdict"] == ABSENT
    flat = _row(sc.verdicts(sc.synthetic_measures(0.0, 0.0, noise=1.0, seeds=(0, 1, 2, 3))), axis)
    assert flat["finding"] in (UNDECIDED, ABSENT) and flat["verdict"] != "survives"


def _with_lift(measures: pd.DataFrame, lift_of: dict[str, float]) -> pd.DataFrame:
    keys = ["axis", "base_kind", "preset", "params", "tokens", "seed"]
    curves = measures[keys].drop_duplicates()
    lift = curves.assign(measure="lift", value=[lift_of[k] for k in curves["base_kind"]])
    return pd.concat([measures, lift], ignore_index=True)


def test_only_curves_that_stage_1_moved_count() -> None:
    m = sc.synthetic_measures(-1.0, -1.0, seeds=(0, 1, 2, 3))
    moved = _with_lift(m, {"pretrained": 0.3, "random": 0.3, "light": 0.3, "finetuned": 0.3})
    assert _row(sc.verdicts(moved), "size")["verdict"] == "does not survive"
    still = _with_lift(m, {"pretrained": 0.3, "random": 1e-6, "light": 1e-6, "finetuned": 1e-6})
    rows = sc.verdicts(still)
    assert _row(rows, "size")["finding"] == SHOWS and _row(rows, "size")["verdict"] == UNDECIDED, "unmoved controls cannot count"
    none = sc.verdicts(_with_lift(m, {"pretrained": 1e-6, "random": 1e-6, "light": 1e-6, "finetuned": 1e-6}))
    assert (none["verdict"] == NOT_RUN).all()
    assert "0 of 12 curves moved" in verdict_text(none) and "nan" not in verdict_text(none).lower()


def test_an_unmeasurable_claim_says_why_and_what_would_test_it() -> None:
    m = sc.synthetic_measures(-1.0, -1.0, seeds=(0, 1, 2, 3))
    still = _with_lift(m, {"pretrained": 1e-6, "random": 1e-6, "light": 1e-6, "finetuned": 1e-6})
    text = verdict_text(sc.verdicts(still), still)
    assert text.count("not measurable here") >= 2 and "What would test it" in text and "lifted the pre-trained bases' score" in text
    assert "no trend (no seed" not in text and "nan" not in text.lower()
    moved = _with_lift(m, {"pretrained": 0.3, "random": 0.3, "light": 0.3, "finetuned": 0.3})
    shown = verdict_text(sc.verdicts(moved), moved)
    assert "not measurable" not in shown and "does not survive" in shown


def test_missing_controls_and_missing_data_say_so_in_words() -> None:
    m = sc.synthetic_measures(-1.0, 0.0, seeds=(0, 1, 2, 3))
    rows = sc.verdicts(m[m["base_kind"] == "pretrained"])
    assert (rows["verdict"] == UNDECIDED).all(), "a trend with no control run cannot survive its controls"
    empty = sc.verdicts(m.iloc[0:0])
    assert (empty["verdict"] == NOT_RUN).all()
    text = verdict_text(empty) + verdict_text(rows)
    assert "nan" not in text.lower()


def test_config_rejects_bad_input_in_one_sentence() -> None:
    with pytest.raises(ValueError, match="presets"):
        sc.ScaleConfig(presets=("nano", "micro"))
    with pytest.raises(ValueError, match="presets entry"):
        sc.ScaleConfig(presets=("nano", "micro", "huge"))
    with pytest.raises(ValueError, match="volume_fractions"):
        sc.ScaleConfig(volume_fractions=(1.0, 0.5, 0.25))
    with pytest.raises(ValueError, match="volume_budget"):
        sc.ScaleConfig(volume_budget=0)
    with pytest.raises(ValueError, match="eval_tokens"):
        sc.ScaleConfig(eval_tokens=0)
    with pytest.raises(ValueError, match="book base"):
        from elasticity_lab.lm.bases import BaseSpec

        BaseSpec("micro-seed1", eval_tokens=8)
    with pytest.raises(ValueError, match="size_controls entry"):
        sc.ScaleConfig(size_controls=("finetuned",))
    with pytest.raises(ValueError, match="scale"):
        sc.default_config("huge")


def test_the_reader_volume_axis_reuses_the_shipped_book_bases() -> None:
    from elasticity_lab.lm.bases import BaseSpec

    c = sc.default_config("reader")
    assert c.checkpoints() == BaseSpec("micro").budgets()
    assert c.volume_tokens() == [4096, 49152, 544768]
    for seed, name in ((0, "micro"), (1, "micro-seed1"), (2, "micro-seed2")):
        assert c.volume_spec(seed).key() == BaseSpec(name).key(), f"seed {seed} is not the book base {name}"
    points = sc.plan(c)
    kinds = {(p.axis, p.base_kind) for p in points}
    assert kinds == {("size", "pretrained"), ("size", "random"), ("size", "light"), ("volume", "pretrained"), ("volume", "finetuned")}
    assert len(points) == len(c.seeds) * (3 * len(c.presets) + 2 * len(c.volume_tokens()))
    fin = next(p for p in points if p.base_kind == "finetuned")
    assert fin.spec(c).kind == "finetuned" and fin.spec(c).finetuned_tokens == fin.tokens
    assert {p.spec(c).seed for p in points} == set(c.seeds)


def test_curve_measures_on_known_curves() -> None:
    n = [0, 8, 16, 32]
    rows = []
    for seed, y in enumerate(([0.9, 0.5, 0.3, 0.25], [0.9, 0.85, 0.8, 0.8])):
        for ni, yi in zip(n, y):
            rows.append({"axis": "size", "base_kind": "pretrained", "preset": "nano", "params": 1, "tokens": 1, "seed": seed,
                         "n": ni, "likelihood": yi, "base_likelihood": 0.2, "kl": 0.5})
    m = sc.curve_measures(pd.DataFrame(rows))
    half = m[m["measure"] == "n_half"].set_index("seed")["value"]
    assert math.isclose(half[0], 8 * (0.9 - 0.55) / (0.9 - 0.5))
    assert math.isnan(half[1]), "a curve that never gets halfway has no n-to-halfway"
    wide = sc.wide_table(sc.sweep_table(m))
    assert "1 of 2" in wide["n_half"].iloc[0]
    assert (m.loc[m["measure"] == "kl_stage1", "value"] == 0.5).all()


def test_no_gpu_results_are_invented(tmp_path) -> None:
    assert sc.shipped_results(tmp_path) == []
    assert "none are shown" in sc.gpu_results_sentence([])


@pytest.mark.slow
def test_smoke_run_through_the_command_line(tmp_path) -> None:
    from elasticity_lab.cli import main

    out = tmp_path / "scale.json"
    assert main(["run", "scale", "--scale", "smoke", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    table = pd.DataFrame(data["table"])
    assert {"preset", "tokens", "measure", "value", "seed", "axis", "base_kind"} <= set(table.columns)
    assert set(table["measure"]) == set(sc.MEASURES)
    assert set(table["preset"]) == set(data["config"]["presets"])
    verdicts = pd.DataFrame(data["verdicts"])
    assert set(verdicts["verdict"]) <= {"survives", "does not survive", SHOWS, ABSENT, UNDECIDED, NOT_RUN}
    assert set(data["headline"]) == {"elasticity grows with model size", "elasticity grows with pre-training volume"}
    # at smoke, stage 1 may move too few curves for any trend: then every verdict says so in words, never NaN
    assert np.isfinite(verdicts["trend"].astype(float)).any() or (verdicts["verdict"] == NOT_RUN).all()
    assert "nan" not in verdict_text(verdicts).lower()


def test_learnt_table_reads_the_checkpoints_the_axes_use() -> None:
    rows = []
    for seed in (0, 1):
        for preset, bits in (("nano", 6.0), ("micro", 5.0)):
            for tokens in (1024, 4096):
                rows.append({"axis": "size", "preset": preset, "params": 10, "seed": seed, "tokens": tokens, "run_tokens": 4096,
                             "heldout_bits_per_token": bits + (tokens == 1024), "source_bits_per_token": 1.0})
        for tokens, bits in ((1024, 4.0), (8192, 2.0), (65536, 1.5)):
            rows.append({"axis": "volume", "preset": "micro", "params": 10, "seed": seed, "tokens": tokens, "run_tokens": 65536,
                         "heldout_bits_per_token": bits, "source_bits_per_token": 1.0})
    learnt = sc.learnt_table(pd.DataFrame(rows), [1024, 8192])
    assert list(learnt["tokens"]) == [4096, 4096, 1024, 8192], "size: final checkpoints; volume: the axis's checkpoints only"
    assert list(learnt["above_floor"]) == [5.0, 4.0, 3.0, 1.0]
    text = sc.learnt_text(learnt, 1.0)
    assert "nano +5.00" in text and "8,192 tokens +1.00" in text and "65,536" not in text


def test_lifts_in_the_text_keep_two_significant_figures() -> None:
    """The lifts printed beside each other keep the same precision (the reader text once said 0.0036 beside 0.04 for 0.035)."""
    from elasticity_lab.experiments.scale.verdicts import _num

    assert [_num(v) for v in (1.76e-6, 0.00362, 0.0353, 0.242, 0.954, 1.339)] == ["1.8e-06", "0.0036", "0.035", "0.24", "0.95", "1.34"]


def test_the_verdict_table_uses_the_prose_words() -> None:
    """An unmeasurable claim reads "not measurable here" in the table as in the prose (the table said "not run"), the
    controls' empty trends once rather than once per control; a measured one keeps its intervals and verdicts."""
    m = sc.synthetic_measures(-1.0, -1.0, seeds=(0, 1, 2, 3))
    still = _with_lift(m, {"pretrained": 1e-6, "random": 1e-6, "light": 1e-6, "finetuned": 1e-6})
    t = sc.verdict_table(sc.verdicts(still))
    assert set(t["verdict"]) == {"not measurable here"} and set(t["finding"]) == {"not measurable here"}
    assert set(t["on the controls"]) == {"no trend on any control (no seed has three curves that stage 1 moved)"}
    moved = _with_lift(m, {"pretrained": 0.3, "random": 0.3, "light": 0.3, "finetuned": 0.3})
    t = sc.verdict_table(sc.verdicts(moved))
    size = t[(t["axis"] == "size") & (t["measure"] == "n_half")].iloc[0]
    assert size["verdict"] == "does not survive" and size["finding"] == SHOWS and "(shows)" in size["on the controls"]
    assert "not measurable" not in " ".join(t["verdict"])
