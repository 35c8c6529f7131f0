"""Mitigation experiment: every verdict rule on synthetic data both ways, the measures, the theorem's prediction,
the defences of stage 2 on a tiny model, validation, and the CLI at the smoke scale."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from elasticity_lab.experiments import mitigation as mi
from elasticity_lab.experiments.rebound import MicroTask
from elasticity_lab.experiments.stats import Interval
from elasticity_lab.lm.presets import random_model
from elasticity_lab.microworld.world import World

# --------------------------------------------------------------------------- synthetic studies with known answers


def _per(effects: dict[str, tuple[float, float, float]], seeds=(0, 1, 2), noise: float = 0.01) -> pd.DataFrame:
    """Per-curve measures: mitigation → (Δ auc, Δ bits, Δ other score) against none, plus small seed noise."""
    rng = np.random.default_rng(0)
    rows = []
    for s in seeds:
        base_auc, base_bits, base_other = 0.3 + 0.05 * s, 2.0 + 0.01 * s, 0.6
        for name, (d_auc, d_bits, d_other) in {"none": (0.0, 0.0, 0.0), **effects}.items():
            e = rng.normal(0, noise, 3) if name != "none" else np.zeros(3)
            rows.append({"mitigation": name, "family": mi.CATALOGUE[name].family, "seed": s, "start": 0.8, "end": base_auc + d_auc,
                         "auc": base_auc + d_auc + e[0], "base_level": 0.2, "n_half": 20.0, "bits_end": base_bits + d_bits + e[1],
                         "other_end": base_other + d_other + e[2]})
    return pd.DataFrame(rows)


def test_verdicts_say_stick_and_not_stick_on_known_effects() -> None:
    per = _per({"replay 0.5": (0.2, 0.0, 0.0), "lr ×3": (-0.2, 0.0, 0.0), "LoRA": (0.0, 0.0, 0.0)}, noise=0.005)
    table = mi.summary_table(per)
    assert table["mitigation"].tolist()[0] == "none" and table.loc[0, "protection"] == 0.0
    v = mi.verdict_table(table, mi.default_config("smoke"), per).set_index("mitigation")
    assert v.loc["replay 0.5", "verdict"] == mi.STICKS
    assert v.loc["lr ×3", "verdict"] == mi.NOT_STICK
    assert v.loc["LoRA", "verdict"] == mi.NOT_STICK  # inside the ±0.02 margin: too small to matter


def test_protection_rule_both_ways_and_undecided() -> None:
    assert mi.protection_verdict(Interval(0.1, 0.05, 0.15, n=3)) == mi.STICKS
    assert mi.protection_verdict(Interval(-0.1, -0.15, -0.05, n=3)) == mi.NOT_STICK
    assert mi.protection_verdict(Interval(0.0, -0.01, 0.01, n=3), margin=0.02) == mi.NOT_STICK
    assert mi.protection_verdict(Interval(0.05, -0.1, 0.2, n=3)) == "undecided"
    assert mi.protection_verdict(Interval(math.nan, math.nan, math.nan, n=0)) == "not run"


def test_cost_rule_both_ways_and_undecided() -> None:
    small, big, wide = Interval(0.0, -0.005, 0.005, n=3), Interval(0.3, 0.2, 0.4, n=3), Interval(0.1, -0.2, 0.4, n=3)
    assert mi.cost_verdict(big, small, 0.01, 0.02) == mi.COSTS
    assert mi.cost_verdict(small, big, 0.01, 0.02) == mi.COSTS  # the other tasks' drop alone is a cost
    assert mi.cost_verdict(small, small, 0.01, 0.02) == mi.FREE
    assert mi.cost_verdict(wide, small, 0.01, 0.02) == "undecided"
    per = _per({"anchor 0.05": (0.0, 0.5, 0.0), "replay 0.5": (0.0, 0.0, 0.0)}, noise=0.002)
    v = mi.verdict_table(mi.summary_table(per), mi.default_config("smoke"), per).set_index("mitigation")
    assert v.loc["anchor 0.05", "cost"] == mi.COSTS and v.loc["replay 0.5", "cost"] == mi.FREE


def test_other_task_drop_counts_as_cost_with_its_sign() -> None:
    per = _per({"world 0.8": (0.0, 0.0, -0.3)}, noise=0.002)  # the other tasks' scores fall by 0.3
    row = mi.summary_table(per).set_index("mitigation").loc["world 0.8"]
    assert row["cost_other"] == pytest.approx(0.3, abs=0.01) and row["cost_other_low"] > 0


def test_contrast_rows_and_prose_never_say_nan() -> None:
    per = _per({"data ×10": (0.2, 0.0, 0.0), "repeat ×10": (0.2, 0.0, 0.0)}, noise=0.001)
    v = mi.verdict_table(mi.summary_table(per), mi.default_config("smoke"), per)
    contrast = v[v["family"] == "contrast"].iloc[0]
    assert contrast["against"] == "repeat ×10" and contrast["verdict"] == mi.NOT_STICK
    text = mi.verdict_text(v)
    assert "nan" not in text.lower() and "data ×10" in text and text.count("\n") == len(v) - 1
    one_seed = _per({"data ×10": (0.2, 0.0, 0.0)}, seeds=(0,))
    v1 = mi.verdict_table(mi.summary_table(one_seed), mi.default_config("smoke"))
    assert v1["verdict"].iloc[0] == "undecided" and "nan" not in mi.verdict_text(v1).lower()


# --------------------------------------------------------------------------- measures and the theorem


def test_area_under_curve_and_measures() -> None:
    assert mi.area_under_curve([0, 10, 20], [1.0, 1.0, 1.0]) == pytest.approx(1.0)
    assert mi.area_under_curve([0, 10, 30], [1.0, 0.0, 0.0]) == pytest.approx(5 / 30)
    with pytest.raises(ValueError, match="two different"):
        mi.area_under_curve([0, 0], [1, 1])
    curves = pd.DataFrame({"mitigation": "none", "family": "baseline", "seed": 0, "n": [0, 8, 16], "rule": [0.8, 0.5, 0.2],
                           "base_rule": 0.2, "align_steps": 2, "bits_end": 2.1,
                           "other_end": 0.4, "seconds": 1.0})
    row = mi.curve_measures(curves).iloc[0]
    assert row["start"] == 0.8 and row["end"] == 0.2 and row["n_half"] == pytest.approx(8.0)
    assert row["auc"] == pytest.approx(((0.8 + 0.5) / 2 + (0.5 + 0.2) / 2) / 2)


def test_theorem_prediction_is_the_size_weighted_mixture() -> None:
    # k = 100, l = 0: (100·0.2 + 1)/101
    assert mi.predicted_level(100, 1, 0, 0.2) == pytest.approx(21 / 101)
    assert mi.predicted_level(100, 1, 10, 0.2) == pytest.approx(21 / 111)
    # more alignment data keeps more of it, as the theorem's model says
    assert mi.predicted_level(1000, 100, 50, 0.2) > mi.predicted_level(1000, 10, 50, 0.2)
    need = mi.needed_for(1000, 50, 0.2, 0.6)
    assert mi.predicted_level(1000, need, 50, 0.2) == pytest.approx(0.6)
    with pytest.raises(ValueError, match="target"):
        mi.needed_for(1000, 50, 0.2, 1.0)


# --------------------------------------------------------------------------- the defences on a tiny model


@pytest.fixture(scope="module")
def tiny():
    world = World()
    base = random_model("nano", len(world.vocabulary), seed=0).eval()
    from elasticity_lab.lm.bases import Base

    return world, Base(base, world.tokenizer(), world, {"test": "tiny"})


def _cfg(**kw):
    return mi.default_config("smoke", n_align=8, n_perturb=(0, 8, 16), n_prompts=8, n_kl=8, n_cost_tokens=256, n_other=4, **kw)


@pytest.mark.parametrize("name", ["none", "replay 0.5", "anchor 0.2", "LoRA", "lr ×0.3", "repeat ×10"])
def test_every_stage2_defence_runs_and_scores_the_same_grid(tiny, name) -> None:
    world, base = tiny
    mitigations = ("none",) if name == "none" else ("none", name)
    cfg = _cfg(mitigations=mitigations)
    t = mi.mitigated_curve(base, cfg, mi.CATALOGUE[name], 0, world)
    assert t["n"].tolist() == [0, 8, 16]
    assert np.isfinite(t[["rule", "likelihood", "kl", "bits_end", "other_end"]].to_numpy()).all()
    if name == "repeat ×10":
        assert (t["align_steps"] == 10).all()


def test_anchor_pulls_a_quarter_of_the_way_back(tiny) -> None:
    world, base = tiny
    m = random_model("nano", len(world.vocabulary), seed=5)
    anchor = {k: v.detach().clone() for k, v in base.model.named_parameters()}
    before = sum(float((p.detach() - anchor[k]).abs().sum()) for k, p in m.named_parameters())
    mi.pull_back(m, anchor, 0.25)
    after = sum(float((p.detach() - anchor[k]).abs().sum()) for k, p in m.named_parameters())
    assert after == pytest.approx(0.75 * before, rel=1e-4)


def test_anchor_lowers_the_drift_from_the_aligned_model(tiny) -> None:
    """With a strong anchor the perturbation moves the model less (KL to the base stays nearer its n = 0 value)."""
    world, base = tiny
    free = mi.mitigated_curve(base, _cfg(mitigations=("none",)), mi.CATALOGUE["none"], 0, world)
    held = mi.mitigated_curve(base, _cfg(mitigations=("none", "anchor 0.2")), mi.CATALOGUE["anchor 0.2"], 0, world)
    assert free["kl"].iloc[0] == pytest.approx(held["kl"].iloc[0], rel=1e-6)  # the same stage 1
    assert abs(held["likelihood"].iloc[-1] - held["likelihood"].iloc[0]) < abs(free["likelihood"].iloc[-1] - free["likelihood"].iloc[0])


# --------------------------------------------------------------------------- validation and presets


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"mitigations": ("replay 0.5",)}, "mitigations"),
    ({"mitigations": ("none", "magic")}, "mitigations entry"),
    ({"seeds": (0,)}, "seeds"),
    ({"n_perturb": (8, 16, 32)}, "n_perturb"),
    ({"n_perturb": (0, 5, 16)}, "n_perturb"),
    ({"lr": 0.0}, "lr"),
    ({"scale": "huge"}, "scale"),
])
def test_invalid_parameters_name_themselves(kwargs, name) -> None:
    with pytest.raises(ValueError, match=name):
        mi.MitigationConfig(**kwargs)


def test_mitigation_fields_are_validated() -> None:
    with pytest.raises(ValueError, match="anchor"):
        mi.Mitigation(anchor=1.5)
    with pytest.raises(ValueError, match="anchor"):
        mi.Mitigation(anchor=0.1, method="lora")
    with pytest.raises(ValueError, match="world_refusal"):
        mi.Mitigation(world_refusal=2.0)


def test_presets_are_data_with_three_seeds_at_reader() -> None:
    assert set(mi.SCALE_PRESETS) == {"smoke", "reader", "full"}
    reader = mi.default_config("reader")
    assert len(reader.seeds) >= 3 and reader.mitigations[0] == "none" and reader.pretrain_seeds
    families = {mi.CATALOGUE[m].family for m in reader.mitigations}
    assert families == set(mi.FAMILIES)
    assert set(mi.default_config("full").mitigations) == set(mi.CATALOGUE)
    assert mi.default_config("smoke", n_seeds=3).seeds == (0, 1, 2)


# --------------------------------------------------------------------------- CLI


def test_cli_at_smoke_scale(tmp_path) -> None:
    out = tmp_path / "m.json"
    env = dict(os.environ, ELASTICITY_CACHE=os.environ.get("ELASTICITY_CACHE", str(tmp_path / "cache")), TQDM_DISABLE="1")
    proc = subprocess.run([sys.executable, "-m", "elasticity_lab", "run", "mitigation", "--scale", "smoke", "--json", str(out)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text())
    table = pd.DataFrame(data["tables"]["table"])
    assert table["mitigation"].iloc[0] == "none" and set(mi.default_config("smoke").mitigations) == set(table["mitigation"])
    verdicts = pd.DataFrame(data["tables"]["verdicts"])
    assert {"mitigation", "verdict", "cost", "protection"} <= set(verdicts.columns) and len(verdicts) >= len(table) - 1
    assert set(verdicts["verdict"]) <= {mi.STICKS, mi.NOT_STICK, "undecided", "not run"}
    assert data["tables"]["theory"] and "nan" not in data["summary"]["verdict_text"].lower()


def test_pretraining_seeds_follow_the_fine_tuning_seed_only_when_asked() -> None:
    m = mi.CATALOGUE["world 0.8 early"]
    off, on = mi.default_config("reader", pretrain_seeds=False), mi.default_config("reader")
    assert mi.base_spec(off, m, 2).seed == 0 and mi.base_spec(on, m, 2).seed == 2
    spec = mi.base_spec(on, m, 1)
    assert spec.revision == "light" and dict(spec.world) == {"harmful_refusal": 0.8}
    assert mi.base_spec(on, mi.CATALOGUE["none"], 1).seed == 1  # the baseline too: the pairs share a pre-training seed


def test_the_baseline_is_the_rebound_protocol_exactly(tiny) -> None:
    """With no mitigation, a curve equals the rebound experiment's own staged_curve (same stages, seeds and scores)."""
    from elasticity_lab.experiments import rebound as rb

    world, base = tiny
    cfg = _cfg(mitigations=("none",))
    mine = mi.mitigated_curve(base, cfg, mi.CATALOGUE["none"], 1, world)
    suite = MicroTask(base.world, "safety")
    probe = suite.probe(cfg.n_prompts, cfg.n_kl)
    theirs = rb.staged_curve(base.model, base.tokenizer, suite, probe, suite.data("aligned", cfg.n_align, 1),
                             suite.data("unaligned", cfg.n_perturb[-1], 1), cfg.n_perturb, lr=cfg.lr,
                             align_batch_size=cfg.align_batch_size, perturb_batch_size=cfg.perturb_batch_size, seed=1)
    cols = ["n", "rule", "likelihood", "kl", "align_steps", "base_rule", "base_likelihood"]
    pd.testing.assert_frame_equal(mine[cols], theirs[cols])


# --------------------------------------------------------------------------- the start-level confound and the steps control


def _per_with_start(starts: dict[str, float], aucs: dict[str, float], seeds=(0, 1, 2)) -> pd.DataFrame:
    rows = []
    for s in seeds:
        for name in starts:
            rows.append({"mitigation": name, "family": mi.CATALOGUE[name].family, "seed": s, "start": starts[name] + 0.01 * s,
                         "end": 0.0, "auc": aucs[name] + 0.002 * s * (name != "none"), "base_level": 0.2, "n_half": 10.0,
                         "bits_end": 2.0, "other_end": 0.5})
    return pd.DataFrame(rows)


def test_a_higher_start_alone_is_not_called_sticking_relative_to_the_start() -> None:
    # world 0.8 starts twice as high and keeps the same share of its start: Δ area says sticks, relative says not
    per = _per_with_start({"none": 0.4, "world 0.8": 0.8, "replay 0.5": 0.4}, {"none": 0.1, "world 0.8": 0.2, "replay 0.5": 0.3})
    v = mi.verdict_table(mi.summary_table(per), mi.default_config("smoke"), per).set_index("mitigation")
    assert v.loc["world 0.8", "verdict"] == mi.STICKS and bool(v.loc["world 0.8", "starts_higher"])
    assert v.loc["world 0.8", "verdict_rel"] == mi.NOT_STICK
    assert v.loc["replay 0.5", "verdict_rel"] == mi.STICKS and not bool(v.loc["replay 0.5", "starts_higher"])
    text = mi.start_text(v.reset_index())
    assert "world 0.8" in text and "replay 0.5" not in text and "nan" not in text.lower()


def test_start_text_says_no_confound_when_starts_match() -> None:
    per = _per_with_start({"none": 0.4, "replay 0.5": 0.4}, {"none": 0.1, "replay 0.5": 0.3})
    v = mi.verdict_table(mi.summary_table(per), mi.default_config("smoke"), per)
    assert "not confounded" in mi.start_text(v)


def test_kept_share_leaves_out_starts_near_zero() -> None:
    assert mi.kept_share(0.2, 0.8) == pytest.approx(0.25) and math.isnan(mi.kept_share(0.01, 0.02))


def test_steps_text_credits_steps_or_data_from_the_contrast() -> None:
    steps = _per({"data ×10": (0.2, 0.0, 0.0), "repeat ×10": (0.2, 0.0, 0.0)}, noise=0.001)
    v = mi.verdict_table(mi.summary_table(steps), mi.default_config("smoke"), steps)
    assert "not from the extra data" in mi.steps_text(v)
    data = _per({"data ×10": (0.4, 0.0, 0.0), "repeat ×10": (0.1, 0.0, 0.0)}, noise=0.001)
    v = mi.verdict_table(mi.summary_table(data), mi.default_config("smoke"), data)
    assert "More data does more than more steps" in mi.steps_text(v)
    assert "not run" in mi.steps_text(v[v["family"] != "contrast"])


def test_steps_text_credits_no_steps_when_the_data_condition_has_no_gain() -> None:
    flat = _per({"data ×10": (0.0, 0.0, 0.0), "repeat ×10": (0.0, 0.0, 0.0)}, noise=0.001)
    v = mi.verdict_table(mi.summary_table(flat), mi.default_config("smoke"), flat)
    text = mi.steps_text(v)
    assert "no gain for the data or the steps to explain" in text and "comes from its extra alignment steps" not in text


def test_steps_text_credits_neither_when_the_contrast_is_undecided() -> None:
    # the data adds 0.05 on average but the seeds scatter by 0.1: the contrast includes 0 and a gain that matters,
    # so the text must not credit the steps alone (nor the data)
    wide = _per({"data ×10": (0.25, 0.0, 0.0), "repeat ×10": (0.2, 0.0, 0.0)}, noise=0.1)
    v = mi.verdict_table(mi.summary_table(wide), mi.default_config("smoke"), wide)
    assert (v.loc[v["family"] == "contrast", "verdict"] == "undecided").all()
    text = mi.steps_text(v)
    assert "undecided at this scale" in text and "account for" not in text and "not from the extra data" not in text
    assert "More data does more" not in text


def test_theory_text_reads_measured_against_predicted_from_the_interval() -> None:
    row = {"mitigation": "none", "n_align": 32, "n_pretrain": 1000.0, "n_perturb": 128, "predicted_start": 0.21,
           "predicted_end": 0.2, "measured_start": 0.45, "n_align_needed_for_half": 900.0}
    below = pd.DataFrame([{**row, "measured_end": 0.0, "measured_end_low": 0.0, "measured_end_high": 0.05}])
    inside = pd.DataFrame([{**row, "measured_end": 0.2, "measured_end_low": -0.1, "measured_end_high": 0.5}])
    above = pd.DataFrame([{**row, "measured_end": 0.5, "measured_end_low": 0.4, "measured_end_high": 0.6}])
    assert "below the prediction" in mi.theory_text(below)
    assert "includes the prediction" in mi.theory_text(inside)
    assert "above the prediction" in mi.theory_text(above)
