"""What the tables of the theory chapters (1 to 4) show, in words chosen from the numbers.

Why its own module: a chapter's prose may state a result only where code computed it. These
functions read a result table and return sentences whose wording (which compressor is closest, which
sample falls below the floor first, whether a ratio holds) is decided by the numbers, at whatever
scale the chapter ran; the chapters print them instead of typing the findings by hand. Each function
takes plain arrays or dicts, so its rules are tested on tables where the answer is known.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "compression_findings", "ranking_text", "rate_depth_findings", "joint_code_findings",
    "decreasing_rows_text", "fitted_ratio_text", "bend_findings", "force_balance_findings",
    "invariant_findings", "change_word",
]

GENERAL_PURPOSE = ("zlib", "bz2", "lzma")


def _count(n: int, of: int) -> str:
    return f"all {of}" if n == of and of > 1 else f"{n} of {of}"


def _and(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def change_word(before: float, after: float) -> str:
    """'N times smaller' / 'N times larger' / 'unchanged' for |after| against |before|."""
    b, a = abs(before), abs(after)
    if a == b:
        return "unchanged"
    if a == 0:
        return "down to zero"
    return f"{b / a:.3g} times smaller" if a < b else f"{a / b:.3g} times larger"


def compression_findings(results) -> list[str]:
    """Chapter 1's race: which compressor comes closest to the entropy rate, and how the adaptive
    models compare, source by source, from :func:`elasticity_lab.info.compression.compression_table`."""
    last = results.sort_values("position").groupby(["concentration", "compressor"])["bits_per_token"].last().unstack()
    floor = results.groupby("concentration")["entropy_rate"].first()
    n = len(last)
    closest = (last.sub(floor, axis=0)).abs().idxmin(axis=1)
    exact = int((closest == "true source").sum())
    out = [f"the exact model ('true source') is the closest to the entropy rate for {_count(exact, n)} sources"
           + ("" if exact == n else "; elsewhere the closest is " + ", ".join(
               f"{closest[c]} (concentration {c:g})" for c in closest.index if closest[c] != "true source"))]
    if {"adaptive order 1", "adaptive order 2"} <= set(last.columns):
        longer = int((last["adaptive order 2"] > last["adaptive order 1"]).sum())
        out.append(f"adaptive order 2 codes longer than order 1 (it has more contexts to learn) for {_count(longer, n)} sources")
    general = [c for c in GENERAL_PURPOSE if c in last.columns]
    if general and "adaptive order 1" in last.columns:
        beats = int((last["adaptive order 1"] < last[general].min(axis=1)).sum())
        out.append(f"adaptive order 1 codes shorter than every general-purpose compressor ({', '.join(general)}) "
                   f"for {_count(beats, n)} sources")
    if "adaptive order 1" in last.columns:
        curves = results[results["compressor"].isin(["adaptive order 1", "true source"])]
        wide = curves.pivot_table(index=["concentration", "position"], columns="compressor", values="bits_per_token")
        gap = (wide["adaptive order 1"] - wide["true source"]).unstack("concentration")
        early = gap.iloc[max(len(gap) // 10 - 1, 0)]
        end = gap.iloc[-1]
        shrank = int((end < early).sum())
        out.append(f"the order-1 model's excess over the exact model shrinks from the first tenth of the sample to its end "
                   f"for {_count(shrank, n)} sources (from {early.mean():.3f} to {end.mean():.3f} bits per token on average)")
    return out


def ranking_text(values: Mapping[str, float], unit: str) -> str:
    """The lowest value and the best of the general-purpose compressors, as one sentence."""
    if not values:
        raise ValueError("values={} is not allowed; it must name at least one compressor.")
    best = min(values, key=values.get)
    text = f"shortest code: {best} at {values[best]:.3f} {unit}"
    general = {k: v for k, v in values.items() if k in GENERAL_PURPOSE}
    if general and best not in general:
        g = min(general, key=general.get)
        text += f"; the best general-purpose compressor, {g}, takes {general[g]:.3f} ({general[g] - values[best]:+.3f})"
    elif general:
        text += ", a general-purpose compressor"
    return text


def rate_depth_findings(depths: Sequence[int], rates: Mapping[str, Sequence[float]], floor: float) -> list[str]:
    """Chapter 2's rate against depth: where each sample's rate sits against the source's entropy rate
    ``floor``, and at which depth it first falls below it. ``rates`` maps a sample's name to its rates
    at ``depths`` (listed from the smallest sample to the largest)."""
    out, first = [], {}
    for name, r in rates.items():
        r = np.asarray(r, dtype=float)
        below = np.flatnonzero(r < floor)
        first[name] = depths[below[0]] if below.size else None
        side = "above" if r[0] > floor else "at or below"
        out.append(f"{name}: {r[0]:.3f} bits per token at depth {depths[0]}, {side} the entropy rate {floor:.3f}; "
                   + (f"first below it at depth {first[name]}" if below.size else "never below it up to depth "
                      f"{depths[-1]}"))
    names = list(rates)
    if len(names) >= 2:
        a, b = first[names[0]], first[names[-1]]
        if a is not None and (b is None or a < b):
            out.append(f"with {names[0]} the rate falls below the entropy rate at a smaller depth than with {names[-1]}: "
                       "the smaller sample's chunks become unique sooner (memorisation, not compression of the source)")
        elif a == b:
            out.append("the samples fall below the entropy rate at the same depth"
                       if a is not None else "neither sample falls below the entropy rate in this range")
        else:
            out.append(f"with {names[0]} the rate does not fall below the entropy rate before it does with {names[-1]}")
    return out


def joint_code_findings(ratios: Sequence[float], excess: np.ndarray, names: Sequence[str] = ("D1", "D2")) -> list[str]:
    """Chapter 2's shared code: at each size ratio |D1|/|D2| in ``ratios`` other than 1, whether the larger
    data set pays fewer extra bits per token than the smaller one (``excess`` has one row per ratio)."""
    excess = np.asarray(excess, dtype=float)
    out = []
    for r, (e1, e2) in zip(ratios, excess):
        if r == 1:
            out.append(f"equal sizes: both pay ({names[0]} {e1:.4f}, {names[1]} {e2:.4f} extra bits per token)")
            continue
        big, small = (0, 1) if r > 1 else (1, 0)
        e = (e1, e2)
        verdict = "the larger keeps its code" if e[big] < e[small] else "the larger does not keep its code"
        out.append(f"|{names[0]}|/|{names[1]}| = {r:g}: {names[big]} (larger) pays {e[big]:.4f}, {names[small]} (smaller) "
                   f"{e[small]:.4f} extra bits per token: {verdict}")
    return out


def decreasing_rows_text(rows: Mapping[object, Sequence[float | None]], what: str) -> str:
    """How many rows of a table strictly decrease from column to column; missing values are 'no value'."""
    rows = dict(rows)
    full = {k: v for k, v in rows.items() if all(x is not None and np.isfinite(x) for x in v)}
    down = sum(all(b < a for a, b in zip(v, v[1:])) for v in full.values())
    text = f"{what} decreases from column to column in {_count(down, len(full))} rows"
    if len(full) < len(rows):
        text += (f" with a value in every column ({len(rows) - len(full)} of {len(rows)} rows have a column "
                 "without a value)")
    return text


def fitted_ratio_text(name: str, slope: float, level: float, k: float, *, tol: float = 0.01) -> str:
    """A log-log fit of a slope ratio against ``k``, read against 'ratio = k': its exponent and its level at ``k``."""
    grows = "grows like k" if abs(slope - 1) <= tol else f"grows like k^{slope:.3f}"
    off = level / k - 1
    at = "equals k" if abs(off) <= tol else f"is {abs(off):.0%} {'above' if off > 0 else 'below'} k"
    return f"{name}: log-log slope {slope:.4f} ({grows}); at k = {k:g} the fitted ratio {level:.1f} {at}"


def bend_findings(ls: Sequence[float], curves: Mapping[str, Sequence[float]], threshold: float = 0.9) -> list[str]:
    """Chapter 3's bends: how close each curve of ratio ÷ k starts to 1, where it first falls below ``threshold``,
    and where a curve changes sign (and how high it rose before, where it rose above ``2 - threshold``)."""
    ls = np.asarray(ls, dtype=float)
    out, where = [], {}
    for name, r in curves.items():
        r = np.asarray(r, dtype=float)
        below = np.flatnonzero(r < threshold)
        where[name] = ls[below[0]] if below.size else None
    start = max(abs(float(np.asarray(r)[0]) - 1) for r in curves.values())
    out.append(f"at l = {ls[0]:.3g} every curve is within {start:.2g} of 1")
    fell = {n: w for n, w in where.items() if w is not None}
    if fell:  # curves that first fall at the same grid point are named together
        lo, hi = min(fell.values()), max(fell.values())
        first, last = ([f"'{n}'" for n, w in fell.items() if w == at] for at in (lo, hi))
        if len(fell) > 1 and lo == hi:
            out.append(f"{_and(first)} fall below {threshold:g} at the same l = {lo:.3g}")
        else:
            out.append(f"the first to fall below {threshold:g} {'is' if len(first) == 1 else 'are'} {_and(first)} at l = {lo:.3g}"
                       + (f"; the last, {_and(last)}, at l = {hi:.3g}" if len(fell) > 1 else ""))
    never = [n for n, w in where.items() if w is None]
    if never:
        out.append(f"never below {threshold:g} up to l = {ls[-1]:.3g}: " + ", ".join(f"'{n}'" for n in never))
    for name, r in curves.items():  # a ratio that changes sign: one slope passed through 0 (a pole where it is dγ_p/dl)
        r = np.asarray(r, dtype=float)
        flips = np.flatnonzero(np.sign(r[1:]) * np.sign(r[:-1]) < 0)
        if flips.size == 0:
            continue
        i = int(flips[0])
        peak = float(r[: i + 1].max())
        out.append(f"'{name}' changes sign between l = {ls[i]:.3g} and l = {ls[i + 1]:.3g}"
                   + (f", after rising to {peak:.3g}" if peak > 2 - threshold else "")
                   + ": one of the two slopes passes through 0 there, and past it the alignment and pre-training "
                   "rates move the same way" + (f" (it changes sign {flips.size - 1} more times up to l = {ls[-1]:.3g})"
                                                  if flips.size > 1 else ""))
    return out


def force_balance_findings(rows: Sequence[Mapping[str, float]], *, tol: float = 0.05) -> list[str]:
    """Chapter 4's springs at a small pull. Each row holds ``n_p``, ``n_a``, ``dkl_p``, ``dkl_a``: how many
    size pairs have forces of opposite sign, equal in magnitude within ``tol``, and deformations whose
    ratio |ΔKL_a/ΔKL_p| is the stiffness ratio |D_p|/|D_a| within ``tol``."""
    n = len(rows)
    f_ratio = [abs(r["n_p"] * r["dkl_p"]) / abs(r["n_a"] * r["dkl_a"]) for r in rows]
    opposite = sum(r["dkl_p"] * r["dkl_a"] < 0 for r in rows)
    equal = sum(abs(f - 1) <= tol for f in f_ratio)
    d_ratio = [abs(r["dkl_a"] / r["dkl_p"]) / (r["n_p"] / r["n_a"]) for r in rows]
    stiff = sum(abs(d - 1) <= tol for d in d_ratio)
    return [f"forces of opposite sign for {_count(opposite, n)} size pairs",
            f"|F_p| / |F_a| between {min(f_ratio):.4g} and {max(f_ratio):.4g}: equal within {tol:.0%} for {_count(equal, n)} size pairs",
            f"the alignment spring's deformation is the stiffness ratio |D_p|/|D_a| times the pre-training spring's, "
            f"within {tol:.0%}, for {_count(stiff, n)} size pairs"]


def invariant_findings(pulls: Sequence[float], ratios: Mapping[str, Sequence[float]], *, tol: float = 0.05,
                       n_a: float | None = None) -> list[str]:
    """Chapter 4's invariant against the pull: for each KL order, |F_p|/|F_a| at the smallest pull and the
    first pull at which it is more than ``tol`` from 1 (with ``n_a``, also as a share l = |D_t|/|D_a| of the
    alignment set)."""
    pulls = np.asarray(pulls, dtype=float)
    out = []

    def share(x: float) -> str:
        return "" if n_a is None else f" (l = |D_t|/|D_a| = {x / n_a:.3g})"

    for name, r in ratios.items():
        r = np.asarray(r, dtype=float)
        off = np.flatnonzero(np.abs(r - 1) > tol)
        if off.size == 0:
            out.append(f"{name}: the forces agree within {tol:.0%} at every pull up to {pulls[-1]:.3g}")
        elif off[0] == 0:
            out.append(f"{name}: the forces differ by more than {tol:.0%} already at the smallest pull "
                       f"(|F_p|/|F_a| = {r[0]:.4f} at |D_t| = {pulls[0]:.3g})")
        else:
            out.append(f"{name}: the forces agree within {tol:.0%} at small pulls (|F_p|/|F_a| = {r[0]:.4f} at "
                       f"|D_t| = {pulls[0]:.3g}) and part from |D_t| = {pulls[off[0]]:.3g}{share(pulls[off[0]])} on")
    return out
