"""Resistance (the paper's Table 1): is moving a model back towards an earlier checkpoint easier than forward?

The protocol of Ji et al.: SFT a base θ₀ on one task data set and cut checkpoints
θ₁, θ₂, θ₃ from that one run (25/50/75 % by default). Every checkpoint answers the same held-out
query set Q (temperature 0.05, top-p 0.95, as the authors; greedy and temperature-1 sampling as
options). For each pair k < l, **forward** θₖ→θₗ fine-tunes θₖ on θₗ's answers and **inverse** θₗ→θₖ
fine-tunes θₗ on θₖ's answers, with the same recipe, the same number of examples and the same seed.
The authors' metric is the average training loss over the run; inverse < forward is read as the
model "resisting" alignment and springing back towards its earlier state.

Why more than the authors' metric: the SFT loss on a teacher's answers is, in expectation, the
entropy of the process that wrote them plus the student's KL to that process. Checkpoints differ in
entropy, so a lower inverse loss can mean only that the earlier checkpoint's answers are easier to
predict. Each row therefore also carries the answers' own entropy, the *excess* loss
(mean loss minus that entropy: the KL the student still had to close, averaged over the run) and the
student's KL to the answer process before training (``kl_start``). And because "resistance" is a
claim about pre-training, the same protocol runs from bases with no or little pre-training and from
bases pre-trained on worlds that differ only in a base rate (the controls).

Everything is cached per (base, task, seed, answer mode) under a hash of the config
(:mod:`elasticity_lab.core.cache`), so a rerun trains nothing and an interrupted run resumes where it stopped.

The package: ``config`` (the validated config and the book's runs per scale), ``data`` (the task
data of the micro-world and of hub data sets), ``runs`` (checkpoints, pair fine-tunes, the cached
experiment), ``analysis`` (per-cell statistics and the paper's table), ``verdicts`` (the pooled paired gap with its
interval per metric and answer mode, pairs whose checkpoints agree left out, controls counted only where stage 1
moved them, and the verdicts in words).
"""

from elasticity_lab.experiments.resistance.analysis import CELL, fraction_inverse_lower, paper_table, summarize
from elasticity_lab.experiments.resistance.config import (ANSWER_MODES, COLUMNS, CURVE_COLUMNS, DIRECTIONS, HUB_DATASETS, METRICS,
                                                          CUT_AT, PAIRS, SCALE_RUNS, STAGE1_COLUMNS, TASKS, ResistanceConfig,
                                                          default_configs,
                                                          little_pretraining, parse_base)
from elasticity_lab.experiments.resistance.data import hub_task_data, load_rows, task_pairs
from elasticity_lab.experiments.resistance.runs import (ResistanceResult, answer, cli_result, cut_checkpoints, milestone_steps,
                                                        run_resistance, unit_spec)
from elasticity_lab.experiments.resistance.verdicts import (MAX_AGREEMENT, MIN_LIFT, VERDICT_METRICS, gap_words, milestone_prose,
                                                            milestone_summary, paired_gaps, pooled_gap, stage1_lift, verdict_prose,
                                                            verdict_rows, verdict_table, world_gaps, world_order, world_prose)

__all__ = [
    "CELL", "fraction_inverse_lower", "paper_table", "summarize", "ANSWER_MODES", "COLUMNS", "CUT_AT", "STAGE1_COLUMNS",
    "CURVE_COLUMNS", "DIRECTIONS", "HUB_DATASETS", "METRICS", "PAIRS", "SCALE_RUNS", "TASKS", "ResistanceConfig",
    "default_configs", "little_pretraining", "parse_base", "hub_task_data", "load_rows", "task_pairs",
    "ResistanceResult", "answer", "cli_result", "cut_checkpoints", "milestone_steps", "run_resistance", "unit_spec",
    "MAX_AGREEMENT", "MIN_LIFT", "VERDICT_METRICS", "milestone_summary", "paired_gaps", "pooled_gap", "stage1_lift",
    "verdict_prose", "verdict_rows", "verdict_table", "gap_words", "milestone_prose", "world_gaps", "world_order", "world_prose",
]
