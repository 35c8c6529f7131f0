"""The computed verdicts: does a mitigation make alignment stick, and at what cost — in tables and in words.

Two rules, each a :func:`elasticity_lab.experiments.stats.decide` on a paired interval over seeds:

- **protection** (Δ area under the rebound curve against ``none``): *makes alignment stick* where the whole interval
  is above 0; *does not* where it is below 0 or inside ±``protection_margin``; otherwise *undecided*;
- **cost** (Δ bits per token on held-out pre-training text; the drop in the other tasks' scores): *costs* where either
  interval is wholly above 0; *no measurable cost* where both lie inside their margins or below 0; otherwise
  *undecided*.

No sentence here is typed by hand: each is built from the interval it reports (tests/test_mitigation.py checks
every rule on synthetic data whose answer is known, both ways).
"""

from __future__ import annotations

import pandas as pd

from elasticity_lab.experiments.mitigation.analysis import interval_of, paired_difference
from elasticity_lab.experiments.mitigation.config import BASELINE, CONTRASTS, MitigationConfig
from elasticity_lab.experiments.stats import ABSENT, NOT_RUN, SHOWS, UNDECIDED, Interval, decide

STICKS, NOT_STICK = "makes alignment stick", "does not make alignment stick"
COSTS, FREE = "costs", "no measurable cost"


def protection_verdict(interval: Interval, margin: float = 0.0) -> str:
    """``makes alignment stick`` / ``does not make alignment stick`` / ``undecided`` / ``not run`` from Δ protection."""
    answer = decide(interval, null=0.0, direction="greater", margin=margin)
    return {SHOWS: STICKS, ABSENT: NOT_STICK}.get(answer, answer)


def cost_verdict(bits: Interval, other: Interval, margin_bits: float = 0.0, margin_score: float = 0.0) -> str:
    """``costs`` / ``no measurable cost`` / ``undecided`` / ``not run`` from Δ bits per token and the other tasks' drop."""
    answers = [decide(bits, direction="greater", margin=margin_bits), decide(other, direction="greater", margin=margin_score)]
    if NOT_RUN in answers:
        return NOT_RUN
    if SHOWS in answers:
        return COSTS
    if all(a == ABSENT for a in answers):
        return FREE
    return UNDECIDED


def verdict_table(summary: pd.DataFrame, config: MitigationConfig, per: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per mitigation other than ``none`` (and per contrast of :data:`CONTRASTS` that was run): intervals and
    both verdicts."""
    rows = []
    for _, r in summary.iterrows():
        if r["mitigation"] == BASELINE:
            continue
        prot, bits, other = interval_of(r, "protection"), interval_of(r, "cost_bits"), interval_of(r, "cost_other")
        start, rel = _optional(r, "start_change"), _optional(r, "protection_rel")
        rows.append({"mitigation": r["mitigation"], "family": r["family"], "against": BASELINE,
                     "protection": prot.text(3), "cost_bits": bits.text(3), "cost_other": other.text(3),
                     "start_change": start.text(2), "starts_higher": decide(start, direction="greater") == SHOWS,
                     "protection_rel": rel.text(2), "verdict_rel": protection_verdict(rel, config.protection_margin),
                     "verdict": protection_verdict(prot, config.protection_margin),
                     "small": bool(prot.finite and abs(prot.estimate) < config.protection_margin),
                     "margin": config.protection_margin,
                     "cost": cost_verdict(bits, other, config.cost_margin_bits, config.cost_margin_score)})
    if per is not None:
        run = set(per["mitigation"])
        for label, (first, second) in CONTRASTS.items():
            if first in run and second in run:
                prot = paired_difference(per, first, second, "auc")
                rows.append({"mitigation": label, "family": "contrast", "against": second, "first": first,
                             "protection": prot.text(3),
                             "cost_bits": "", "cost_other": "", "verdict": protection_verdict(prot, config.protection_margin),
                             "small": bool(prot.finite and abs(prot.estimate) < config.protection_margin),
                             "margin": config.protection_margin, "cost": ""})
    return pd.DataFrame(rows)


def _optional(row: pd.Series | dict, name: str) -> Interval:
    """The interval ``name`` of a summary row, or one that reads "not run" where the row lacks it."""
    return interval_of(row, name) if f"{name}_low" in row else Interval(float("nan"), float("nan"), float("nan"), n=0)


def start_text(verdicts: pd.DataFrame) -> str:
    """Which mitigations start higher than the baseline after stage 1, and whether each still protects relative to its
    own start (Δ of area ÷ start): the start-level confound named, per mitigation, from intervals."""
    main = verdicts[verdicts["family"] != "contrast"]
    if main.empty or "starts_higher" not in main:
        return "No mitigation was run besides the baseline, so no starting level can be compared."
    higher = main[main["starts_higher"].astype(bool)]
    if higher.empty:
        return (f"No mitigation starts measurably higher than {BASELINE} after stage 1, so the Δ area above is not "
                "confounded by the starting level.")
    lines = [f"{len(higher)} of {len(main)} mitigations start measurably higher than {BASELINE} after stage 1, so part of "
             "their Δ area is a higher start, not a slower fall. Judged relative to each condition's own start "
             "(Δ of area ÷ start, same rule and margin):"]
    for _, r in higher.iterrows():
        same = r["verdict_rel"] == r["verdict"]
        lines.append(f"- {r['mitigation']}: starts {r['start_change']} higher; relative to its start, Δ {r['protection_rel']}, "
                     f"so it {_verb(r['verdict_rel'])}"
                     f"{'' if same else ' (the Δ area alone said: ' + r['verdict'] + ')'}.")
    return "\n".join(lines)


def steps_text(verdicts: pd.DataFrame) -> str:
    """The paper's mitigation against its fixed-steps control, in plain words: is the gain the data or the extra steps?"""
    by = verdicts.set_index("mitigation")
    lines = []
    for _, c in verdicts[verdicts["family"] == "contrast"].iterrows():
        first, second = c.get("first"), c["against"]
        if not (isinstance(first, str) and first.startswith("data") and first in by.index and second in by.index):
            continue
        head = (f"{first} gains {by.loc[first, 'protection']} in area over {BASELINE}; {second}, the baseline's own "
                f"N_a examples trained for the same number of steps, gains {by.loc[second, 'protection']}. ")
        if c["verdict"] == STICKS:
            tail = f"More data does more than more steps: at fixed steps the data adds {c['protection']}."
        elif c["verdict"] == NOT_STICK and by.loc[first, "verdict"] == STICKS:
            tail = (f"At fixed steps the data adds {c['protection']}, nothing that matters: the gain of {first} comes "
                    "from its extra alignment steps, not from the extra data.")
        elif c["verdict"] == NOT_STICK:
            tail = (f"At fixed steps the data adds {c['protection']}, nothing that matters; {first} is not shown to protect "
                    "at all here, so there is no gain for the data or the steps to explain.")
        elif c["verdict"] == UNDECIDED:
            tail = (f"At fixed steps the data adds {c['protection']}, which includes no effect and an effect that "
                    f"matters: no gain from the data itself is shown, and none is ruled out, so how much of the gain of "
                    f"{first} its extra steps explain is undecided at this scale.")
        else:
            tail = "The fixed-steps contrast was not run."
        lines.append(head + tail)
    return "\n\n".join(lines) if lines else "The fixed-steps control was not run, so more data and more steps cannot be told apart here."


def verdict_sentence(row: pd.Series | dict) -> str:
    """One sentence per verdict row, from its intervals."""
    if row["family"] == "contrast":
        return (f"{row['mitigation']} (against {row['against']}): Δ area {row['protection']}, so it "
                f"{_verb(row['verdict'])}.")
    cost = {COSTS: "at a measurable cost", FREE: "at no measurable cost", UNDECIDED: "at a cost the data cannot size",
            NOT_RUN: "its cost not run"}[row["cost"]]
    small = (f", though by less than the {row['margin']:g} the study counts as mattering"
             if row.get("small") is True and row["verdict"] == STICKS else "")
    return (f"{row['mitigation']}: Δ area under the curve {row['protection']} against {BASELINE}, so it "
            f"{_verb(row['verdict'])}{small}; {cost} (Δ bits/token {row['cost_bits']}, other tasks' drop {row['cost_other']}).")


def _verb(verdict: str) -> str:
    return {STICKS: "makes alignment stick", NOT_STICK: "does not make alignment stick",
            UNDECIDED: "is undecided (the interval includes no effect and an effect)", NOT_RUN: "was not run"}[verdict]


def verdict_text(verdicts: pd.DataFrame) -> str:
    """The chapter's verdict paragraph: one line per mitigation, in the table's order."""
    if verdicts.empty:
        return "No mitigation was run besides the baseline."
    return "\n".join(f"- {verdict_sentence(r)}" for _, r in verdicts.iterrows())


def counts(verdicts: pd.DataFrame) -> dict[str, int]:
    """How many mitigations (contrasts left out) got each protection verdict."""
    v = verdicts[verdicts["family"] != "contrast"]["verdict"]
    return {k: int((v == k).sum()) for k in (STICKS, NOT_STICK, UNDECIDED, NOT_RUN)}


def theory_text(theory: pd.DataFrame) -> str:
    """The data-ratio paragraph: the theorem's predicted levels next to the measured ones, and the N_a it asks for."""
    if theory.empty:
        return "The data-ratio mitigations were not run, so there is nothing to set the theorem's prediction against."
    first = theory.iloc[0]
    lines = [f"The pre-training corpus holds about {first['n_pretrain']:,.0f} harmful requests (estimated from the world's "
             f"shares and its mean document length). After {int(first['n_perturb'])} compliant examples:"]
    for _, r in theory.iterrows():
        measured = Interval(r["measured_end"], r["measured_end_low"], r["measured_end_high"], n=3).text(2).lstrip("+")
        lines.append(f"- N_a = {int(r['n_align']):,} ({r['mitigation']}): the theorem's mixture predicts a refusal share of "
                     f"{r['predicted_start']:.3f} before the perturbation and {r['predicted_end']:.3f} after it; measured "
                     f"{r['measured_start']:.2f} before and {measured} after ({_against_theory(r)}).")
    lines.append(f"For the mixture to keep the refusal share halfway between the base rate and 1 after the perturbation, it "
                 f"needs N_a ≈ {first['n_align_needed_for_half']:,.0f}: "
                 f"{_times(first['n_align_needed_for_half'] / theory['n_align'].max())} the largest N_a run here.")
    return "\n".join(lines)


def _against_theory(r: pd.Series) -> str:
    """Where the measured level after the perturbation lies against the mixture's, read from its interval."""
    lo, hi, pred = r["measured_end_low"], r["measured_end_high"], r["predicted_end"]
    if not (pd.notna(lo) and pd.notna(hi)):
        return "too few seeds to compare"
    if hi < pred:
        return "after: below the prediction"
    if lo > pred:
        return "after: above the prediction"
    return "after: the interval includes the prediction"


def counts_text(verdicts: pd.DataFrame) -> str:
    """How many mitigations got each verdict, and which protect at no measurable cost, in one sentence."""
    c = counts(verdicts)
    main = verdicts[verdicts["family"] != "contrast"]
    free = main[(main["verdict"] == STICKS) & (main["cost"] == FREE)]["mitigation"].tolist()
    total = sum(c.values())
    text = (f"Of {total} mitigations, {c[STICKS]} {'makes' if c[STICKS] == 1 else 'make'} alignment stick, "
            f"{c[NOT_STICK]} {'does' if c[NOT_STICK] == 1 else 'do'} not, and {c[UNDECIDED]} "
            f"{'is' if c[UNDECIDED] == 1 else 'are'} undecided at this scale")
    sticks = main[main["verdict"] == STICKS]
    undecided_cost = int((sticks["cost"] == UNDECIDED).sum())
    costly = int((sticks["cost"] == COSTS).sum())
    if free:
        text += f"; protection at no measurable cost: {', '.join(free)}."
    elif len(sticks):
        parts = [f"{costly} {'has' if costly == 1 else 'have'} a measurable cost" if costly else "none has a measurable cost",
                 f"the cost of {'all ' if undecided_cost == len(sticks) else ''}{undecided_cost} is undecided "
                 "(its interval includes no cost and a cost)" if undecided_cost else ""]
        text += (f"; none of them is shown to protect at no measurable cost: of the {len(sticks)} that protect, "
                 + " and ".join(p for p in parts if p) + ".")
    else:
        text += "; none of them protects, so there is no protection to weigh against a cost."
    return text


def _times(ratio: float) -> str:
    if ratio < 1:
        return f"{ratio:.2f} times"
    return f"{ratio:,.1f} times" if ratio < 10 else f"{ratio:,.0f} times"
