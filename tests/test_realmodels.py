"""Chapter 10's runners on local stand-ins: the hub's models and data sets replaced by tiny local copies in their
formats, so the `full` code path runs end to end here at the smoke scale; the offline path answers in one sentence,
fast; the verdict rules say yes and no on synthetic data whose answer is known."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest

from elasticity_lab.experiments import realmodels as rm
from elasticity_lab.lm.hub import HubUnreachableError, dataset_rows, load_pretrained


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    root = tmp_path_factory.mktemp("standins")
    return root, rm.build_standins(root)


@pytest.fixture(scope="module")
def sources(standins):
    root, _ = standins
    return rm.resolve_sources(rm.default_config("smoke", source="standins"), root=root)


def test_standins_are_hub_shaped(standins) -> None:
    root, m = standins
    model, tok = load_pretrained(m["volume"][0])
    assert type(model).__name__ == "GPTNeoXForCausalLM" and tok.pad_token_id is not None
    sizes = [load_pretrained(p)[0] for p in m["size"]]
    assert [type(s).__name__ for s in sizes] == ["LlamaForCausalLM", "LlamaForCausalLM", "Qwen2ForCausalLM"]
    assert list(m["params"].values()) == sorted(m["params"].values()), "size stand-ins must grow"
    assert {"prompt", "response", "is_safe", "category"} <= set(dataset_rows(m["safety"])[0])
    assert {"text", "label"} == set(dataset_rows(m["sentiment"])[0])
    assert {"instruction", "input", "output"} <= set(dataset_rows(m["instruction"])[0])
    assert {"response_0", "is_response_1_safe"} <= set(dataset_rows(m["safety_pku"])[0])
    assert rm.build_standins(root) == m, "a finished build is reused"


def test_unreachable_hub_answers_in_one_sentence_fast(monkeypatch) -> None:
    import socket

    def hang(*args, **kwargs):  # a DNS lookup or a connect that never answers
        time.sleep(60)
        raise OSError("no answer")

    monkeypatch.setattr(socket, "create_connection", hang)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    start = time.perf_counter()
    with pytest.raises(HubUnreachableError) as err:
        rm.resolve_sources(rm.default_config("smoke", source="hub"), timeout=2.0)
    assert time.perf_counter() - start < 10
    text = str(err.value)
    assert text.count(". ") == 0 and text.endswith(".") and "source='auto'" in text


def test_auto_falls_back_to_standins_and_says_so(monkeypatch, standins) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    root, m = standins
    start = time.perf_counter()
    s = rm.resolve_sources(rm.default_config("smoke"), root=root)
    assert time.perf_counter() - start < 10
    assert s.stand_ins and "stand-ins" in s.message and "not from real models" in s.message
    assert [p for p, _ in s.volume] == m["volume"] and s.data["instruction"] == m["instruction"]


def test_bad_config_is_one_sentence() -> None:
    with pytest.raises(ValueError, match="source='cloud'.*auto"):
        rm.RealModelsConfig(source="cloud")
    with pytest.raises(ValueError, match="volume_revisions"):
        rm.RealModelsConfig(volume_revisions=("step1000",))
    with pytest.raises(ValueError, match="n_perturb"):
        rm.RealModelsConfig(n_perturb=(0, 15))
    with pytest.raises(ValueError, match="scale"):
        rm.default_config("huge")


def test_presets_are_data() -> None:
    assert set(rm.SCALE_PRESETS) == {"smoke", "reader", "full", "paper"}
    full = rm.default_config("full")
    assert full.volume_model == "EleutherAI/pythia-160m" and all(r.startswith("step") for r in full.volume_revisions)
    assert "HuggingFaceTB/SmolLM2-135M" in full.size_models and "Qwen/Qwen2.5-0.5B" in full.size_models
    assert full.resistance_method == "lora" and full.precision == "auto" and len(full.seeds) >= 3
    rc = rm.rebound_config(full, f"{full.volume_model}@step1000", {"safety": "x", "sentiment": "y"})
    assert rc.hub_model == "EleutherAI/pythia-160m@step1000" and rc.on_hub
    assert rm.random_copy("EleutherAI/pythia-160m@step1000") == "EleutherAI/pythia-160m@random"


def test_full_runners_end_to_end_on_standins(sources) -> None:
    config = rm.default_config("smoke", source="standins")
    result = rm.run_study(config, sources=sources, progress=False)
    c = result.curves
    assert set(c["axis"]) == {"volume", "size"}
    assert set(c.loc[c["axis"] == "volume", "base_kind"]) == {"pretrained", "random"}
    assert c.groupby(["axis", "base", "seed"]).ngroups == (len(sources.volume) + 1 + len(sources.size)) * len(config.seeds)
    for col in ("rule", "likelihood", "kl"):
        assert c[col].notna().all()
    assert set(result.resistance["base"]) == {"step16", "step1", "step16 (re-initialised)"}
    assert set(result.resistance["method"]) == {"lora"}
    verdicts, controls = result.resistance_verdicts()
    assert len(verdicts) and not verdicts["verdict"].isna().any()
    d = rm.drops(c)
    rows = rm.verdict_rows(d)
    assert len(rows) == 4 and "nan" not in rows.drop(columns=["estimate", "low", "high"]).to_string().lower()
    assert "stand-ins" in rm.verdict_prose(rows, stand_ins=True)
    again = rm.run_study(config, sources=sources, progress=False)  # every part from the cache
    pd.testing.assert_frame_equal(again.curves.drop(columns="seconds"), c.drop(columns="seconds"))


def test_early_drop() -> None:
    assert math.isclose(rm.early_drop([20, 0, 40], [0.5, 0.9, 0.3]), 0.4)
    assert math.isnan(rm.early_drop([0], [0.5]))


def _synthetic(volume_drop, random_drop, size_drop, seeds=(0, 1, 2, 3), noise=0.01):
    rng = np.random.default_rng(0)
    rows = []
    for s in seeds:
        for i, x in enumerate((1000, 8000, 36000, 143000)):
            rows.append(dict(axis="volume", base=f"step{x}", base_kind="pretrained", x=x, seed=s, metric="likelihood",
                             drop=volume_drop(i) + noise * rng.standard_normal()))
        rows.append(dict(axis="volume", base="random", base_kind="random", x=143000, seed=s, metric="likelihood",
                         drop=random_drop + noise * rng.standard_normal()))
        for i, x in enumerate((135e6, 360e6, 494e6)):
            rows.append(dict(axis="size", base=str(x), base_kind="pretrained", x=x, seed=s, metric="likelihood",
                             drop=size_drop(i) + noise * rng.standard_normal()))
    return pd.DataFrame(rows)


def test_verdicts_say_yes_where_the_effect_is_there() -> None:
    rows = rm.verdict_rows(_synthetic(lambda i: 0.1 * i, 0.0, lambda i: 0.2 * i)).set_index("claim")
    assert rows.loc["the drop rises with pre-training volume", "verdict"] == "survives"
    assert rows.loc["the last checkpoint springs back faster than the earliest (light control)", "verdict"] == "shows"
    assert rows.loc["the drop rises with model size", "verdict"] == "shows"


def test_verdicts_say_no_where_it_is_not() -> None:
    rows = rm.verdict_rows(_synthetic(lambda i: 0.3 - 0.1 * i, 0.5, lambda i: -0.2 * i)).set_index("claim")
    assert rows.loc["the drop rises with pre-training volume", "verdict"] == "does not show"
    assert rows.loc["the last checkpoint springs back faster than its re-initialised copy (random init)", "verdict"] == "does not show"
    assert rows.loc["the drop rises with model size", "verdict"] == "does not show"
    # a trend that shows but a random copy that springs back even faster: it does not survive its control
    rows = rm.verdict_rows(_synthetic(lambda i: 0.1 * i, 0.9, lambda i: 0.0)).set_index("claim")
    assert rows.loc["the drop rises with pre-training volume", "verdict"] == "does not survive"


def test_verdicts_not_run_in_words() -> None:
    rows = rm.verdict_rows(pd.DataFrame(columns=list(rm.verdicts.DROP_COLUMNS) if hasattr(rm, "verdicts") else
                                        ["axis", "base", "base_kind", "x", "seed", "metric", "drop"]))
    assert set(rows["verdict"]) == {"not run"} and "nan" not in rows["estimate [95% interval]"].str.lower().tolist()


def test_saturated_scores_leave_every_claim_undecided() -> None:
    # scores pinned at 1 before and after the first batch: the "drops" are rounding residue that happens to rise with
    # volume and size (the reader-scale stand-ins looked exactly like this), so a rank rule alone would say "shows"
    d = _synthetic(lambda i: 10.0 ** (i - 16), 1e-16, lambda i: 10.0 ** (i - 16), noise=0.0)
    d["start"], d["after"], d["saturated"] = 1.0, 1.0 - d["drop"], True
    rows = rm.verdict_rows(d).set_index("claim")
    assert (rows["verdict"] == "undecided (saturated)").all()
    assert rows["note"].str.contains("rounding residue").all()
    assert "0 of 4 claims show" in rm.verdict_prose(rows.reset_index(), stand_ins=True)


def test_drops_flag_saturated_curves_only() -> None:
    curves = pd.DataFrame(dict(axis="size", base=["a"] * 2 + ["b"] * 2, base_kind="pretrained", x=[1, 1, 2, 2], task="safety",
                               n_align=8, seed=0, n=[0, 8, 0, 8], likelihood=[1.0, 1.0 - 1e-15, 0.9, 0.7], rule=[0.5, 0.4, 0.5, 0.4]))
    d = rm.drops(curves).set_index(["base", "metric"])
    assert d.loc[("a", "likelihood"), "saturated"] and not d.loc[("b", "likelihood"), "saturated"]
    assert not d.loc[("a", "rule"), "saturated"]


def test_three_points_that_agree_say_so() -> None:
    rows = rm.verdict_rows(_synthetic(lambda i: 0.1 * i, 0.0, lambda i: 0.2 * i, noise=0.0)).set_index("claim")
    size = rows.loc["the drop rises with model size"]
    assert size["verdict"] == "shows" and "only 3 bases per seed" in size["note"] and "no width" in size["note"]
    assert "no width" in rows.loc["the drop rises with pre-training volume", "note"]


def test_saturation_sentence_names_the_flat_bases_only() -> None:
    curves = pd.DataFrame(dict(base=["a", "a", "b", "b"], base_likelihood=[1.0, 1.0, 0.7, 0.7]))
    text = rm.saturation_sentence(curves)
    assert "1 of 2 bases" in text and "(a)" in text and text.endswith(".")
    assert rm.saturation_sentence(curves.assign(base_likelihood=0.5)) == ""
