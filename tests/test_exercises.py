"""The exercises answer back: solutions pass, typical slips get their hint, untouched cells say so."""
import contextlib
import io
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from msrn_core import exercises
from msrn_core.running.run_notebooks import NOTEBOOK_DIR

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = NOTEBOOK_DIR / "solutions"
NUMBER = re.compile(r'exercises\.(?:check|not_tried)\("(\d\.\d+)"')


def _cells(path: Path, tag: str) -> list:
    return [c for c in nbformat.read(path, as_version=4).cells
            if c.cell_type == "code" and tag in c.metadata.get("tags", [])]


def _run(source: str, namespace: dict) -> str:
    """Execute ``source`` in ``namespace`` and return what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(source, "<cell>", "exec"), namespace)
    return printed.getvalue()


def _numbers_of(notebook: str) -> list[str]:
    return [e.number for e in exercises.all_exercises() if e.number.split(".")[0] == str(int(notebook))]


def test_thirty_exercises_or_more_numbered_per_notebook_half_checked_by_code():
    listed = exercises.all_exercises()
    assert len(listed) >= 30 and sum(e.checked for e in listed) >= 15
    for notebook in range(1, 9):
        numbers = _numbers_of(f"{notebook:02d}")
        assert numbers == [f"{notebook}.{k}" for k in range(1, len(numbers) + 1)], numbers
        kinds = {e.kind for e in listed if e.number in numbers}
        assert "experiment" in kinds and len(numbers) >= 4
    assert {e.kind for e in listed} == {"predict, then run", "by hand", "experiment"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_each_notebook_ends_with_its_exercises_and_links_its_solutions(path):
    cells = nbformat.read(path, as_version=4).cells
    start = next(i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith("## Exercises"))
    assert all(c.get("id", "").startswith("exercises-") for c in cells[start:]), "exercises come last"
    assert f"solutions/{path.stem}_solutions.ipynb" in cells[start].source
    assert (SOLUTIONS / f"{path.stem}_solutions.ipynb").exists()
    in_cells = [m for c in _cells(path, "exercise") for m in NUMBER.findall(c.source)]
    assert in_cells == _numbers_of(path.stem[:2])
    for number in in_cells:
        kind = exercises.exercise(number).kind
        assert any(c.source.startswith(f"**{number} ({kind}).**") for c in cells[start:]), number


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_untouched_exercise_cells_run_and_say_not_tried_yet(path):
    """What "Run all" executes at the end of each notebook: only the exercise cells, in a fresh namespace.

    Untouched, no cell may need the notebook's state (no model, no data), train or fail.
    """
    namespace = {}
    printed = "".join(_run(cell.source, namespace) for cell in _cells(path, "exercise"))
    for number in _numbers_of(path.stem[:2]):
        assert f"exercise {number}: not tried yet" in printed, number
    assert "correct" not in printed and "wrong" not in printed


@pytest.mark.parametrize("path", sorted(SOLUTIONS.glob("*_solutions.ipynb")), ids=lambda p: p.stem[:2])
def test_every_solution_passes_its_checker(path):
    namespace = {}
    solved = []
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        printed = _run(cell.source, namespace)
        if "solution" in cell.metadata.get("tags", []):
            number = NUMBER.search(cell.source).group(1)
            answer = namespace["answer"] if "answer" in namespace and "answer =" in cell.source else namespace["prediction"]
            verdict = exercises.feedback(number, answer)
            assert verdict.correct, verdict
            assert f"exercise {number}: correct" in printed
            namespace.pop("answer", None), namespace.pop("prediction", None)
            solved.append(number)
    checked = [n for n in _numbers_of(path.stem[:2]) if exercises.exercise(n).checked]
    assert solved == checked


# One typical wrong answer per code-checked exercise, written here independently of the checkers,
# with a piece of the hint it must get.
def _softmax(x, axis):
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


WRONG = {
    "1.1": (lambda g: 11, "diagonal"),
    "1.2": (lambda g: (lambda A: 0.25 * A / (A.sum(1, keepdims=True) + 1e-6) + np.eye(5))(
        (g.P >= g.t).astype(float))[g.names.index(g.label)], "COLUMN sum"),
    "1.3": (lambda g: (lambda d: d[:, None] * g.A_prime * d[None, :])(g.A_prime.sum(1) ** -0.5)[
        g.names.index(g.label)], "transposed"),
    "1.4": (lambda g: "rises", "row sums"),
    "2.1": (lambda g: (lambda uh: _softmax(np.where(uh[g.i] @ g.P[:2] + uh @ g.P[2:] > 0,
                                                    uh[g.i] @ g.P[:2] + uh @ g.P[2:],
                                                    0.2 * (uh[g.i] @ g.P[:2] + uh @ g.P[2:])), 0)[g.j])(g.H @ g.U.T),
            "neighbours N_i only"),
    "2.2": (lambda g: None, None),  # filled below: needs the right alpha
    "2.3": (lambda g: "yes", "LeakyReLU is increasing"),
    "2.4": (lambda g: 384 * 256, "attention vector P"),
    "3.1": (lambda g: g.logits.T @ g.A @ g.logits, "missing normalisation"),
    "3.2": (lambda g: g.S.T @ g.Z / g.S.sum(0)[:, None], "weighted SUM"),
    "3.3": (lambda g: sum(np.linalg.norm(g.E_g[k] - g.E_l[i]) for i, k in enumerate(g.S.argmax(1))), "SQUARED"),
    "3.4": (lambda g: "yes", "same partition"),
    "4.1": (lambda g: _softmax(g.f * g.e[g.label] / g.temperature, 1).mean(1).reshape(3, 3), "wrong axis"),
    "4.2": (lambda g: g.f.mean(0), "average pooling"),
    "4.3": (lambda g: "falls", "flatter"),
    "4.4": (lambda g: 784 * 84 * 512 * 4 / 2**20, "whole batch"),
    "5.1": (lambda g: "load", "FINISHED"),
    "5.2": (lambda g: 3 * 20 * 512 * 2048 + 2048, "group rows"),
    "5.3": (lambda g: 14.0, "inverted"),
    "5.4": (lambda g: "yes", "seed-to-seed spread"),
    "6.1": (lambda g: np.mean([1 / 1, 1 / 2, 2 / 3, 3 / 4, 3 / 5]), "only at the ranks of the positives"),
    "6.2": (lambda g: (40.0, 24.0, False), "swapped"),
    "6.3": (lambda g: 2 * 32 * 32 / 64**2, "UNION"),
    "6.4": (lambda g: None, None),  # filled below: OF1
    "6.5": (lambda g: "the image centre", "FIRST cell"),
    "6.7": (lambda g: np.corrcoef(g.counts, g.gains)[0, 1], "RANKS"),
    "7.1": (lambda g: np.linalg.solve(g.D @ g.D.T, g.D @ g.f), "ridge term is missing"),
    "7.2": (lambda g: None, None),  # filled below: unsquared norms
    "7.3": (lambda g: "unchanged", "1 / lambda"),
    "8.1": (lambda g: (g.A @ g.v).mean(), "BEST principal vector"),
    "8.2": (lambda g: 1 + g.V_positive.var(axis=0).sum(), "unbiased"),
    "8.3": (lambda g: g.positives / g.items, "enumerate"),
    "8.4": (lambda g: "above random", "orthogonal"),
    "8.5": (lambda g: 5 / 26, "7 unseen tags"),
}


def _gat_output_without_self_term(g):
    uh = g.H @ g.U.T
    raw = (uh @ g.P[:2])[:, None] + (uh @ g.P[2:])[None, :]
    e = np.where(g.mask, np.where(raw > 0, raw, 0.2 * raw), -np.inf)
    out = _softmax(e, 1) @ uh
    return np.where(out > 0, out, np.exp(out) - 1)[g.i]


def _of1(g):
    predicted, truth = g.probabilities >= g.threshold, g.targets > 0
    correct = (predicted & truth).sum()
    precision, recall = correct / predicted.sum(), correct / truth.sum()
    return 2 * precision * recall / (precision + recall)


def _rebuilt_unsquared(g):
    a = np.linalg.solve(g.D @ g.D.T + g.ridge_lambda * np.eye(len(g.D)), g.D @ g.f)
    return 1 - np.linalg.norm(g.f - a @ g.D) / np.linalg.norm(g.f)


WRONG["2.2"] = (_gat_output_without_self_term, "self term")
WRONG["6.4"] = (_of1, "OF1")
WRONG["7.2"] = (_rebuilt_unsquared, "squared norms")


def test_every_code_checked_exercise_has_a_typical_wrong_answer_here():
    assert sorted(WRONG) == sorted(e.number for e in exercises.all_exercises() if e.checked)


@pytest.mark.parametrize("number", sorted(WRONG))
def test_a_typical_wrong_answer_fails_with_its_hint(number, capsys):
    make, hint = WRONG[number]
    wrong = make(exercises.given(number))
    exercises.check(number, wrong)
    printed = capsys.readouterr().out
    assert printed.startswith(f"exercise {number}: not quite: ") and hint in printed, printed


@pytest.mark.parametrize("exercise", [e for e in exercises.all_exercises() if e.checked], ids=lambda e: e.number)
def test_every_known_slip_differs_from_the_reference_and_gets_its_own_hint(exercise):
    reference = exercise.reference(exercise.inputs())
    assert exercises.feedback(exercise.number, reference).correct
    for mistake in exercise.mistakes:
        verdict = exercises.feedback(exercise.number, mistake.make(exercise.inputs()))
        assert not verdict.correct and mistake.hint in verdict.message, (mistake.name, verdict)


@pytest.mark.parametrize("number", [e.number for e in exercises.all_exercises()])
def test_the_untouched_placeholder_prints_not_tried_yet(number, capsys):
    exercises.check(number, ...)
    assert capsys.readouterr().out == (f"exercise {number}: not tried yet "
                                       "(replace the `...` by your answer and run the cell)\n")
    assert not exercises.tried(...) and exercises.tried(0)


def test_answers_of_the_wrong_kind_get_one_clear_line():
    assert "shape (5,), got (2,)" in exercises.feedback("1.2", [1.0, 2.0]).message
    reference = exercises.exercise("3.2").reference(exercises.given("3.2"))
    assert "transposed" in exercises.feedback("3.2", reference.T).message
    assert "a number or an array of numbers" in exercises.feedback("6.1", "0.8").message
    assert 'one of "yes", "no"' in exercises.feedback("2.3", "maybe").message
    assert "answered in words" in exercises.feedback("1.5", "the star graph").message
    assert exercises.feedback("6.1", 0.5).status == "wrong"
    with pytest.raises(KeyError, match="notebook 9"):
        exercises.given("9.1")


def test_nothing_in_the_package_imports_the_exercises():
    root = Path(exercises.__file__).parent.parent
    importers = [p for p in root.rglob("*.py") if "exercises" not in p.parts
                 and re.search(r"^\s*(from|import) .*exercises", p.read_text(), re.M)]
    assert not importers


def test_the_readme_counts_the_exercises():
    readme = (NOTEBOOK_DIR.parent / "README.md").read_text()
    listed = exercises.all_exercises()
    assert f"({len(listed)} in all, {sum(e.checked for e in listed)} checked by code)" in readme
