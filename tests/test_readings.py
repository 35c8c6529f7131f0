"""The sentences that chapters 1 to 4 print about their tables: each rule says yes on a table where the
answer is yes, and no where it is no."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from elasticity_lab.info import compression as cz, readings as rd


def _race(true_bits: float, order1_end: float, order2: float, zlib: float) -> pd.DataFrame:
    """A two-position race on one source (entropy rate 2.0) with chosen final bits per token."""
    rows = []
    for name, early, end in (("true source", 2.0, true_bits), ("adaptive order 1", 3.0, order1_end),
                             ("adaptive order 2", 3.5, order2)):
        for pos, b in ((1, early), (2, end)):
            rows.append({"concentration": 0.3, "compressor": name, "position": pos, "bits_per_token": b, "entropy_rate": 2.0})
    rows.append({"concentration": 0.3, "compressor": "zlib", "position": 2, "bits_per_token": zlib, "entropy_rate": 2.0})
    return pd.DataFrame(rows)


def test_compression_findings_say_yes_where_the_table_does() -> None:
    lines = rd.compression_findings(_race(2.01, 2.2, 2.5, 3.0))
    assert "closest to the entropy rate for 1 of 1 sources" in lines[0]
    assert "longer than order 1 (it has more contexts to learn) for 1 of 1" in lines[1]
    assert "shorter than every general-purpose compressor (zlib) for 1 of 1" in lines[2]
    assert "shrinks" in lines[3] and "for 1 of 1 sources" in lines[3]


def test_compression_findings_say_no_where_the_table_does() -> None:
    lines = rd.compression_findings(_race(2.5, 3.6, 2.0, 1.9))   # order 2 lands on the floor, zlib wins, order 1 gap grows
    assert "for 0 of 1 sources; elsewhere the closest is adaptive order 2" in lines[0]
    assert "for 0 of 1" in lines[1] and "for 0 of 1" in lines[2]
    assert "for 0 of 1 sources" in lines[3]


def test_compression_findings_on_a_real_race() -> None:
    lines = rd.compression_findings(cz.compression_table([0.3, 3.0], n_tokens=300, seed=0))
    assert len(lines) == 4 and all("sources" in line for line in lines)


def test_ranking_text_names_the_winner_and_the_best_general_purpose() -> None:
    assert rd.ranking_text({"adaptive order 1": 4.0, "zlib": 4.2, "lzma": 5.0}, "bits") == (
        "shortest code: adaptive order 1 at 4.000 bits; the best general-purpose compressor, zlib, takes 4.200 (+0.200)")
    assert rd.ranking_text({"adaptive order 1": 4.5, "zlib": 4.2}, "bits").endswith("zlib at 4.200 bits, a general-purpose compressor")
    with pytest.raises(ValueError, match="values"):
        rd.ranking_text({}, "bits")


def test_rate_depth_findings_smaller_sample_first_and_not() -> None:
    depths = [1, 2, 4]
    yes = rd.rate_depth_findings(depths, {"small": [3.0, 1.5, 1.0], "large": [3.0, 2.8, 1.9]}, 2.0)
    assert "first below it at depth 2" in yes[0] and "first below it at depth 4" in yes[1]
    assert "at a smaller depth than with large" in yes[2]
    no = rd.rate_depth_findings(depths, {"small": [3.0, 2.5, 2.1], "large": [3.0, 2.8, 1.9]}, 2.0)
    assert "never below it up to depth 4" in no[0] and "does not fall below" in no[2]
    same = rd.rate_depth_findings(depths, {"small": [1.0, 1.0, 1.0], "large": [1.0, 1.0, 1.0]}, 2.0)
    assert "at or below" in same[0] and "same depth" in same[2]


def test_joint_code_findings_larger_keeps_its_code_or_not() -> None:
    lines = rd.joint_code_findings([1e-3, 1.0, 1e3], np.array([[0.5, 0.0], [0.1, 0.1], [0.0, 0.6]]))
    assert lines[0].endswith("the larger keeps its code") and "D2 (larger) pays 0.0000" in lines[0]
    assert lines[1].startswith("equal sizes")
    assert lines[2].endswith("the larger keeps its code") and "D1 (larger)" in lines[2]
    assert rd.joint_code_findings([1e3], np.array([[0.3, 0.1]]))[0].endswith("the larger does not keep its code")


def test_decreasing_rows_text_counts_and_names_missing_values() -> None:
    assert rd.decreasing_rows_text({0: [3, 2, 1], 1: [3, 1, 0.5]}, "the share") == (
        "the share decreases from column to column in all 2 rows")
    text = rd.decreasing_rows_text({0: [3, 2, 1], 1: [1, 2, 3], 2: [1, None, 0]}, "the share")
    assert "in 1 of 2 rows with a value in every column (1 of 3 rows have a column without a value)" in text


def test_fitted_ratio_text_reads_exponent_and_level() -> None:
    yes = rd.fitted_ratio_text("rate", 1.0004, 999.5, 1e3)
    assert "(grows like k)" in yes and "equals k" in yes
    no = rd.fitted_ratio_text("KL", 0.9731, 1200.5, 1e3)
    assert "grows like k^0.973" in no and "20% above k" in no
    assert "below k" in rd.fitted_ratio_text("KL", 1.0, 800.0, 1e3)


def test_bend_findings_where_each_curve_falls() -> None:
    ls = [1e-5, 1e-2, 1.0]
    lines = rd.bend_findings(ls, {"a": [1.0, 0.95, 0.5], "b": [1.001, 0.8, 0.2], "c": [1.0, 1.0, 0.99]})
    assert lines[0] == "at l = 1e-05 every curve is within 0.001 of 1"
    assert "first to fall below 0.9 is 'b' at l = 0.01; the last, 'a', at l = 1" in lines[1]
    assert lines[2] == "never below 0.9 up to l = 1: 'c'"


def test_bend_findings_names_curves_that_fall_together() -> None:
    ls = [1e-5, 1e-2, 1.0]
    tied_last = rd.bend_findings(ls, {"a": [1.0, 0.95, 0.5], "b": [1.0, 0.8, 0.2], "c": [1.0, 0.95, 0.3]})
    assert tied_last[1] == "the first to fall below 0.9 is 'b' at l = 0.01; the last, 'a' and 'c', at l = 1"
    tied_first = rd.bend_findings(ls, {"a": [1.0, 0.8, 0.5], "b": [1.0, 0.8, 0.2], "c": [1.0, 0.95, 0.3]})
    assert tied_first[1] == "the first to fall below 0.9 are 'a' and 'b' at l = 0.01; the last, 'c', at l = 1"
    all_tied = rd.bend_findings(ls, {"a": [1.0, 0.8, 0.5], "b": [1.0, 0.8, 0.2]})
    assert all_tied[1] == "'a' and 'b' fall below 0.9 at the same l = 0.01"


def test_bend_findings_says_where_a_ratio_changes_sign() -> None:
    ls = [1e-5, 1e-3, 1e-2, 1e-1]
    lines = rd.bend_findings(ls, {"smooth": [1.0, 0.99, 0.8, 0.3], "pole": [1.0, 2.2, -30.0, -0.5]})
    assert not any("'smooth' changes sign" in line for line in lines)
    assert lines[-1].startswith("'pole' changes sign between l = 0.001 and l = 0.01, after rising to 2.2: ")
    low = rd.bend_findings(ls, {"through zero": [1.0, 0.5, -0.1, -0.2]})
    assert low[-1].startswith("'through zero' changes sign between l = 0.001 and l = 0.01: one of the two slopes")


def test_force_balance_findings_yes_and_no() -> None:
    balanced = [{"n_p": 1e4, "n_a": 100, "dkl_p": 1e-8, "dkl_a": -1e-6}]
    lines = rd.force_balance_findings(balanced)
    assert "opposite sign for 1 of 1" in lines[0] and "equal within 5% for 1 of 1" in lines[1] and "for 1 of 1" in lines[2]
    unbalanced = [{"n_p": 1e4, "n_a": 100, "dkl_p": 1e-8, "dkl_a": 2e-6}]
    lines = rd.force_balance_findings(unbalanced)
    assert "opposite sign for 0 of 1" in lines[0] and "equal within 5% for 0 of 1" in lines[1] and "for 0 of 1" in lines[2]


def test_invariant_findings_three_cases() -> None:
    pulls = [0.001, 1.0, 1000.0]
    lines = rd.invariant_findings(pulls, {"A": [1.0, 1.02, 1.03], "B": [1.0, 1.2, 20.0], "C": [0.88, 0.9, 18.0]})
    assert lines[0] == "A: the forces agree within 5% at every pull up to 1e+03"
    assert "part from |D_t| = 1 on" in lines[1]
    assert "already at the smallest pull" in lines[2]
    assert "(l = |D_t|/|D_a|" not in lines[1]
    with_share = rd.invariant_findings(pulls, {"B": [1.0, 1.2, 20.0]}, n_a=100.0)
    assert with_share[0].endswith("part from |D_t| = 1 (l = |D_t|/|D_a| = 0.01) on")


def test_change_word() -> None:
    assert rd.change_word(10.0, 1.0) == "10 times smaller"
    assert rd.change_word(1.0, 10.0) == "10 times larger"
    assert rd.change_word(2.0, 2.0) == "unchanged"
    assert rd.change_word(2.0, 0.0) == "down to zero"
