"""Checks for chapter 4, "Springs in series: Hooke's law for data sets"."""

from __future__ import annotations

import math
from collections.abc import Callable

from elasticity_lab.exercises import ExerciseResult, run_check


def check_softest_spring(fn: Callable[[dict[str, float]], str]) -> ExerciseResult:
    """Exercise 4.1: which data set's KL moves most under a small perturbation (the smallest one)."""

    def cases(f: Callable[[dict[str, float]], str]) -> None:
        for sizes, want in (({"p": 1e6, "a": 1e3}, "a"), ({"p": 50.0, "a": 2000.0}, "p"),
                            ({"web": 1e9, "safety": 1e4, "style": 300.0}, "style")):
            got = f(dict(sizes))
            assert got == want, (f"sizes {sizes}: the spring that stretches most is {want!r}, you said {got!r}"
                                 + (" (the stiffest spring is the largest data set: a stiff spring stretches least)"
                                    if got == max(sizes, key=sizes.get) else ""))

    return run_check("Exercise 4.1 (which spring stretches most)", fn, cases)


def check_stretches(fn: Callable[[float, dict[str, float]], dict[str, float]]) -> ExerciseResult:
    """Exercise 4.2: Hooke's law in series, ΔKL_i = F / |D_i| for a common force F."""

    def cases(f: Callable[[float, dict[str, float]], dict[str, float]]) -> None:
        for force, sizes in ((1e-3, {"p": 1e5, "a": 100.0}), (2.0, {"p": 4.0, "a": 1.0, "x": 8.0})):
            got = f(force, dict(sizes))
            assert set(got) == set(sizes), f"expected one stretch per data set {sorted(sizes)}, got {sorted(got)}"
            for name, n in sizes.items():
                assert math.isclose(got[name], force / n, rel_tol=1e-9), (
                    f"force {force}, |D_{name}| = {n}: expected ΔKL = {force / n:.4g}, got {got[name]:.4g}"
                    + (" (Hooke's law F = κ·Δx: the stretch is the force divided by the stiffness, not multiplied)"
                       if math.isclose(got[name], force * n, rel_tol=1e-9) else "")
                )

    return run_check("Exercise 4.2 (stretch of each spring)", fn, cases)
