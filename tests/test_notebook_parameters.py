"""Every papermill parameter of every notebook takes effect, in any order, from a fresh kernel.

The checks stay cheap: which cell reads each parameter is checked on the sources; the parameters
and setup cells of all eight notebooks run once, in one kernel, with every parameter changed; and
notebook 08's cells up to its training run twice, with two held-out draws.
"""
import ast
import json

import nbformat
import pytest

from msrn_core.running.run_notebooks import NOTEBOOK_DIR

papermill = pytest.importorskip("papermill")
from papermill.iorw import load_notebook_node  # noqa: E402
from papermill.parameterize import parameterize_notebook  # noqa: E402

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
PARAMETERS_CELL, SETUP_CELL = 2, 3

# a value other than the default for every parameter of every notebook
OTHER_VALUES = {
    "SMALL": True, "RUNS": "other-runs", "FORCE_TRAIN": True, "T": 0.5, "P_REWEIGHT": 0.2, "NUM_SAMPLES": 4,
    "TOP_K": 2, "FIT_STEPS": 10, "M_RANGE": [3, 5], "NUM_IMAGES": 2, "NUM_EVAL_IMAGES": 8, "DATASET": "scenes",
    "DATA_ROOT": "data", "SCHEDULE": "cpu", "POINTING_IMAGES": 8, "PR_CLASSES": ["car"], "WHY_IMAGES": 8,
    "BEYOND_THE_PAPER": False, "LOSS_FORM": "authors", "APUS_STEPS": 3, "UNSEEN_SEED": 1, "NUM_PRINCIPAL": 3,
    "SHOW_IMAGES": 1,
}


def parameters(path) -> dict:
    """The notebook's parameters and their defaults, in the order of its parameters cell."""
    cell = nbformat.read(path, as_version=4).cells[PARAMETERS_CELL]
    return {s.targets[0].id: ast.literal_eval(s.value) for s in ast.parse(cell.source).body}


def first_uses(sources, names) -> dict:
    """For each name, "read" or "assigned": what the code cells ``sources`` do with it first.

    Statement by statement; a statement that reads a name and assigns it (``SMALL = f(SMALL)``)
    reads it first.
    """
    first = {}
    for source in sources:
        for statement in ast.parse(source).body:
            nodes = [n for n in ast.walk(statement) if isinstance(n, ast.Name) and n.id in names]
            for name in {n.id for n in nodes} - set(first):
                reads = any(isinstance(n.ctx, ast.Load) for n in nodes if n.id == name)
                first[name] = "read" if reads else "assigned"
    return first


def test_first_uses_tells_a_read_from_an_overwrite():
    assert first_uses(["x = 1\nSTEPS = 30", "print(STEPS)"], {"STEPS"}) == {"STEPS": "assigned"}
    assert first_uses(["SMALL = flag(SMALL)"], {"SMALL"}) == {"SMALL": "read"}
    assert first_uses(["y = 2"], {"T"}) == {}


def test_every_parameter_has_another_value_to_try():
    names = {name for path in NOTEBOOKS for name in parameters(path)}
    assert names == set(OTHER_VALUES)
    for path in NOTEBOOKS:
        for name, default in parameters(path).items():
            assert OTHER_VALUES[name] != default, f"{path.stem}: {name}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_parameter_is_read_before_anything_overwrites_it(path):
    """A parameter the notebook assigns before reading would ignore the value papermill injects."""
    names = parameters(path)
    cells = nbformat.read(path, as_version=4).cells[PARAMETERS_CELL + 1:]
    uses = first_uses([c.source for c in cells if c.cell_type == "code"], set(names))
    assert uses == {name: "read" for name in names}


def test_parameters_and_setup_take_every_value_in_any_order(tmp_path, monkeypatch):
    """The parameters and setup cells of every notebook, each with all its parameters changed
    (injected in reverse order, as papermill does for ``-p`` options in any order), in one kernel."""
    from nbclient import NotebookClient

    monkeypatch.setenv("MSRN_FIGURES_DIR", str(tmp_path / "figures"))
    combined = nbformat.v4.new_notebook()
    combined.metadata = nbformat.read(NOTEBOOKS[0], as_version=4).metadata
    expected = {}
    for path in NOTEBOOKS:
        notebook = load_notebook_node(str(path))  # as papermill reads it: every cell has its tags list
        notebook.cells = notebook.cells[:SETUP_CELL + 1]
        values = {name: OTHER_VALUES[name] for name in reversed(list(parameters(path)))}
        if "RUNS" in values:
            values["RUNS"] = str(tmp_path / "runs")
        notebook = parameterize_notebook(notebook, values, kernel_name="python3", language="python")
        check = f"import json\nprint({path.stem[:2]!r}, json.dumps({{n: globals()[n] for n in {sorted(values)!r}}}))"
        combined.cells += notebook.cells[1:] + [nbformat.v4.new_code_cell(check)]
        expected[path.stem[:2]] = values
    NotebookClient(combined, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK_DIR)}}).execute()
    printed = [o.text for c in combined.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "stream"]
    seen = dict(line.split(" ", 1) for text in printed for line in text.splitlines() if line[:2] in expected)
    assert {key: json.loads(value) for key, value in seen.items()} == expected
    assert sum("mode: small (parameter SMALL=True)" in text for text in printed) == len(NOTEBOOKS)


def test_notebook_08_trains_one_run_per_held_out_draw(tmp_path, monkeypatch):
    """Notebook 08 up to its SDL training, run twice with two seeds in small mode: each draw holds out
    other tags, so each trains its own run folder (one run folder for every seed stopped the second)."""
    monkeypatch.setenv("MSRN_FIGURES_DIR", str(tmp_path / "figures"))
    path = NOTEBOOK_DIR / "08_zero_shot_with_sdl.ipynb"
    notebook = nbformat.read(path, as_version=4)
    last = next(i for i, c in enumerate(notebook.cells) if "sdl_run_name(" in c.source)
    notebook.cells = notebook.cells[:last + 1]
    trimmed = tmp_path / path.name
    nbformat.write(notebook, trimmed)
    runs = tmp_path / "runs"
    described = []
    for seed, k in ((1, 7), (2, 3)):
        done = papermill.execute_notebook(str(trimmed), str(tmp_path / f"seed{seed}.ipynb"), cwd=str(NOTEBOOK_DIR),
                                          parameters={"NUM_PRINCIPAL": k, "UNSEEN_SEED": seed, "SMALL": True,
                                                      "RUNS": str(runs)},
                                          progress_bar=False, kernel_name="python3")
        printed = "".join(o.get("text", "") for c in done.cells if c.cell_type == "code" for o in c.outputs)
        described.append(next(line for line in printed.splitlines() if "unseen tags (seed" in line))
        assert f"num_principal={k}" in printed
        assert (runs / "small" / f"sdl-unseen{seed}-k{k}" / "best.pt").is_file()
    assert "(seed 1)" in described[0] and "(seed 2)" in described[1] and described[0] != described[1]
