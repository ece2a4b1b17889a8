"""The committed outputs read well without a kernel (GitHub, nbviewer, the book): no progress bar
frozen before its end, no widget shown as its Python repr or as a view with no state, no NumPy
scalar repr, and every widget beside an image of its default setting and the sentence saying it
works in a kernel. The same checks on crafted notebooks prove they catch each of these."""
import nbformat
import pytest

from msrn_core.running.notebook_outputs import WIDGET_NOTE, WIDGET_VIEW, clean_outputs, static_reader_problems
from msrn_core.running.run_notebooks import NOTEBOOK_DIR

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
IMAGE = {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure size 800x400>"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_outputs_read_well_without_a_kernel(path):
    problems = static_reader_problems(nbformat.read(path, as_version=4))
    assert not problems, "\n".join(problems)


def _notebook(*outputs, source="x"):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source, outputs=list(outputs))])


def _display(text, **extra):
    return nbformat.v4.new_output("display_data", data={"text/plain": text, **extra})


def _stream(text):
    return nbformat.v4.new_output("stream", name="stderr", text=text)


@pytest.mark.parametrize("outputs, problem", [
    ([_stream("Loading weights:   0%|          | 0/103 [00:00<?, ?it/s]")], "did not finish"),
    ([_stream("train  40%|####      | 4/10 [00:02<00:03]\r")], "did not finish"),
    ([_display("Loading weights:   0%|          | 0/103", **{WIDGET_VIEW: {"model_id": "ab"}})], "no saved state"),
    ([_display("VBox(children=(IntSlider(value=4, description='groups m'),))")], "Python repr"),
    ([_display("interactive(children=(FloatSlider(value=0.4),))")], "Python repr"),
    ([_stream("ARI np.float64(0.873)\n")], "NumPy repr"),
    ([nbformat.v4.new_output("execute_result", execution_count=1, data={"text/plain": "{'m': np.int64(4)}"})],
     "NumPy repr"),
    ([_display(WIDGET_NOTE)], "without an image"),
])
def test_each_problem_of_a_crafted_notebook_is_caught(outputs, problem):
    problems = static_reader_problems(_notebook(*outputs))
    assert problems and problem in problems[0], problems


def test_what_passes_a_finished_bar_a_printed_number_and_an_explained_widget_with_its_image():
    finished = _stream("train  40%|####      | 4/10 [00:02<00:03]\rtrain 100%|##########| 10/10 [00:05<00:00]\n")
    cleared = _stream("val  40%|####      | 4/10 [00:02<00:03]\r                                        \r")
    assert static_reader_problems(_notebook(finished, cleared, _stream("ARI 0.873, np.float64 is a type\n"))) == []
    assert static_reader_problems(_notebook(_display(WIDGET_NOTE), nbformat.v4.new_output("display_data",
                                                                                           data=IMAGE))) == []


def test_the_runner_turns_an_executed_widget_cell_into_what_passes():
    """What nbclient leaves (a stalled bar, a widget view with its repr) fails; clean_outputs (run by
    the notebook runner on every full run) leaves only what passes, given the cell draws its image."""
    executed = _notebook(
        _display("Loading weights:   0%|          | 0/103 [00:00<?, ?it/s]", **{WIDGET_VIEW: {"model_id": "a"}}),
        _display("VBox(children=(IntSlider(value=4),))", **{WIDGET_VIEW: {"model_id": "b"}}),
        nbformat.v4.new_output("display_data", data=IMAGE))
    assert len(static_reader_problems(executed)) >= 2
    clean_outputs(executed)
    assert static_reader_problems(executed) == []
    assert [o.data["text/plain"] for o in executed.cells[0].outputs][0] == WIDGET_NOTE
