"""Chapter 6's checks accept the reference solutions and reject typical wrong answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from elasticity_lab.exercises import ch06, solutions


def test_sign_test() -> None:
    assert ch06.check_sign_test(solutions.sign_test_p).passed
    assert not ch06.check_sign_test(lambda d: solutions.sign_test_p(d) / 2).passed  # one-sided
    assert not ch06.check_sign_test(lambda d: solutions.sign_test_p([x if x != 0 else 1.0 for x in d])).passed  # ties counted


def test_answer_entropy() -> None:
    assert ch06.check_answer_entropy(solutions.answer_entropy).passed
    assert not ch06.check_answer_entropy(lambda z, t, p: solutions.answer_entropy(z, t, 1.0)).passed  # no top-p
    assert not ch06.check_answer_entropy(lambda z, t, p: solutions.answer_entropy(z, t, p) / math.log(2)).passed  # bits

    def top_p_first(z, t, p):
        q = np.exp(z - np.max(z))
        q /= q.sum()
        order = np.argsort(q)
        remove = np.cumsum(q[order]) <= 1 - p
        remove[-1] = False
        z = np.array(z, dtype=float)
        z[order[remove]] = -np.inf
        return solutions.answer_entropy(z, t, 1.0)

    assert not ch06.check_answer_entropy(top_p_first).passed


def test_fraction_inverse_lower() -> None:
    assert ch06.check_fraction_inverse_lower(solutions.fraction_inverse_lower).passed
    per_seed = lambda t: float((t[t.direction == "inverse"]["loss"].to_numpy() < t[t.direction == "forward"]["loss"].to_numpy()).mean())  # noqa: E731
    assert not ch06.check_fraction_inverse_lower(per_seed).passed
    at_most = lambda t: float((lambda m: (m["inverse"] <= m["forward"]).mean())(
        t.groupby(["task", "pair", "direction"])["loss"].mean().unstack("direction")))  # noqa: E731
    assert not ch06.check_fraction_inverse_lower(at_most).passed  # a tie is not "inverse lower"


def test_stub_is_not_attempted() -> None:
    def stub(*args):
        raise NotImplementedError

    assert not ch06.check_sign_test(stub).attempted


def _resistance_table(mode: str, entropies: tuple[float, float], losses: tuple[float, float]) -> pd.DataFrame:
    rows = []
    for task in ("safety", "truth"):
        for seed in range(3):
            for direction, h, loss in zip(("forward", "inverse"), entropies, losses):
                rows.append({"base": "b", "task": task, "pair": "1-2", "seed": seed, "answer_mode": mode, "direction": direction,
                             "answer_entropy": h, "mean_loss": loss})
    return pd.DataFrame(rows)


def test_fraction_floor_lower_both_ways(capsys) -> None:
    assert ch06.check_fraction_floor_lower(solutions.fraction_floor_lower).passed
    on_the_loss = lambda t: float(  # noqa: E731  (the paper's metric, not the floor)
        (t.groupby(["task", "pair", "direction"])["mean_loss"].mean().unstack("direction").pipe(lambda m: m["inverse"] < m["forward"])).mean())
    result = ch06.check_fraction_floor_lower(on_the_loss)
    assert not result.passed and "answer_entropy" in result
    at_most = lambda t: float(  # noqa: E731  (ties counted as lower)
        (t.groupby(["task", "pair", "direction"])["answer_entropy"].mean().unstack("direction").pipe(lambda m: m["inverse"] <= m["forward"])).mean())
    assert not ch06.check_fraction_floor_lower(at_most).passed


def test_fraction_floor_lower_applied_to_tables(capsys) -> None:
    tables = {"pre-trained": _resistance_table("sampled", (0.5, 0.3), (1.0, 0.8)),
              "random init": _resistance_table("greedy", (0.0, 0.0), (1.0, 1.2))}
    assert ch06.check_fraction_floor_lower(solutions.fraction_floor_lower, tables=tables).passed
    out = capsys.readouterr().out
    assert "pre-trained,  sampled answers: inverse lower on the loss in 100% of cells, on the answers' entropy alone in 100%" in out
    assert "random init,   greedy answers: inverse lower on the loss in 0% of cells, on the answers' entropy alone in 0%" in out
    assert "In random init" not in out  # a control with a lower count is not said to show it
    tables["random init"] = _resistance_table("sampled", (0.5, 0.5), (1.0, 0.9))
    assert ch06.check_fraction_floor_lower(solutions.fraction_floor_lower, tables=tables).passed
    assert "In random init (sampled answers) the paper's count is 100%, at least the 100% of pre-trained" in capsys.readouterr().out


def test_fraction_floor_lower_says_where_stage_1_moved_a_control(capsys) -> None:
    def with_lift(mode: str, entropies: tuple, losses: tuple, lifts: dict[str, float]) -> pd.DataFrame:
        t = _resistance_table(mode, entropies, losses)
        return t.assign(agreement=0.5, base_share=0.1, final_share=t["task"].map(lambda k: 0.1 + lifts[k]))
    pre = with_lift("sampled", (0.5, 0.3), (1.0, 0.8), {"safety": 0.6, "truth": 0.6})
    for lifts, words in (({"safety": 0.5, "truth": 0.0}, "stage 1 moved its behaviour only on safety"),
                         ({"safety": 0.0, "truth": 0.1}, "stage 1 moved its behaviour on no task"),
                         ({"safety": 0.5, "truth": 0.5}, None)):
        tables = {"pre-trained": pre, "control": with_lift("sampled", (0.5, 0.5), (1.0, 0.9), lifts)}
        assert ch06.check_fraction_floor_lower(solutions.fraction_floor_lower, tables=tables).passed
        out = capsys.readouterr().out
        assert "In control (sampled answers) the paper's count is 100%" in out and "not evidence about pre-training" in out
        assert (words in out) if words else ("stage 1 moved" not in out)
    # a loss just under the answers' entropy (sampling noise) is said to be so, not printed as a bare 101 %
    tables = {"pre-trained": pre, "control": with_lift("sampled", (0.5, 0.5), (0.49, 0.48), {"safety": 0.5, "truth": 0.5})}
    assert ch06.check_fraction_floor_lower(solutions.fraction_floor_lower, tables=tables).passed
    out = capsys.readouterr().out
    assert "over 100 %" in out and out.count("over 100 %") == 1  # only the control's loss dips under the entropy
