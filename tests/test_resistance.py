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
    assert list(table.columns[:3]) == ["task", "pair", "forward (θk→θl)"] and table.loc[0, "inverse vs forward"] == "↓ 3/3 seeds"


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [({"tasks": ("sentiment",)}, "tasks"), ({"answer_modes": ("hot",)}, "answer_modes"), ({"fractions": (0.5, 0.25, 0.75)}, "fractions"),
     ({"fractions": (0.25, 0.5)}, "fractions"), ({"method": "dpo"}, "method"), ({"lr": 0.0}, "lr"), ({"n_queries": 0}, "n_queries"),
     ({"n_train": 16}, "n_train"), ({"seeds": (-1,)}, "seeds"), ({"seeds": ()}, "seeds"), ({"bases": ("nonsense",)}, "bases"),
     ({"bases": ("micro-smoke@tokens-5",)}, "tokens-5"), ({"device": "tpu"}, "device"), ({"data_sources": (("imdb", "x"),)}, "data_sources")],
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
