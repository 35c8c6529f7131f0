"""The rebound per alignment algorithm (issue 13): stage 1 by SFT, DPO, KTO, SimPO or RLOO, then stage 2 as in chapter 7.

So far the stage-1 step, :func:`align`; the study (curves, controls, verdicts) reuses
:mod:`elasticity_lab.experiments.rebound`.
"""

from elasticity_lab.experiments.algorithms.align import (
    ALGORITHMS,
    AlignResult,
    align,
    default_align_config,
)

__all__ = ["ALGORITHMS", "AlignResult", "align", "default_align_config"]
