"""What an exercise is, and how an answer is compared with the package's reference.

An :class:`Exercise` holds its number ("2.3": notebook 2, exercise 3), its kind, the inputs it
gives the reader (:attr:`Exercise.given`) and, when it is checked by code, the reference the
package computes from those inputs and the typical :class:`Mistake` s, each a function that
builds the wrong answer from the same inputs and the hint that says what went wrong.
:func:`assess` compares an answer with the reference, then with every mistake, and returns a
:class:`Feedback`; it never raises, whatever the reader passes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable, Sequence

import numpy as np

KINDS = ("predict, then run", "by hand", "experiment")


@dataclass(frozen=True)
class Mistake:
    """A typical wrong answer: ``make(given)`` builds it, ``hint`` says what is wrong and why."""

    name: str
    make: Callable[[SimpleNamespace], Any]
    hint: str


@dataclass(frozen=True)
class Exercise:
    """One exercise. ``reference`` is None for exercises answered in words (the solutions notebook).

    ``choices``: for a multiple-choice prediction, the answers accepted (compared case- and
    space-insensitively); ``reference`` then returns one of them. ``atol``: the tolerance of a
    numeric answer. ``why``: printed with a right answer, the point of the exercise.
    """

    number: str
    kind: str
    title: str
    given: Callable[[], dict] | None = None
    reference: Callable[[SimpleNamespace], Any] | None = None
    mistakes: Sequence[Mistake] = field(default_factory=tuple)
    choices: Sequence[str] = ()
    atol: float = 1e-4
    why: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"exercise {self.number}: unknown kind {self.kind!r}; choose one of {KINDS}")

    @property
    def checked(self) -> bool:
        """True when code checks the answer (else the solutions notebook answers it in words)."""
        return self.reference is not None

    def inputs(self) -> SimpleNamespace:
        """The inputs the exercise gives, a fresh copy every call (the reader may change them)."""
        return SimpleNamespace(**(self.given() if self.given else {}))


@dataclass(frozen=True)
class Feedback:
    """The verdict on one answer: ``status`` is "correct", "wrong" or "not tried yet"."""

    number: str
    status: str
    message: str

    @property
    def correct(self) -> bool:
        return self.status == "correct"

    def __str__(self) -> str:
        return f"exercise {self.number}: {self.message}"


def is_untouched(answer) -> bool:
    """True for the ``answer = ...`` placeholder (Python's Ellipsis) or None."""
    return answer is Ellipsis or answer is None


def _as_array(value) -> np.ndarray | None:
    """``value`` as a float array (tensors, lists, tuples, numbers, booleans), None if it is not numeric."""
    if isinstance(value, (str, bytes)):
        return None
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return array if array.dtype != object else None


def same(answer, expected, atol: float) -> bool:
    """True when ``answer`` equals ``expected``: strings after normalising case and spaces,
    numbers and arrays within ``atol`` (a 1-element array matches a number)."""
    if isinstance(expected, str):
        return isinstance(answer, str) and normalise_choice(answer) == normalise_choice(expected)
    got, want = _as_array(answer), _as_array(expected)
    if got is None or want is None:
        return False
    if got.size == want.size == 1:
        got, want = got.reshape(()), want.reshape(())
    return got.shape == want.shape and bool(np.allclose(got, want, atol=atol, rtol=0, equal_nan=True))


def normalise_choice(text: str) -> str:
    return " ".join(str(text).lower().replace("_", " ").split())


def _shape_message(answer, expected) -> str | None:
    """A hint when a numeric answer has the wrong shape (transposed, or not one value per entry)."""
    got, want = _as_array(answer), _as_array(expected)
    if got is None:
        return (f"expected a number or an array of numbers, got {type(answer).__name__}; "
                "compute it with NumPy or torch and assign the result to `answer`")
    if want is None or got.size == want.size == 1 or got.shape == want.shape:
        return None
    if got.ndim == 2 and want.ndim == 2 and got.shape == want.shape[::-1]:
        if np.allclose(got.T, want, atol=1e-4, rtol=0):
            return (f"the values are right but the matrix is transposed: expected shape {want.shape}, "
                    f"got {got.shape}")
        return f"expected shape {want.shape}, got {got.shape}: is a matrix transposed somewhere?"
    if got.size == want.size:
        return f"expected shape {want.shape}, got {got.shape} (the same number of values: reshape it)"
    return f"expected shape {want.shape}, got {got.shape}"


def assess(exercise: Exercise, answer) -> Feedback:
    """Compare ``answer`` with the package's reference and with every typical mistake."""
    number = exercise.number
    if is_untouched(answer):
        return Feedback(number, "not tried yet", "not tried yet (replace the `...` by your answer and run the cell)")
    if not exercise.checked:
        return Feedback(number, "not tried yet",
                        "answered in words: compare your answer with the solutions notebook")
    given = exercise.inputs()
    expected = exercise.reference(given)
    if exercise.choices:
        if not isinstance(answer, str) or normalise_choice(answer) not in map(normalise_choice, exercise.choices):
            options = ", ".join(f'"{c}"' for c in exercise.choices)
            return Feedback(number, "wrong", f"answer with one of {options} (a string), got {answer!r}")
    if same(answer, expected, exercise.atol):
        return Feedback(number, "correct", "correct." + (f" {exercise.why}" if exercise.why else ""))
    for mistake in exercise.mistakes:
        if same(answer, mistake.make(exercise.inputs()), exercise.atol):
            return Feedback(number, "wrong", f"not quite: {mistake.hint}")
    if not exercise.choices:
        shape = _shape_message(answer, expected)
        if shape:
            return Feedback(number, "wrong", shape)
    return Feedback(number, "wrong", "wrong, and not one of the typical slips this checker knows: "
                    "recompute it step by step against the notebook's worked example")
