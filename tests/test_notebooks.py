"""Every notebook is valid, opens the same way, stays light, and runs top to bottom in small mode."""
import ast
import hashlib
import json
import re
from pathlib import Path

import nbformat
import pytest

from msrn_core.plots import FIGURES_DIR
from msrn_core.running.run_notebooks import NOTEBOOK_DIR, execute_notebook, strip_volatile_metadata

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
EXPECTED = ["01_label_cooccurrence_graph", "02_label_embeddings_and_gat", "03_diffpool_label_groups",
            "04_semantic_guided_attention", "05_train_msrn", "06_evaluate_per_class_ap_and_attention",
            "07_semantic_dictionary_learning", "08_zero_shot_with_sdl"]


def test_the_sequence_is_complete():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_valid_and_opens_like_the_others(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    cells = notebook.cells
    title = cells[0]
    assert title.cell_type == "markdown" and title.source.startswith("# ")
    assert f"colab.research.google.com/github/" in title.source and f"notebooks/{path.name}" in title.source
    assert "What you will learn" in title.source and "Prerequisites" in title.source
    assert 'if "google.colab" in sys.modules' in cells[1].source
    assert "torch" not in re.sub(r"#.*", "", cells[1].source), "the Colab cell must not reinstall torch"
    assert "parameters" in cells[2].metadata.get("tags", []) and "MSRN_SMALL" in cells[2].source
    assert "notebook_setup" in cells[3].source
    source = "\n".join(c.source for c in cells if c.cell_type == "code")
    assert "sys.path" not in source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_carries_outputs_without_volatile_metadata(path):
    notebook = nbformat.read(path, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert sum(bool(c.outputs) for c in code) >= len(code) // 2, "commit the outputs of the full run"
    stripped = nbformat.from_dict(json.loads(json.dumps(notebook)))
    strip_volatile_metadata(stripped)
    assert stripped == notebook, "run `make tutorial` (it strips volatile metadata) before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom_in_small_mode(path, tmp_path, monkeypatch):
    monkeypatch.setenv("MSRN_FIGURES_DIR", str(tmp_path / "figures"))
    executed = execute_notebook(path, small=True, timeout=900, write=False)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    assert any(Path(tmp_path / "figures").glob(f"{path.stem[:2]}_*.png")), "the notebook saves its figures"


# --------------------------------------------------------------------------- parameters (papermill)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_holds_literals_only(path):
    """papermill reads `NAME = literal  # help` lines; anything else hides a parameter from it."""
    cell = nbformat.read(path, as_version=4).cells[2]
    names = []
    for statement in ast.parse(cell.source).body:
        assert isinstance(statement, ast.Assign) and len(statement.targets) == 1, ast.unparse(statement)
        ast.literal_eval(statement.value)  # raises for an expression
        names.append(statement.targets[0].id)
    assert names[0] == "SMALL" and ast.parse(cell.source).body[0].value.value is None  # None: from MSRN_SMALL
    papermill = pytest.importorskip("papermill.translators")
    assert [p.name for p in papermill.PythonTranslator.inspect(cell)] == names


# --------------------------------------------------------------------------- light committed outputs
MB = 1_000_000
ABSOLUTE_PATH = re.compile(r"(?<![\w.~])(/(home|root|tmp|work|Users|usr|opt|var|mnt|content)/|[A-Z]:\\)")


def _images(output):
    return [value for key, value in output.get("data", {}).items() if key.startswith("image/")]


def _texts(output):
    if output.output_type == "stream":
        return [output.text]
    if output.output_type == "error":
        return ["\n".join(output.traceback)]
    return [value for key, value in output.get("data", {}).items() if key.startswith("text/")]


def test_notebooks_and_figures_stay_light():
    sizes = {path.name: path.stat().st_size for path in NOTEBOOKS}
    heavy = {name: round(size / MB, 1) for name, size in sizes.items() if size > 3 * MB}
    assert not heavy, f"notebooks over 3 MB: {heavy}"
    assert sum(sizes.values()) <= 12 * MB, f"the notebooks hold {sum(sizes.values()) / MB:.1f} MB (limit 12)"
    figures = sum(p.stat().st_size for p in FIGURES_DIR.glob("*.png"))
    assert figures <= 8 * MB, f"figures/ holds {figures / MB:.1f} MB (limit 8)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_outputs_hold_no_machine_path_no_traceback_and_no_image_twice(path):
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type != "code":
            continue
        images = [hashlib.sha1(str(image).encode()).hexdigest() for o in cell.outputs for image in _images(o)]
        assert len(images) == len(set(images)), f"cell {index} ({cell.id}) stores an image twice"
        for output in cell.outputs:
            for text in _texts(output):
                assert not ABSOLUTE_PATH.search(text), f"cell {index} ({cell.id}) prints a machine path: " + \
                    ABSOLUTE_PATH.search(text).group(0)
                if output.output_type == "stream" and output.name == "stderr" or output.output_type == "error":
                    assert "Traceback" not in text and "Exception ignored" not in text, \
                        f"cell {index} ({cell.id}) stores a traceback"


def test_output_checks_catch_what_they_look_for():
    """The checks above on a crafted cell: a path, a stderr traceback and a repeated image."""
    assert ABSOLUTE_PATH.search("loaded the finished run in /tmp/timed/wt/runs/notebooks/cpu/msrn")
    assert ABSOLUTE_PATH.search("C:\\Users\\me\\runs")
    assert not ABSOLUTE_PATH.search("loaded the finished run in runs/notebooks/cpu/msrn, P(j | i) = 1/2")
    image = {"image/png": "iVBORw0KGgo="}
    cell = nbformat.v4.new_code_cell(outputs=[nbformat.v4.new_output("execute_result", data=image, execution_count=1),
                                              nbformat.v4.new_output("display_data", data=image)])
    assert [_images(o) for o in cell.outputs] == [["iVBORw0KGgo="], ["iVBORw0KGgo="]]


def test_papermill_changes_a_parameter_in_small_mode(tmp_path):
    """Notebook 01 at another threshold T, as a reader runs it: `papermill -p SMALL True -p T 0.5`."""
    papermill = pytest.importorskip("papermill")
    path = NOTEBOOK_DIR / "01_label_cooccurrence_graph.ipynb"
    done = papermill.execute_notebook(str(path), str(tmp_path / path.name), parameters={"SMALL": True, "T": 0.5},
                                      cwd=str(NOTEBOOK_DIR), progress_bar=False, kernel_name="python3")
    printed = "".join(o.get("text", "") for c in done.cells if c.cell_type == "code" for o in c.outputs)
    assert "mode: small (parameter SMALL=True)" in printed
    assert "at t = 0.5" in printed and "threshold t = 0.5" in printed  # the graph was built at T
