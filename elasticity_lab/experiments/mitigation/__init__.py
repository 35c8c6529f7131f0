"""Mitigation: what makes alignment stick? The rebound protocol with each mitigation against the baseline ``none``.

The paper proposes (its Appendix C.2) to raise the share of alignment data relative to pre-training data, as the
elasticity theorem suggests, but does not test it. Here every mitigation runs under the same stage-2 perturbation
as the baseline, with ≥ 3 seeds at the ``reader`` scale: more alignment data (at one epoch, and the same steps on
the baseline's data as the fixed-steps control) beside the theorem's prediction; alignment inside pre-training
(worlds with a raised refusal share, final and early checkpoints); and defences in the later fine-tuning (replay,
an anchor to the aligned weights, LoRA, the learning rate). Each gets its protection (Δ area under the rebound
curve), its cost (Δ bits per token on held-out pre-training text, the other tasks' scores) and a computed verdict.

The package: ``config`` (the catalogue of mitigations and the per-scale presets), ``runs`` (one curve per mitigation
and seed, cached), ``analysis`` (measures, paired differences, the theorem's prediction), ``verdicts`` (the rules and
their prose), ``study`` (the whole study and its CLI result).
"""

from elasticity_lab.experiments.mitigation.analysis import (area_under_curve, curve_measures, interval_of, kept_share, needed_for,
                                                            paired_difference, predicted_level, summary_table, theory_table)
from elasticity_lab.experiments.mitigation.config import (BASELINE, CATALOGUE, CONTRASTS, FAMILIES, SCALE_PRESETS,
                                                          Mitigation, MitigationConfig, catalogue_table, default_config)
from elasticity_lab.experiments.mitigation.runs import base_spec, mitigated_curve, pull_back, run_curves
from elasticity_lab.experiments.mitigation.study import MitigationResult, cli_result, run_mitigation
from elasticity_lab.experiments.mitigation.verdicts import (COSTS, FREE, NOT_STICK, STICKS, cost_verdict, counts, counts_text,
                                                            protection_verdict, start_text, steps_text, theory_text, verdict_sentence, verdict_table,
                                                            verdict_text)

__all__ = [
    "area_under_curve", "curve_measures", "interval_of", "kept_share", "needed_for", "paired_difference", "predicted_level",
    "summary_table", "theory_table", "BASELINE", "CATALOGUE", "CONTRASTS", "FAMILIES", "SCALE_PRESETS", "Mitigation",
    "MitigationConfig", "catalogue_table", "default_config", "base_spec", "mitigated_curve", "pull_back", "run_curves", "MitigationResult",
    "cli_result", "run_mitigation", "COSTS", "FREE", "NOT_STICK", "STICKS", "cost_verdict", "counts", "counts_text", "theory_text",
    "protection_verdict", "start_text", "steps_text", "verdict_sentence", "verdict_table", "verdict_text",
]
