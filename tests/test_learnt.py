"""The "has the base learnt this task?" rule (experiments.learnt) on synthetic rates whose answer is known, both ways."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from elasticity_lab.experiments import learnt as ln
from elasticity_lab.experiments.stats import NOT_RUN, UNDECIDED, Interval


def rates(world: str, behaviour: str, values: list[float], pretraining: float, n_prompts: int = 512) -> pd.DataFrame:
    return pd.DataFrame({"world": world, "base": [f"b{s}" for s in range(len(values))], "pretrain_seed": list(range(len(values))),
                         "behaviour": behaviour, "model_rate": values, "likelihood_score": values, "pretraining_rate": pretraining,
                         "n_prompts": n_prompts})


def test_rates_near_the_pretraining_rate_are_learnt() -> None:
    table = ln.learnt_table(rates("micro", "sentiment", [0.29, 0.30, 0.31], 0.30))
    assert table["decision"].tolist() == [ln.LEARNT]
    assert table["low"].iloc[0] > -ln.TOLERANCE and table["high"].iloc[0] < ln.TOLERANCE


def test_rates_far_below_the_pretraining_rate_are_not_learnt() -> None:
    """Chapter 5's case: a base that follows instructions about 0.14 of the time against a pre-training rate of 0.30."""
    table = ln.learnt_table(rates("micro", "instruction", [0.14, 0.13, 0.16], 0.30))
    assert table["decision"].tolist() == [ln.NOT_LEARNT]
    assert table["high"].iloc[0] < -ln.TOLERANCE


def test_rates_far_above_are_not_learnt_either() -> None:
    assert ln.learnt_table(rates("w", "sentiment", [0.50, 0.52, 0.49], 0.30))["decision"].iloc[0] == ln.NOT_LEARNT


def test_seeds_that_disagree_are_undecided() -> None:
    assert ln.learnt_table(rates("w", "sentiment", [0.10, 0.30, 0.45], 0.30))["decision"].iloc[0] == UNDECIDED


def test_seeds_that_agree_by_chance_keep_the_prompts_sampling_noise() -> None:
    """Two smoke bases that both answered 8 of 32 prompts: the seeds' spread is 0, the prompts' noise is not."""
    iv = ln.gap_interval([0.25, 0.25], 0.30, seeds=[0, 1], n_prompts=32)
    assert iv.high - iv.low > 0.2 and "widened" in iv.method
    assert ln.decide_learnt(iv) == UNDECIDED
    wide = ln.gap_interval([0.14, 0.13, 0.16], 0.30, seeds=[0, 1, 2], n_prompts=512)
    assert "widened" not in wide.method  # the seeds' spread is the wider one here


def test_one_seed_uses_the_prompts_sampling_noise() -> None:
    far = ln.gap_interval([0.14], 0.30, n_prompts=512)
    assert "prompts" in far.method and ln.decide_learnt(far) == ln.NOT_LEARNT
    near = ln.gap_interval([0.30], 0.30, n_prompts=4096)
    assert ln.decide_learnt(near) == ln.LEARNT
    assert ln.decide_learnt(ln.gap_interval([0.30], 0.30, n_prompts=32)) == UNDECIDED  # 32 prompts cannot tell
    assert ln.decide_learnt(Interval(math.nan, math.nan, math.nan, n=0)) == NOT_RUN


def test_bad_input_is_one_sentence() -> None:
    with pytest.raises(ValueError, match="tolerance"):
        ln.decide_learnt(Interval(0.0, -0.01, 0.01, n=3), tolerance=0)
    with pytest.raises(ValueError, match="pretraining_rate"):
        ln.gap_interval([0.3, 0.3], 1.5)
    with pytest.raises(ValueError, match="not a micro-world base"):
        ln.measure_rates({"hub": ["org/model"]}, ("safety",))
    with pytest.raises(ValueError, match="non-empty"):
        ln.measure_rates({}, ("safety",))


def chapter_table() -> pd.DataFrame:
    return ln.learnt_table(pd.concat([
        rates("micro", "safety (harmful)", [0.16, 0.18, 0.20], 0.20),
        rates("micro", "safety (benign)", [0.03, 0.03, 0.03], 0.03),
        rates("micro", "instruction", [0.14, 0.13, 0.16], 0.30),
        rates("micro", "truthfulness", [0.29, 0.30, 0.31], 0.30),
    ], ignore_index=True))


def test_a_task_is_not_learnt_where_any_of_its_behaviours_is_not() -> None:
    status = ln.task_status(chapter_table(), ["instruction", "truthfulness", "safety", "safety/harmful"]).set_index("task", drop=False)
    assert status.iloc[0]["decision"] == ln.NOT_LEARNT and "rate 0.14" in status.iloc[0]["why"] and "vs 0.30" in status.iloc[0]["why"]
    assert status.iloc[1]["decision"] == ln.LEARNT
    assert status.iloc[2]["decision"] == UNDECIDED  # harmful undecided, benign learnt
    assert ln.unlearnt(status) == {"instruction": status.iloc[0]["why"]}
    strict = ln.unlearnt(status, strict=True)  # only what is shown to be learnt counts
    assert list(strict) == ["instruction", "safety"] and strict["safety"].startswith("undecided: ")


def test_counted_rows_leave_out_only_the_unlearnt_tasks() -> None:
    table = pd.DataFrame({"task": ["instruction", "safety", "truthfulness", "instruction"], "gap": [1.0, 2.0, 3.0, 4.0]})
    kept = ln.counted_rows(table, {"instruction": "rate 0.14 vs 0.30"})
    assert kept["task"].tolist() == ["safety", "truthfulness"]
    assert ln.counted_rows(table, {})["task"].tolist() == table["task"].tolist()  # nothing unlearnt: everything counts
    with pytest.raises(ValueError, match="column"):
        ln.counted_rows(table, [], column="nope")


def test_verdict_rows_of_an_unlearnt_task_are_marked_not_counted() -> None:
    rows = [{"finding": "sentiment: returns to the base's own level", "shows": "does not show", "survives_controls": "n/a",
             "estimate": "-0.29", "evidence": "plateau"},
            {"finding": "safety: KL after alignment grows with N_a", "shows": "shows", "survives_controls": "undecided",
             "estimate": "+1.00", "evidence": "spearman"},
            {"finding": "attractor (neutral perturbation), from above: settles back", "shows": "undecided",
             "survives_controls": "n/a", "estimate": "x", "evidence": "y"}]
    marked = ln.mark_not_counted(rows, {"sentiment": "rate 0.10 vs 0.30"})
    assert [r["shows"] for r in marked] == [ln.NOT_COUNTED, "shows", "undecided"]
    assert "has not learnt this task (rate 0.10 vs 0.30)" in marked[0]["evidence"] and "does not show" in marked[0]["evidence"]
    assert ln.count_verdicts(marked)[ln.NOT_COUNTED] == 1 and ln.count_verdicts(rows)[ln.NOT_COUNTED] == 0
    assert ln.mark_not_counted(rows, {}) == rows  # nothing unlearnt: the rows are unchanged
    assert [r["shows"] for r in ln.mark_not_counted(rows, {"safety": "r"})] == ["does not show", ln.NOT_COUNTED, "undecided"]
    assert [r["shows"] for r in ln.mark_not_counted(rows, {ln.ATTRACTOR: "r"})] == ["does not show", "shows", ln.NOT_COUNTED]
    text = ln.not_counted_text(marked)
    assert "sentiment: returns" in text and "never learnt" in text and ln.not_counted_text(rows) == ""


def test_prose_says_which_tasks_are_learnt_and_never_nan() -> None:
    table = chapter_table()
    text = ln.learnt_prose(table)
    assert "**not learnt**: instruction (rate 0.14" in text and "learnt: " in text and "nan" not in text
    status = ln.task_status(table, ["instruction", "truthfulness", "safety"])
    words = ln.exclusion_prose(status, what="the verdicts")
    assert "Not counted in the verdicts" in words and "*instruction*" in words and "never learnt" in words and "nan" not in words
    none = ln.exclusion_prose(ln.task_status(table, ["instruction"]), what="the verdict")
    assert "no verdict" in none and "*instruction*" in none
    ok = ln.exclusion_prose(ln.task_status(table, ["truthfulness"]))
    assert "Every task" in ok
    assert "not measured" in ln.learnt_prose(table.iloc[0:0])


def test_measure_rates_reads_a_shipped_base_and_caches_it() -> None:
    r = ln.measure_rates({"micro": ["micro-smoke"]}, ("instruction", "safety/harmful"), n_prompts=8, progress=False)
    assert r["behaviour"].tolist() == ["instruction", "safety (harmful)", "safety (benign)"]
    assert r["pretraining_rate"].tolist() == [0.3, 0.2, 0.03] and r["model_rate"].between(0, 1).all()
    again = ln.measure_rates({"micro": ["micro-smoke"]}, ("instruction",), n_prompts=8, progress=False)
    assert again["model_rate"].iloc[0] == r["model_rate"].iloc[0]
    table = ln.learnt_table(r)
    assert set(table["decision"]) <= {ln.LEARNT, ln.NOT_LEARNT, UNDECIDED} and "one pre-training seed" in ln.learnt_prose(table)


def test_exclusion_prose_names_a_behaviour_only_where_it_is_not_the_task() -> None:
    table = ln.learnt_table(pd.concat([
        rates("micro", "instruction", [0.04, 0.21, 0.38], 0.30),          # undecided, one behaviour: the task's own name
        rates("micro", "safety (harmful)", [0.10, 0.20, 0.30], 0.20),     # undecided: the behaviour is not the task's name
        rates("micro", "safety (benign)", [0.03, 0.03, 0.03], 0.03),
        rates("micro", "truthfulness", [0.10, 0.11, 0.12], 0.30),         # not learnt
    ], ignore_index=True))
    words = ln.exclusion_prose(ln.task_status(table, ["instruction", "safety", "truthfulness"]), what="the verdict")
    assert "*instruction* (rate 0.21" in words and "undecided: instruction:" not in words and "instruction: rate" not in words
    assert "*safety* (safety (harmful): rate 0.20" in words  # the behaviour behind a two-behaviour task stays named
    assert "this task (rate 0.11" in words and "truthfulness: rate" not in words
    not_run = ln.exclusion_prose(ln.task_status(table, ["sentiment", "truthfulness"]))
    assert "*sentiment* (not measured; not run)" in not_run
