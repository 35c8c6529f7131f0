"""Rebound: alignment springs back (the paper's rebound figures and Table 3), with controls.

The protocol of the paper: stage 1 fine-tunes a pre-trained base on ``N_a`` *positive* examples;
stage 2 fine-tunes each stage-1 model on ``n`` *negative* examples. The paper's claims: the score
falls steeply within a few hundred negative examples to about the pre-trained level, then slowly
(two stages), and models aligned with more positive data fall faster; the KL to the base after
alignment grows with ``N_a`` while fewer negative examples bring it back below ε (Table 3).

Why the controls: a prototype saw the same two-stage shapes from a *randomly
initialised* model, saw ``N_a`` act through the number of alignment steps, and saw the slow-down
come from saturation near 0 rather than from reaching the pre-trained level. So every finding is
measured next to a control that separates elasticity (the pre-trained distribution acting as an
attractor) from ordinary fine-tuning dynamics: random-init and lightly pre-trained bases, ``N_a`` at
fixed steps as well as at fixed epochs, and the attractor test (bases that differ only in a base
rate, displaced by the same amount from it in stage 1, then perturbed by neutral data, by samples of
the pre-training distribution as a positive control, and by directional data).

What decides: every finding is an interval over *pre-training* seeds (several bases per world, the
fine-tuning seeds nested in them) and a rule from :mod:`elasticity_lab.experiments.stats`. "Returns
to the base" is where a fitted plateau settles against the base's own level, not the shape of the
curve (any decay is steep then slow).

How stage 2 is run: one SFT pass over ``max(n)`` negative examples at a constant learning rate,
evaluated after the step at which it has seen ``n`` examples, for every ``n`` of the grid. With a
constant rate and one epoch this *is* a fine-tune on those ``n`` examples (a random subset of the
pool); it costs one run per curve instead of one per point, which is what lets the ``reader`` scale
afford seeds and controls. Every ``n`` must therefore be a multiple of the stage-2 batch size.

Scores, all on held-out prompts: the rule score (share of sampled answers, temperature 1, that the
world's rule labels aligned; the rule reads the first response word only, so only the words it
needs are generated), the likelihood score P(aligned)/(P(aligned)+P(unaligned)) with the mass
P(aligned)+P(unaligned) it covers, and the
token-averaged KL(p_base ‖ p_θ) over response tokens of held-out exchanges drawn from the
pre-training distribution (an expectation under p_base, as the KL's first argument asks).

At the ``full`` scale the same protocol runs on a hub model with BeaverTails / PKU-SafeRLHF and
IMDb through ``datasets``; safety is scored by a refusal-keyword rule (or, with ``safety_scorer``, by a
reward or cost model as the paper's beaver-7b cost model did), sentiment by a word-list
rule (both crude and documented as such); the attractor test needs worlds with controllable base
rates and runs on the micro-world only.


The package: ``config`` (the validated study config and its per-scale presets), ``tasks`` (the
micro-world and hub task suites and their probes), ``runs`` (curves and the study), ``analysis``
(plateau fits and tables), ``verdicts`` (the computed verdicts with their intervals, in tables and words),
``checks`` (the checks of the verdict machinery itself: a system with a built-in attractor, and a
learning-rate sweep).
"""

from elasticity_lab.experiments.rebound.analysis import (ATTRACTOR_GROUP, GROUP, ReboundResult, attractor_levels, attractor_slopes,
                                                         cluster_of, curve_fits, fit_two_stage, kl_table, kl_threshold_n, mean_std,
                                                         n_to_halfway, plateau_of, recovered, trend)
from elasticity_lab.experiments.rebound.config import (DIRECTIONS, METRICS, ORDERS, PAPER_KL_TABLE, PERTURBATIONS, STEP_MODES, TASKS,
                                                       ReboundConfig, default_config)
from elasticity_lab.experiments.rebound.runs import (analyse_attractor, attractor_plan, base_spec, cli_result, evaluate, perturb_curve,
                                                     plan, replay_data, run_rebound, staged_curve, train_seed)
from elasticity_lab.experiments.rebound.tasks import (HubTask, MicroTask, Probe, probe_kl, probe_likelihood, probe_likelihood_mass,
                                                      refusal_rule, sentiment_rule)
from elasticity_lab.experiments.rebound.verdicts import (attractor_table, attractor_verdicts, check_prose, lr_prose, positive_control_text,
                                                         rebound_prose, rebound_verdicts, score_comparison, settles_at, summarize,
                                                         verdict_text, verdicts, within)
from elasticity_lab.experiments.rebound.checks import builtin_attractor_check, lr_sweep

__all__ = [
    "ATTRACTOR_GROUP", "GROUP", "ReboundResult", "attractor_levels", "attractor_slopes", "cluster_of", "curve_fits", "fit_two_stage",
    "kl_table", "kl_threshold_n", "mean_std", "n_to_halfway", "plateau_of", "recovered", "trend", "DIRECTIONS", "METRICS", "ORDERS",
    "PAPER_KL_TABLE", "PERTURBATIONS", "STEP_MODES", "TASKS", "ReboundConfig", "default_config", "analyse_attractor",
    "attractor_plan", "base_spec", "cli_result", "evaluate", "perturb_curve", "plan", "replay_data", "run_rebound", "staged_curve", "train_seed",
    "HubTask", "MicroTask", "Probe", "probe_kl", "probe_likelihood", "probe_likelihood_mass", "refusal_rule", "sentiment_rule",
    "attractor_table", "attractor_verdicts", "check_prose", "lr_prose", "positive_control_text", "rebound_prose", "score_comparison", "rebound_verdicts", "settles_at", "summarize", "verdict_text", "verdicts", "within",
    "builtin_attractor_check", "lr_sweep",
]
