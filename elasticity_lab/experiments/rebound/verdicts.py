"""The rebound study's summary and computed verdicts, in tables and in words, and the command line's result."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from elasticity_lab.experiments.rebound.analysis import ReboundResult, trend

# --------------------------------------------------------------------------- summary and verdicts


def _ms(values: Sequence[float]) -> dict[str, float]:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    return {"mean": float(v.mean()) if len(v) else float("nan"), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": int(len(v))}


def summarize(result: ReboundResult, *, metric: str = "rule") -> dict[str, Any]:
    """Per-N_a slopes and n-to-halfway (mean ± std over seeds), trends against N_a, and the verdicts."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN groups (a curve that never gets halfway) are expected
        return _summarize(result, metric)


def _summarize(result: ReboundResult, metric: str) -> dict[str, Any]:
    fits = result.fits[result.fits["metric"] == metric]
    out: dict[str, Any] = {"metric": metric, "per_n_align": {}, "trend": {}, "epsilon": result.config.epsilon}
    for (study, task, kind, mode), g in fits.groupby(["study", "task", "base_kind", "step_mode"], sort=False):
        name = f"{study}/{task}/{kind}/{mode}"
        out["per_n_align"][name] = {int(na): {k: _ms(h[k]) for k in ("early_slope", "late_slope", "ratio", "break_n", "n_half", "kl_stage1", "start", "end")}
                                    for na, h in g.groupby("n_align")}
        out["trend"][name] = {"n_half": trend(g["n_align"], g["n_half"]), "early_slope": trend(g["n_align"], g["early_slope"])}
    out["verdicts"] = verdicts(result, metric=metric)
    return out


def verdicts(result: ReboundResult, *, metric: str = "rule", ratio_needed: float = 3.0, aligned_needed: float = 0.3) -> list[dict[str, Any]]:
    """Each finding of the paper, whether it shows here, and whether it survives its control — computed, not asserted.

    The rules (stated so a reader can disagree with them). A control base counts only if stage 1
    lifted its score by ≥ ``aligned_needed`` above its own level (a base that was never aligned has
    nothing to rebound from). *Two stages* shows where the median early/late slope ratio of the main
    curves is ≥ ``ratio_needed``, and survives if no counted control base shows it too. *Settles at
    the base level* shows where most curves end within 0.1 of the base's own level rather than
    beyond it. *More alignment, faster rebound* shows where n-to-halfway falls with N_a (Spearman < 0)
    and survives if it also falls at a fixed number of alignment steps. *The pre-trained base
    rebounds faster than a control* shows where its mean n-to-halfway is smaller at the same N_a.
    *KL grows with N_a* survives if it also grows at fixed steps. The *attractor* shows where the
    pre-trained slope is ≥ 0.5 from both sides, and survives if it beats the lightly pre-trained
    bases' slope.
    """
    f = result.fits[result.fits["metric"] == metric]
    main = f[f["study"] == "main"]
    rows: list[dict[str, Any]] = []

    def add(finding: str, shows: bool | None, survives: bool | None, evidence: str) -> None:
        if not shows:
            survives = None  # a finding that does not show has nothing to survive
        rows.append({"finding": finding, "shows": shows, "survives_controls": survives, "evidence": evidence})

    def controls(task: str) -> list[tuple[str, pd.DataFrame, float]]:
        """(label, fits, lift) of each control base run for ``task``; lift = mean stage-1 score minus the base's own."""
        out = []
        for kind, label in (("random", "random init"), ("light", "light pre-training")):
            ctl = f[(f["study"] == "control") & (f["base_kind"] == kind) & (f["task"] == task)]
            if len(ctl):
                out.append((label, ctl, float((ctl["start"] - ctl["base_level"]).mean())))
        return out

    for task in main["task"].unique():
        m = main[main["task"] == task]
        ctls = controls(task)
        moved = [(label, c) for label, c, lift in ctls if lift >= aligned_needed]
        not_moved = ", ".join(f"{label} (lifted by {lift:.2f})" for label, _, lift in ctls if lift < aligned_needed)
        unmoved = f"; not moved by stage 1, so not counted: {not_moved}" if not_moved else ""

        ratio = float(np.nanmedian(m["ratio"].replace(np.inf, 1e9))) if len(m) else float("nan")
        shows = bool(ratio >= ratio_needed)
        cratios = {label: float(np.nanmedian(c["ratio"].replace(np.inf, 1e9))) for label, c in moved}
        surv = None if not moved else not any(r >= ratio_needed for r in cratios.values())
        add(f"{task}: two stages (steep, then slow)", shows, surv,
            f"median early/late slope ratio {ratio:.3g}; controls: " + (", ".join(f"{k} {v:.3g}" for k, v in cratios.items()) or "none") + unmoved)

        gap = (m["end"] - m["base_level"]).to_numpy()
        beyond = float(np.mean(np.abs(gap) > 0.1)) if len(gap) else float("nan")
        add(f"{task}: settles at the base level (not beyond it)", bool(beyond < 0.5), None,
            f"share of curves ending more than 0.1 from the base's own level: {beyond:.2f}")

        t = trend(m["n_align"], m["n_half"])
        fx = f[(f["study"] == "fixed_steps") & (f["task"] == task)]
        tf = trend(fx["n_align"], fx["n_half"]) if len(fx) else {"spearman": float("nan")}
        shows = bool(np.isfinite(t["spearman"]) and t["spearman"] < 0)
        surv = None if not len(fx) else bool(np.isfinite(tf["spearman"]) and tf["spearman"] < 0)
        add(f"{task}: more alignment, faster rebound", shows, surv,
            f"Spearman(N_a, n-to-halfway) = {t['spearman']:+.2f} at one epoch, {tf['spearman']:+.2f} at fixed steps (negative = faster)")

        for label, ctl, lift in ctls:
            same = m[m["n_align"].isin(ctl["n_align"].unique())]
            nh_p = float(np.nanmean(same["n_half"])) if same["n_half"].notna().any() else float("nan")
            nh_c = float(np.nanmean(ctl["n_half"])) if ctl["n_half"].notna().any() else float("nan")
            if lift < aligned_needed:  # stage 1 did not move the control: there is no rebound to compare
                add(f"{task}: the pre-trained base rebounds faster than {label}", None, None,
                    f"undecided: stage 1 lifted the {label} base by only {lift:.2f} on average")
            else:
                add(f"{task}: the pre-trained base rebounds faster than {label}",
                    bool(np.isfinite(nh_p) and (not np.isfinite(nh_c) or nh_c > nh_p)), None,
                    f"mean n-to-halfway at the same N_a: pre-trained {nh_p:.3g}, {label} {nh_c:.3g}")
    kl = result.kl
    for task in kl["task"].unique() if len(kl) else []:
        k = kl[kl["task"] == task]
        t1 = trend(k["n_align"], k["kl_stage1_mean"])
        fx = result.curves[(result.curves["study"] == "fixed_steps") & (result.curves["task"] == task) & (result.curves["n"] == 0)]
        tf = trend(fx["n_align"], fx["kl"]) if len(fx) else {"spearman": float("nan")}
        add(f"{task}: KL after alignment grows with N_a", bool(t1["spearman"] > 0) if np.isfinite(t1["spearman"]) else None,
            None if not len(fx) else bool(np.isfinite(tf["spearman"]) and tf["spearman"] > 0),
            f"Spearman(N_a, KL after stage 1) = {t1['spearman']:+.2f} at one epoch, {tf['spearman']:+.2f} at fixed steps")
        reached = k[k["reached"] > 0]
        te = trend(reached["n_align"], reached["n_to_epsilon_mean"])
        add(f"{task}: fewer negative examples bring the KL below ε as N_a grows",
            bool(te["spearman"] < 0) if np.isfinite(te["spearman"]) else None, None,
            f"Spearman(N_a, n to KL < ε) = {te['spearman']:+.2f} over the sizes that reached ε; seeds reaching ε: "
            f"{int(k['reached'].sum())} of {int(k['seeds'].sum())}")
    s = result.attractor_slopes
    if len(s):
        s = s[s["metric"] == metric]
        pre = s[s["base_kind"] == "pretrained"]
        light = s[s["base_kind"] == "light"]
        ps = float(pre["slope_mean"].min()) if len(pre) else float("nan")
        ls = float(light["slope_mean"].max()) if len(light) else float("nan")
        sides = ", ".join(f"from {r['direction']} {r['slope_mean']:+.2f} ± {r['slope_std']:.2f}" for _, r in pre.iterrows())
        shows = bool(np.isfinite(ps) and ps >= 0.5)
        add("attractor: each pre-trained base settles near its own base rate", shows,
            None if not len(light) else bool(not np.isfinite(ls) or ps > ls),
            f"pre-trained slopes {sides}; largest lightly pre-trained slope {ls:+.2f}; random init 0 by construction")
    return rows


def verdict_text(rows: Sequence[dict[str, Any]]) -> str:
    """The verdicts as plain sentences (Markdown), generated from the measured rows so that the prose
    of the chapter can never disagree with its numbers."""
    shows = [r["finding"] for r in rows if r["shows"]]
    absent = [r["finding"] for r in rows if r["shows"] is False]
    survives = [r["finding"] for r in rows if r["survives_controls"] is True]
    fails = [r["finding"] for r in rows if r["survives_controls"] is False]
    open_ = [r["finding"] for r in rows if r["shows"] and r["survives_controls"] is None]

    def items(xs: list[str]) -> str:
        return "; ".join(f"*{x}*" for x in xs) if xs else "none"

    return "\n\n".join([
        f"**Shows at this scale:** {items(shows)}.",
        f"**Does not show:** {items(absent)}.",
        f"**Shows and survives its control:** {items(survives)}.",
        f"**Shows, but does not survive its control** (the control base shows it too, or it vanishes when the control holds "
        f"the number of alignment steps fixed): {items(fails)}.",
        f"**Shows, but no control decides it here** (no control run, the control base was not moved by stage 1, or the finding "
        f"is itself a comparison with a control base): {items(open_)}.",
    ])
