"""Every notebook is valid, opens the same way, and runs top to bottom in small mode."""
import json
import re
from pathlib import Path

import nbformat
import pytest

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
