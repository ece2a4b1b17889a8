"""Exercises at the end of every notebook, and the checkers that answer back.

Each notebook 01-08 ends with numbered exercises ("2.3": notebook 2, exercise 3) of three kinds:

- *predict, then run*: write a prediction, check it, then run the cell that shows the outcome;
- *by hand*: compute one step of the method in NumPy or plain torch from the inputs
  :func:`given` returns; :func:`check` compares it with what the package computes and, for a
  typical slip (a wrong axis, a missing normalisation, a transposed matrix), says which;
- *experiment*: a short run (under a minute on 2 CPU cores) whose outcome the reader explains;
  it runs only when the reader switches it on.

The answers are in ``notebooks/solutions/`` (one notebook per notebook). An untouched exercise
(``answer = ...``) prints "not tried yet", so "Run all" never stops at an exercise.

    from msrn_core import exercises
    g = exercises.given("1.2")
    answer = ...  # your NumPy code
    exercises.check("1.2", answer)

This is a notebook-helper module: it may import anything in ``msrn_core``; nothing imports it.
"""
from __future__ import annotations

from .core import Exercise, Feedback, Mistake, assess, is_untouched
from . import (dictionary, evaluation, graph_attention, guided_attention, label_graph, label_groups,
               training, zero_shot)

__all__ = ["Exercise", "Feedback", "Mistake", "all_exercises", "check", "exercise", "feedback", "given",
           "not_tried", "tried"]

_MODULES = (label_graph, graph_attention, label_groups, guided_attention, training, evaluation,
            dictionary, zero_shot)
_REGISTRY = {e.number: e for module in _MODULES for e in module.EXERCISES}


def all_exercises() -> list[Exercise]:
    """Every exercise, in notebook order."""
    return list(_REGISTRY.values())


def exercise(number: str) -> Exercise:
    """The exercise ``number`` ("2.3"); a clear error naming the existing numbers otherwise."""
    key = str(number).strip()
    if key not in _REGISTRY:
        notebook = key.split(".")[0]
        known = [n for n in _REGISTRY if n.split(".")[0] == notebook] or list(_REGISTRY)
        raise KeyError(f"there is no exercise {key!r}; notebook {notebook}'s are {', '.join(known)}")
    return _REGISTRY[key]


def given(number: str):
    """The inputs of exercise ``number`` (a namespace: ``g.P``, ``g.t``...), a fresh copy each call."""
    return exercise(number).inputs()


def feedback(number: str, answer) -> Feedback:
    """The verdict on ``answer`` without printing it (what :func:`check` prints)."""
    return assess(exercise(number), answer)


def check(number: str, answer) -> None:
    """Print whether ``answer`` is right and, when it is not, what is wrong and why."""
    print(feedback(number, answer))


def tried(answer) -> bool:
    """False for the untouched placeholder ``...``: the run after a prediction waits for one."""
    return not is_untouched(answer)


def not_tried(number: str, how: str = "set RUN = True in this cell and run it again") -> None:
    """Print that exercise ``number`` has not been tried yet, and how to start it."""
    exercise(number)  # a wrong number fails loudly
    print(f"exercise {number}: not tried yet ({how})")
