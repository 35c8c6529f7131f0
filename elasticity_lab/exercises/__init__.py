"""Auto-checked exercises, ARENA style.

A chapter defines a stub that raises ``NotImplementedError`` and calls the chapter's
check, e.g. ``ch01.check_code_lengths(code_lengths)``. A check never raises: it prints
what is right or wrong so that a notebook with unsolved exercises still runs top to
bottom (CI executes every chapter with the stubs in place). Reference solutions live in
one place, ``elasticity_lab.exercises.solutions``; ``show_solution`` prints one and runs
its check, for the hidden "Solution" toggle in the book.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["ExerciseResult", "run_check", "show_solution"]


class ExerciseResult(str):
    """The verdict a check prints, also returned so tests can assert on it."""

    @property
    def passed(self) -> bool:
        return self.startswith("✅")

    @property
    def attempted(self) -> bool:
        return not self.startswith("⏳")

    def _ipython_display_(self) -> None:
        """Already printed by the check: show nothing more as the cell's result."""


def run_check(name: str, fn: Callable[..., Any], cases: Callable[[Callable[..., Any]], None]) -> ExerciseResult:
    """Run ``cases(fn)``, which raises AssertionError with a helpful message on a wrong answer.

    Returns (and prints) a one-line verdict: not attempted, wrong (with the reason) or correct.
    """
    try:
        cases(fn)
    except NotImplementedError:
        verdict = f"⏳ {name}: not attempted yet. Replace the `raise NotImplementedError` with your code and run the cell again."
    except AssertionError as err:
        verdict = f"❌ {name}: {err}"
    except Exception as err:  # noqa: BLE001 - a student's bug must not stop the notebook
        verdict = f"❌ {name}: your function raised {type(err).__name__}: {err}"
    else:
        verdict = f"✅ {name}: correct."
    result = ExerciseResult(verdict)
    print(result)
    return result


def show_solution(fn: Callable[..., Any], check: Callable[[Callable[..., Any]], ExerciseResult]) -> ExerciseResult:
    """Print the source of a reference solution and run the exercise's check on it."""
    print(inspect.getsource(fn))
    return check(fn)
