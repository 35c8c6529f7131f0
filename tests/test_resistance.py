"""Resistance experiment: pairing, determinism, summary statistics, validation, the hub path on local stand-ins, the CLI."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from elasticity_lab.experiments import resistance as rs
from elasticity_lab.lm.metrics import answer_distribution, teacher_student_gap
from elasticity_lab.lm.hub import HubUnreachableError
from elasticity_lab.lm.presets import random_model
from elasticity_lab.microworld.world import World

ROOT = Path(__file__).resolve().parent.parent
TINY = rs.ResistanceConfig(bases=("micro-smoke",), tasks=("safety",), seeds=(0,), n_train=64, n_queries=16)


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ELASTICITY_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_each_direction_trains_on_the_other_checkpoints_answers(cache, monkeypatch) -> None:
    """A spy on generate and sft: every pair fine-tune trains the student on the teacher's answers, never its own."""
    answers_of: dict[int, list[str]] = {}
    calls: list[tuple[int, list[str]]] = []
    from elasticity_lab.experiments.resistance import runs

    real_generate, real_sft = runs.generate, runs.sft

    def spy_generate(model, tok, prompts, **kw):
        out = real_generate(model, tok, prompts, **kw)
        if not kw.get("greedy"):  # stage 1 measures its snapshots' behaviour greedily; TINY's answers are low_temp
            answers_of[id(model)] = out
        return out

    def spy_sft(model, tok, examples, config=None, **kw):
        if "checkpoint_fractions" not in kw:  # a pair fine-tune, not stage 1
            calls.append((id(model), [r for _, r in examples]))
        return real_sft(model, tok, examples, config, **kw)

    monkeypatch.setattr(runs, "generate", spy_generate)
    monkeypatch.setattr(runs, "sft", spy_sft)
    result = rs.run_resistance(TINY, progress=False)
    assert len(calls) == 6 and len(answers_of) == 3
    model_ids = list(answers_of)  # generation order: θ1, θ2, θ3
    trained = set()
    for student_id, responses in calls:
        teachers = [m for m in model_ids if answers_of[m] == responses and m != student_id]
        assert teachers, "a fine-tune trained on answers that no other checkpoint wrote"
        assert student_id in model_ids
        trained.add((model_ids.index(student_id) + 1, model_ids.index(teachers[0]) + 1))
    # identical answers of two checkpoints would make the teacher ambiguous; the table says which one was used
    table = result.table
    assert set(zip(table["student"], table["teacher"])) == {(1, 2), (2, 1), (2, 3), (3, 2), (1, 3), (3, 1)}
    assert (table.loc[table["direction"] == "forward", "student"] < table.loc[table["direction"] == "forward", "teacher"]).all()
    assert (table.loc[table["direction"] == "inverse", "student"] > table.loc[table["direction"] == "inverse", "teacher"]).all()
    assert trained <= {(1, 2), (2, 1), (2, 3), (3, 2), (1, 3), (3, 1)} and len(trained) >= 3
    # same number of examples and steps in both directions
    assert table["n_examples"].nunique() == 1 and table["steps"].nunique() == 1


def test_same_seed_same_table_and_the_cache_trains_nothing(tmp_path, monkeypatch) -> None:
    tables = []
    for name in ("a", "b"):
        monkeypatch.setenv("ELASTICITY_CACHE", str(tmp_path / name))
        tables.append(rs.run_resistance(TINY, progress=False).table)
    pd.testing.assert_frame_equal(tables[0], tables[1], check_exact=True)
    t = tables[0]
    assert np.allclose(t["excess_loss"], t["mean_loss"] - t["answer_entropy"])
    assert (t["kl_start"] >= -1e-6).all() and (t["answer_entropy"] >= 0).all()
    from elasticity_lab.experiments.resistance import runs

    monkeypatch.setattr(runs, "sft", lambda *a, **k: pytest.fail("a cached run must not train"))
    pd.testing.assert_frame_equal(rs.run_resistance(TINY, progress=False).table, tables[1], check_exact=True)


def _hand_table() -> pd.DataFrame:
    """Two cells, three seeds: in the first inverse is lower on every seed, in the second on one seed."""
    rows = []
    for pair, diffs in (("1-2", (-0.1, -0.2, -0.3)), ("2-3", (-0.1, 0.2, 0.3))):
        for seed, d in enumerate(diffs):
            fwd = 1.0 + seed
            for direction, value in (("forward", fwd), ("inverse", fwd + d)):
                rows.append({"base": "b", "answer_mode": "greedy", "task": "safety", "pair": pair, "seed": seed,
                             "direction": direction, "mean_loss": value})
    return pd.DataFrame(rows)


def test_summary_statistics_on_a_hand_made_table() -> None:
    s = rs.summarize(_hand_table(), metrics=("mean_loss",)).set_index("pair")
    a, b = s.loc["1-2"], s.loc["2-3"]
    assert a["forward_mean"] == pytest.approx(2.0) and a["forward_std"] == pytest.approx(1.0)
    assert a["inverse_mean"] == pytest.approx(1.8) and a["diff_mean"] == pytest.approx(-0.2) and a["diff_std"] == pytest.approx(0.1)
    assert a["seeds_inverse_lower"] == 3 and bool(a["inverse_lower"])
    assert a["sign_p"] == pytest.approx(0.25)  # 3 of 3 under a fair coin, two-sided
    # paired t on the differences (-0.1, -0.2, -0.3): t = -0.2 / (0.1 / √3)
    t = -0.2 / (0.1 / math.sqrt(3))
    from scipy import stats

    assert a["t_p"] == pytest.approx(2 * stats.t.sf(abs(t), 2))
    assert b["seeds_inverse_lower"] == 1 and not bool(b["inverse_lower"]) and b["sign_p"] == pytest.approx(1.0)
    frac = rs.fraction_inverse_lower(rs.summarize(_hand_table(), metrics=("mean_loss",)))
    assert frac.loc[0, "cells"] == 2 and frac.loc[0, "fraction"] == pytest.approx(0.5) and frac.loc[0, "all_seeds_agree"] == pytest.approx(0.5)
    table = rs.paper_table(rs.summarize(_hand_table(), metrics=("mean_loss",)))
    assert list(table.columns[:3]) == ["task", "pair", "forward (θk→θl)"] and table.loc[0, "inverse vs forward"] == "↓ (inverse lower in 3/3 seeds)"


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [({"tasks": ("sentiment",)}, "tasks"), ({"answer_modes": ("hot",)}, "answer_modes"), ({"fractions": (0.5, 0.25, 0.75)}, "fractions"),
     ({"fractions": (0.25, 0.5)}, "fractions"), ({"method": "dpo"}, "method"), ({"lr": 0.0}, "lr"), ({"n_queries": 0}, "n_queries"),
     ({"n_train": 16}, "n_train"), ({"seeds": (-1,)}, "seeds"), ({"seeds": ()}, "seeds"), ({"bases": ("nonsense",)}, "bases"),
     ({"bases": ("micro-smoke@tokens-5",)}, "tokens-5"), ({"cut_at": "loss"}, "cut_at"), ({"device": "tpu"}, "device"), ({"data_sources": (("imdb", "x"),)}, "data_sources")],
)
def test_bad_config_names_the_parameter(kwargs, word) -> None:
    with pytest.raises(ValueError, match=word):
        rs.ResistanceConfig(**kwargs)


def test_default_configs_validate_and_pick_little_pretraining() -> None:
    for scale in ("smoke", "reader", "full"):
        assert "main" in rs.default_configs(scale)
    little = rs.little_pretraining("micro-smoke")
    assert little == "micro-smoke@tokens-8192" and rs.parse_base(little).revision == 8192
    with pytest.raises(ValueError, match="n_seeds"):
        rs.default_configs("reader", n_seeds=0)


def test_answer_distribution_matches_transformers_and_the_gap_decomposes() -> None:
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

    z = torch.randn(12, 40, generator=torch.Generator().manual_seed(0))
    ref = TopPLogitsWarper(0.9)(None, TemperatureLogitsWarper(0.7)(None, z)).log_softmax(-1)
    mine = answer_distribution(z, temperature=0.7, top_p=0.9)
    assert torch.equal(torch.isinf(mine), torch.isinf(ref)) and torch.allclose(mine[~torch.isinf(mine)], ref[~torch.isinf(ref)], atol=1e-5)
    world = World()
    tok = world.tokenizer()
    a, b = random_model("nano", len(world.vocabulary), seed=0), random_model("nano", len(world.vocabulary), seed=1)
    q = world.prompts("safety", 6)
    prompts, responses = [x.prompt for x in q], [x.response for x in q]
    same = teacher_student_gap(a, a, tok, prompts, responses)
    assert same["kl"] == pytest.approx(0.0, abs=1e-6) and same["entropy"] == pytest.approx(same["teacher_entropy"])
    g = teacher_student_gap(a, b, tok, prompts, responses, temperature=0.5, top_p=0.9)
    assert g["cross_entropy"] == pytest.approx(g["entropy"] + g["kl"], rel=1e-5) and g["kl"] > 0
    assert teacher_student_gap(a, b, tok, prompts, responses, greedy=True)["entropy"] == 0.0


def _stand_ins(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A tiny Llama + word-level tokenizer saved with save_pretrained, and tiny Alpaca/TruthfulQA/BeaverTails look-alikes."""
    from datasets import Dataset
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = [f"w{i}" for i in range(30)]
    rng = np.random.default_rng(0)

    def text(n: int) -> str:
        return " ".join(rng.choice(words, n))

    data = {
        "instruction": [{"instruction": f"do {text(3)}", "input": text(2) if i % 2 else "", "output": text(4)} for i in range(40)],
        "truthfulness": [{"question": f"what {text(3)} ?", "best_answer": text(3)} for i in range(40)],
        "safety": [{"prompt": f"how {text(3)}", "response": text(4), "is_safe": bool(i % 3)} for i in range(60)],
    }
    sources = {}
    for task, rows in data.items():
        path = tmp_path / f"data_{task}"
        if task == "truthfulness":  # one JSON file, the other loader
            path = tmp_path / "truthful.jsonl"
            path.write_text("\n".join(json.dumps(r) for r in rows))
        else:
            Dataset.from_list(rows).save_to_disk(str(path))
        sources[task] = str(path)
    vocab = ["<pad>", "<unk>", "<s>", "</s>", "User:", "Assistant:", "do", "what", "how", "?"] + words
    core = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(vocab)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>")
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                      intermediate_size=32, max_position_embeddings=64, pad_token_id=0, bos_token_id=2, eos_token_id=3)
    torch.manual_seed(0)
    model_dir = tmp_path / "tiny-llama"
    LlamaForCausalLM(cfg).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    return model_dir, sources


def test_hub_path_on_local_stand_ins(tmp_path, cache) -> None:
    model_dir, sources = _stand_ins(tmp_path)
    cfg = rs.ResistanceConfig(bases=(str(model_dir),), seeds=(0,), n_train=16, n_queries=4, batch_size=4, max_new_tokens=4,
                              method="lora", lr=1e-3, data_sources=tuple(sources.items()), device="cpu")
    result = rs.run_resistance(cfg, progress=False)
    t = result.table
    assert len(t) == 3 * 3 * 2 and t["mean_loss"].notna().all() and t["teacher_score"].isna().all()
    assert set(t["task"]) == set(rs.TASKS) and (t["method"] == "lora").all()
    # BeaverTails' unsafe responses are never SFT data
    train, queries = rs.hub_task_data("safety", sources["safety"], 16, 4, seed=0)
    assert len(train) == 16 and len(queries) == 4 and not set(queries) & {p for p, _ in train}
    with pytest.raises(ValueError, match="n_train"):
        rs.hub_task_data("safety", sources["safety"], 100, 4, seed=0)


def test_unreachable_hub_fails_fast_with_the_offline_alternative(tmp_path, cache, monkeypatch) -> None:
    import time

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model_dir, sources = _stand_ins(tmp_path)
    start = time.perf_counter()
    with pytest.raises(HubUnreachableError, match="reader"):
        rs.load_rows(rs.HUB_DATASETS["instruction"])
    cfg = rs.ResistanceConfig(bases=("Qwen/Qwen2.5-0.5B",), tasks=("safety",), seeds=(0,), n_train=16, n_queries=4, batch_size=4)
    with pytest.raises(HubUnreachableError):
        rs.run_resistance(cfg, progress=False)
    assert time.perf_counter() - start < 20


def test_cli_writes_table_and_summary_at_smoke(tmp_path) -> None:
    out = tmp_path / "r.json"
    env = {**os.environ, "ELASTICITY_CACHE": str(tmp_path / "cache"), "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "elasticity_lab", "run", "resistance", "--scale", "smoke", "--seeds", "1", "--json", str(out)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert {"config", "table", "summary", "main", "controls"} <= set(result)
    assert len(result["table"]) == 3 * 3 * 2 and result["config"]["seeds"] == [0]
    assert {"forward_mean", "inverse_mean", "sign_p", "t_p"} <= set(result["summary"][0])
    assert result["controls"]["config"]["bases"] == ["micro-smoke@random"]
    v = result["verdicts"]
    assert {r["metric"] for r in v} == set(rs.VERDICT_METRICS)
    assert all(r["finding"] in ("shows", "does not show", "undecided", "not run") for r in v)
    assert "nan" not in json.dumps(v).lower() and "nan" not in json.dumps(result["verdict_controls"]).lower()


# --------------------------------------------------------------------------- behaviour milestones


def test_milestones_on_known_share_curves() -> None:
    calls: list[int] = []

    def curve(f):
        def share_at(i: int) -> float:
            calls.append(i)
            return f(i)
        return share_at

    picks, moved = rs.milestone_steps(curve(lambda i: i / 32), 32, (0.25, 0.5, 0.75))
    assert moved and picks == [8, 16, 24]
    assert len(set(calls)) < 20  # a bisection, not a scan of all 33 snapshots
    # a jump from 0 to 1 between snapshots 9 and 10: three distinct checkpoints from the jump on
    picks, moved = rs.milestone_steps(curve(lambda i: float(i >= 10)), 32, (0.25, 0.5, 0.75))
    assert moved and picks == [10, 11, 12]
    # a share that falls from 0.8 to 0.0: the milestones go down the same way
    picks, _ = rs.milestone_steps(curve(lambda i: 0.8 - 0.8 * min(i, 16) / 16), 32, (0.25, 0.5, 0.75))
    assert picks == [4, 8, 12]
    # a base that never moved: no change of behaviour to cut, the fractions of the steps
    picks, moved = rs.milestone_steps(curve(lambda i: 0.02), 32, (0.25, 0.5, 0.75), tolerance=1 / 64)
    assert not moved and picks == [8, 16, 24]
    # a jump at the very end still gives three distinct checkpoints
    picks, _ = rs.milestone_steps(curve(lambda i: float(i >= 32)), 32, (0.25, 0.5, 0.75))
    assert picks == [30, 31, 32]


def test_a_run_cuts_its_checkpoints_at_behaviour_milestones(cache) -> None:
    """micro-smoke at a high learning rate learns to refuse within stage 1: θ1-θ3 are cut where the share crossed its
    targets, and the table records the steps and the shares."""
    cfg = rs.ResistanceConfig(bases=("micro-smoke",), tasks=("safety",), seeds=(0,), n_train=64, n_queries=16, lr=3e-3, batch_size=4)
    result = rs.run_resistance(cfg, progress=False)
    st = result.stage1
    s0, s_end = float(st.loc[st["step"] == 0, "share"].iloc[0]), float(st.loc[st["step"] == 16, "share"].iloc[0])
    assert s_end - s0 > 0.3
    cut = st[st["checkpoint"].isin([1, 2, 3])].sort_values("checkpoint")
    assert list(cut["step"]) == sorted(cut["step"]) and cut["step"].nunique() == 3
    assert np.allclose(cut["target"], [s0 + f * (s_end - s0) for f in cfg.fractions])
    t = result.table
    assert set(zip(t["student"], t["student_step"])) == set(zip(cut["checkpoint"].astype(int), cut["step"]))
    assert (t["base_share"] == s0).all() and (t["final_share"] == s_end).all() and (t["base_seed"] == 0).all()
    summary = rs.milestone_summary(st)
    assert summary.loc[0, "cut by behaviour"] == 1 and summary.loc[0, "θ1 reached"].endswith("%")
    steps = rs.ResistanceConfig(**{**cfg.to_dict(), "cut_at": "steps", "data_sources": ()})
    assert rs.milestone_summary(rs.run_resistance(steps, progress=False).stage1).loc[0, "θ1 reached"] == "cut by steps"


def test_seed_s_starts_from_the_base_pretrained_with_seed_s() -> None:
    cfg = rs.ResistanceConfig(bases=("micro-smoke",), seeds=(0, 1))
    assert rs.unit_spec("micro-smoke", 1, cfg).seed == 1 and rs.unit_spec("micro-smoke@random", 2, cfg).seed == 2
    assert rs.unit_spec("micro-smoke", 1, rs.ResistanceConfig(bases=("micro-smoke",), seed_bases=False)).seed == 0
    assert rs.unit_spec("micro-smoke", 1, cfg).key()["run"] != rs.unit_spec("micro-smoke", 0, cfg).key()["run"]
    rates = rs.default_configs("reader")["base_rates"]
    assert rates.seed_bases  # the base-rate worlds ship pre-training seeds 1 and 2 too
    from elasticity_lab.lm.bases import BaseSpec
    assert rs.unit_spec("micro-refusal50", 1, rates).pretrain_config() == BaseSpec("micro-refusal50-seed1").pretrain_config()


# --------------------------------------------------------------------------- verdicts on tables with known answers


def _verdict_table(bases: dict[str, tuple[float, float, float]], *, seeds: int = 5, agreement: dict[str, float] | None = None,
                   noise: float = 0.01) -> pd.DataFrame:
    """Rows for every base, task, pair and seed: ``bases[name] = (gap, stage-1 lift, spread of the gap over seeds)``; the
    forward value is 1 plus a seed effect, the inverse value the forward one plus the gap."""
    rng = np.random.default_rng(0)
    rows = []
    for base, (gap, lift, spread) in bases.items():
        for task in ("instruction", "safety"):
            for pair in ("1-2", "2-3", "1-3"):
                for seed in range(seeds):
                    fwd = 1.0 + 0.3 * seed
                    d = gap + spread * rng.standard_normal() + noise * rng.standard_normal()
                    agree = (agreement or {}).get(pair, 0.2)
                    for direction, v in (("forward", fwd), ("inverse", fwd + d)):
                        rows.append({"base": base, "answer_mode": "low_temp", "task": task, "pair": pair, "seed": seed,
                                     "direction": direction, "mean_loss": v, "excess_loss": v - 0.5, "kl_start": v - 0.9,
                                     "agreement": agree, "base_share": 0.1, "final_share": 0.1 + lift})
    return pd.DataFrame(rows)


def _verdicts(table: pd.DataFrame, controls=("ctl",)) -> tuple[pd.DataFrame, pd.DataFrame]:
    return rs.verdict_rows(table, pretrained="pre", controls=controls)


def test_a_clear_inverse_advantage_shows_and_survives_a_moved_null_control() -> None:
    v, c = _verdicts(_verdict_table({"pre": (-0.2, 0.6, 0.02), "ctl": (0.0, 0.6, 0.2)}))
    assert (v["finding"] == "shows").all() and (v["verdict"] == "survives").all()
    assert (v["high"] < 0).all() and v["estimate"].to_numpy() == pytest.approx(-0.2, abs=0.03)
    assert c["counted"].all() and (c["decision"] != "shows").all() and c["why"].str.startswith("counted").all()
    assert (v["pair-seeds"] == 30).all() and (v["left out (agree)"] == 0).all()


def test_a_null_table_does_not_show() -> None:
    v, _ = _verdicts(_verdict_table({"pre": (0.0, 0.6, 0.2), "ctl": (0.0, 0.6, 0.2)}))
    assert not (v["finding"] == "shows").any() and set(v["finding"]) <= {"undecided", "does not show"}
    assert (v["low"] < 0).all() and (v["high"] > 0).all()
    v, _ = _verdicts(_verdict_table({"pre": (+0.2, 0.6, 0.02), "ctl": (0.0, 0.6, 0.2)}))  # inverse clearly harder
    assert (v["finding"] == "does not show").all()


def test_a_control_that_shows_it_too_means_it_does_not_survive() -> None:
    v, c = _verdicts(_verdict_table({"pre": (-0.2, 0.6, 0.02), "ctl": (-0.2, 0.6, 0.02)}))
    assert (v["finding"] == "shows").all() and (v["verdict"] == "does not survive").all()
    assert (c["decision"] == "shows").all()


def test_a_control_that_never_moved_is_not_counted() -> None:
    # the control shows the gap, but stage 1 never changed its behaviour: it must not decide anything
    v, c = _verdicts(_verdict_table({"pre": (-0.2, 0.6, 0.02), "ctl": (-0.3, 0.0, 0.02)}))
    assert not c["counted"].any() and c["why"].str.contains("never moved").all() and (c["gap (inverse − forward)"] == "not counted").all() and (c["pre-trained − control"] == "not counted").all()
    assert (v["finding"] == "shows").all() and v["verdict"].str.startswith("undecided").all()
    # with one moved and one unmoved control, only the moved one decides
    t = pd.concat([_verdict_table({"pre": (-0.2, 0.6, 0.02), "light": (0.0, 0.5, 0.2)}),
                   _verdict_table({"random": (-0.3, 0.02, 0.02)})], ignore_index=True)
    v, c = rs.verdict_rows(t, pretrained="pre", controls=("random", "light"))
    assert (v["verdict"] == "survives").all()
    assert dict(zip(c["control"], c["counted"])) == {"random": False, "light": True}


def test_pairs_whose_checkpoints_agree_are_left_out_and_counted() -> None:
    # pair 2-3's checkpoints agree on 95 % of queries, and its gap is large and of the other sign: left out, it cannot
    # hide the finding of the other pairs
    t = _verdict_table({"pre": (-0.2, 0.6, 0.02), "ctl": (0.0, 0.6, 0.2)}, agreement={"2-3": 0.95})
    t.loc[(t["pair"] == "2-3") & (t["direction"] == "inverse"), ["mean_loss", "excess_loss", "kl_start"]] += 5.0
    v, c = _verdicts(t)
    assert (v["left out (agree)"] == 10).all() and (v["pair-seeds"] == 20).all() and (v["finding"] == "shows").all()
    assert (c["left out (agree)"] == 10).all()
    gaps = rs.paired_gaps(t, "mean_loss")
    assert gaps.loc[gaps["pair"] == "2-3", "flagged"].all() and not gaps.loc[gaps["pair"] != "2-3", "flagged"].any()


def test_verdicts_are_words_never_nan() -> None:
    # one seed: no interval can be made; a control not run in this answer mode
    t = _verdict_table({"pre": (-0.2, 0.6, 0.02)}, seeds=1)
    v, c = _verdicts(t)
    text = v.drop(columns=["estimate", "low", "high"]).to_string() + c.to_string()
    assert "nan" not in text.lower() and (v["finding"] == "undecided").all()
    assert (c["why"] == "not run in this answer mode").all()
    prose = rs.verdict_prose(v, c)
    assert "nan" not in prose.lower() and "undecided" in prose
    table = rs.paper_table(rs.summarize(t, metrics=("mean_loss",)))
    assert "nan" not in table.to_string().lower() and "one seed" in table.to_string()
    with pytest.raises(ValueError, match="min_lift"):
        rs.verdict_rows(t, pretrained="pre", min_lift=-1.0)
    with pytest.raises(ValueError, match="max_agreement"):
        rs.paired_gaps(t, "mean_loss", max_agreement=1.5)


def test_a_control_whose_lift_was_not_measured_is_not_said_to_have_never_moved() -> None:
    # a hub or stand-in base has no judge: its lift is NaN, and the reason given must say "not measured", not "never moved"
    t = _verdict_table({"pre": (-0.2, 0.6, 0.02), "ctl": (-0.3, 0.6, 0.02)})
    t.loc[t["base"] == "ctl", ["base_share", "final_share"]] = np.nan
    v, c = _verdicts(t)
    assert not c["counted"].any() and c["why"].str.contains("not measured").all() and not c["why"].str.contains("never moved").any()
    assert v["verdict"].str.startswith("undecided").all()


def test_pairs_that_all_agree_are_undecided_not_not_run() -> None:
    t = _verdict_table({"pre": (-0.2, 0.6, 0.02)}, agreement={"1-2": 0.95, "2-3": 0.95, "1-3": 0.95})
    v, _ = _verdicts(t, controls=())
    assert (v["finding"] == "undecided").all() and (v["gap (inverse − forward)"] == rs.verdicts.ALL_AGREE).all()
    assert "not run" not in rs.verdict_prose(v, pd.DataFrame(columns=["control"]))
    assert rs.gap_words(rs.pooled_gap(rs.paired_gaps(t, "mean_loss"))[0], 0, 0)[1] == "not run"


def test_the_control_prose_names_the_answer_modes_and_what_a_counted_control_showed() -> None:
    t = _verdict_table({"pre": (0.0, 0.6, 0.2), "ctl": (-0.2, 0.6, 0.02)})
    t = pd.concat([t, _verdict_table({"pre": (0.0, 0.6, 0.2)}).assign(answer_mode="greedy")], ignore_index=True)
    v, c = _verdicts(t)
    prose = rs.verdict_prose(v, c)
    assert "not run with greedy answers" in prose and "shows inverse < forward in 3 of 3 versions" in prose
    v, c = _verdicts(_verdict_table({"pre": (0.0, 0.6, 0.2), "ctl": (0.0, 0.6, 0.2)}))
    assert "in 0 of 3 versions" in rs.verdict_prose(v, c)


def test_the_base_rate_prediction_shows_only_where_the_low_world_gap_is_lower() -> None:
    rate = {"pre": 0.2, "ctl": 0.8}
    yes = rs.world_order(_verdict_table({"pre": (-0.3, 0.6, 0.02), "ctl": (0.0, 0.6, 0.02)}), rate, answer_modes=("low_temp",))
    assert (yes["prediction"] == "shows").all() and "shows in 3 of 3" in rs.world_prose(yes)
    no = rs.world_order(_verdict_table({"pre": (0.0, 0.6, 0.02), "ctl": (0.0, 0.6, 0.02)}), rate, answer_modes=("low_temp",))
    assert not (no["prediction"] == "shows").any() and "shows in 0 of 3" in rs.world_prose(no)
    # each count is followed by the versions it counts, not by the rest's "undecided"
    other = rs.world_order(_verdict_table({"pre": (0.3, 0.6, 0.02), "ctl": (0.0, 0.6, 0.02)}), rate, answer_modes=("low_temp",))
    words = rs.world_prose(other)
    assert (other["prediction"] == "does not show").all() and "goes the other way in 3 (" in words
    assert "and is undecided or not run in the rest." in words and "shows in 0 of 3 versions (metric × answer mode), goes" in words
    assert "versions (metric × answer mode) (" in rs.world_prose(yes) and "goes the other way in 0, and" in rs.world_prose(yes)
    gaps = rs.world_gaps(_verdict_table({"pre": (-0.3, 0.6, 0.02), "ctl": (0.0, 0.6, 0.02)}, agreement={p: 0.95 for p in ("1-2", "2-3", "1-3")}),
                         rate, answer_modes=("low_temp",))
    assert (gaps["decision"] == "undecided").all() and "nan" not in gaps.to_string().lower()


def test_the_base_rate_prose_says_whether_its_premise_holds() -> None:
    """The prediction assumes stage 1 moved the lowest-rate world furthest; the sentence checks it on the measured lifts."""
    rate = {"pre": 0.2, "ctl": 0.8}
    holds = rs.world_prose(rs.world_order(_verdict_table({"pre": (-0.3, 0.6, 0.02), "ctl": (0.0, 0.1, 0.02)}), rate,
                                          answer_modes=("low_temp",)))
    assert "Its premise holds: stage 1 lifted the aligned share by +0.60 in the refusal 20% world and by +0.10" in holds
    fails = rs.world_prose(rs.world_order(_verdict_table({"pre": (-0.3, 0.1, 0.02), "ctl": (0.0, 0.6, 0.02)}), rate,
                                          answer_modes=("low_temp",)))
    assert "**Its premise fails here**" in fails and "tests nothing" in fails and "premise holds" not in fails
    no_judge = rs.world_order(_verdict_table({"pre": (-0.3, 0.6, 0.02), "ctl": (0.0, 0.1, 0.02)}).drop(columns=["base_share", "final_share"]),
                              rate, answer_modes=("low_temp",))
    assert "premise" not in rs.world_prose(no_judge) and "nan" not in rs.world_prose(no_judge)


def test_milestone_prose_names_checkpoints_that_landed_together() -> None:
    m = pd.DataFrame([{"base": "b", "task": "safety", "seeds": 3, "cut by behaviour": 3, "θ1 reached": "82%", "θ2 reached": "100%",
                       "θ3 reached": "100%"},
                      {"base": "b", "task": "instruction", "seeds": 3, "cut by behaviour": 3, "θ1 reached": "27%", "θ2 reached": "54%",
                       "θ3 reached": "76%"},
                      {"base": "b", "task": "truthfulness", "seeds": 3, "cut by behaviour": 0, "θ1 reached": "cut by steps",
                       "θ2 reached": "cut by steps", "θ3 reached": "cut by steps"}])
    text = rs.milestone_prose(m)
    assert "safety (θ2/θ3)" in text and "instruction (" not in text and "truthfulness cut by steps" in text


def test_the_base_rate_cell_runs_on_three_worlds_one_of_which_always_agrees() -> None:
    """What chapter 6's base-rate cell does at the reader scale (not run at smoke): three worlds, one with every pair agreeing."""
    t = pd.concat([_verdict_table({"pre": (-0.1, 0.6, 0.02), "mid": (0.0, 0.6, 0.02)}),
                   _verdict_table({"hi": (0.0, 0.6, 0.02)}, agreement={p: 0.95 for p in ("1-2", "2-3", "1-3")})], ignore_index=True)
    rate = {"pre": 0.2, "mid": 0.5, "hi": 0.8}
    order = rs.world_order(t, rate, answer_modes=("low_temp", "sampled"))
    gaps = rs.world_gaps(t, rate, answer_modes=("low_temp",))
    text = order.to_string() + gaps.to_string() + rs.world_prose(order)
    assert "nan" not in text.lower() and "not run" in set(order["prediction"]) and rs.verdicts.ALL_AGREE in set(order["gap difference"])
    assert (gaps.loc[gaps["world"] == "refusal 80%", "gap (inverse − forward)"] == rs.verdicts.ALL_AGREE).all()


def test_a_control_too_noisy_to_tell_does_not_let_the_finding_survive() -> None:
    # the control is moved and counted but its gap spreads so much that it is undecided: the finding cannot survive it
    v, c = _verdicts(_verdict_table({"pre": (-0.2, 0.6, 0.02), "ctl": (-0.1, 0.6, 3.0)}))
    assert (v["finding"] == "shows").all() and (c["decision"] == "undecided").all()
    assert v["verdict"].str.startswith("undecided (not separated from ctl)").all()
    assert c["pre-trained − control"].str.contains(r"\[").all()
