"""What the notebook runner writes for readers without a kernel, and the comparison of two runs."""
import copy

import nbformat
import pytest

from msrn_core.running import compare_runs
from msrn_core.running.notebook_outputs import (TIME_MASK, WIDGET_NOTE, WIDGET_VIEW, clean_outputs,
                                                normalise_measured_times, notebook_differences)

STALLED_BAR = "Loading weights:   0%|          | 0/103 [00:00<?, ?it/s]"


def widget(text, model_id):
    return nbformat.v4.new_output("display_data", data={
        WIDGET_VIEW: {"model_id": model_id, "version_major": 2, "version_minor": 0}, "text/plain": text})


def executed_notebook(model_id="a1b2", seconds=101, loss="0.2953", bar_time="00:12"):
    """A notebook as nbclient leaves it: a stalled bar, an empty display, a widget, a table with a time column."""
    table = ("<table>\n<thead>\n<tr><th></th><th>best val mAP (%)</th><th>training time (s)</th></tr>\n</thead>\n"
             f"<tbody>\n<tr><th>MSRN</th><td>76.31</td><td>{seconds}</td></tr>\n</tbody>\n</table>")
    cells = [
        nbformat.v4.new_code_cell("setup = tutorial_data()", outputs=[
            widget(STALLED_BAR, model_id + "0"),
            nbformat.v4.new_output("stream", name="stdout", text=f"epoch 1/2: loss {loss}\n"),
            nbformat.v4.new_output("display_data", data={"text/plain": ""}),
            nbformat.v4.new_output("stream", name="stdout",
                                   text=f"train 100%|##########| 8/8 [{bar_time}<00:00, 1.5it/s]\ndone in {seconds} s\n")]),
        nbformat.v4.new_code_cell("display(widgets.VBox([slider]))", outputs=[
            widget("VBox(children=(FloatSlider(value=0.4),))", model_id + "1"),
            nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})]),
        nbformat.v4.new_code_cell("table", outputs=[nbformat.v4.new_output(
            "execute_result", execution_count=3, data={"text/html": table, "text/plain": f"MSRN 76.31 {seconds}"})]),
    ]
    return nbformat.v4.new_notebook(cells=cells)


def test_clean_outputs_drops_stalled_bars_and_empty_displays_and_explains_widgets():
    notebook = executed_notebook()
    clean_outputs(notebook)
    first, second, _ = [cell.outputs for cell in notebook.cells]
    assert [o.output_type for o in first] == ["stream"]  # the bar and the empty display are gone, the text joined
    assert "epoch 1/2" in first[0].text and "100%|" in first[0].text  # finished text bars stay
    assert second[0].data == {"text/plain": WIDGET_NOTE}  # no repr, no random model id
    assert "image/png" in second[1].data
    nbformat.validate(notebook)


def test_measured_times_are_masked_and_nothing_else():
    assert normalise_measured_times("done in 12.5 s, 3 min | [00:12<00:03, 2.1it/s]") == \
        f"done in {TIME_MASK}, {TIME_MASK} | {TIME_MASK}"
    unchanged = "26 classes, 5 images, seed 3, epoch 2/10: loss 0.2953, t = 0.4, 12 seen tags"
    assert normalise_measured_times(unchanged) == unchanged


def test_two_runs_that_differ_in_times_and_widget_ids_agree():
    first, second = executed_notebook(), executed_notebook(model_id="ffee", seconds=87, bar_time="00:09")
    assert [line.split(":")[0] for line in notebook_differences(first, second)] == [
        "cell 0, output 0", "cell 1, output 0"]  # nbclient's random widget model ids
    for notebook in (first, second):
        clean_outputs(notebook)
    assert notebook_differences(first, second) == []
    assert nbformat.writes(first) != nbformat.writes(executed_notebook())


def test_a_changed_number_or_image_is_a_difference():
    first = executed_notebook()
    assert notebook_differences(first, executed_notebook(loss="0.2954")) == [
        "cell 0, output 1: 'stdout: epoch 1/2: loss 0.2953' against 'stdout: epoch 1/2: loss 0.2954'"]
    other_image = copy.deepcopy(first)
    other_image.cells[1].outputs[1].data["image/png"] = "iVBORw0KGgp="
    assert [line.split(": '")[0] for line in notebook_differences(first, other_image)] == ["cell 1, output 1"]
    assert "image/png: sha1" in notebook_differences(first, other_image)[0]
    other_table = copy.deepcopy(first)
    other_table.cells[2].outputs[0].data["text/html"] = other_table.cells[2].outputs[0].data["text/html"].replace(
        "76.31", "76.32")
    assert notebook_differences(first, other_table) and not notebook_differences(first, executed_notebook(seconds=5))


def test_compare_runs_command(tmp_path, capsys):
    for folder, seconds in (("first", 101), ("second", 98)):
        (tmp_path / folder).mkdir()
        nbformat.write(executed_notebook(seconds=seconds), tmp_path / folder / "05_train.ipynb")
    assert compare_runs.main([str(tmp_path / "first"), str(tmp_path / "second")]) == 0
    assert "1 of 1 notebooks agree" in capsys.readouterr().out
    nbformat.write(executed_notebook(loss="0.3"), tmp_path / "second" / "05_train.ipynb")
    assert compare_runs.main([str(tmp_path / "first" / "05_train.ipynb"),
                              str(tmp_path / "second" / "05_train.ipynb")]) == 1
    assert "05_train.ipynb: cell 0, output 1" in capsys.readouterr().out
    with pytest.raises(ValueError, match="a folder with a folder"):
        compare_runs.main([str(tmp_path / "first"), str(tmp_path / "second" / "05_train.ipynb")])


def test_printed_text_split_differently_by_the_kernel_agrees_and_is_joined():
    def printed(*chunks):
        return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(...)", outputs=[
            nbformat.v4.new_output("stream", name=name, text=text) for name, text in chunks])])

    one = printed(("stdout", "layer2: 8x8\nlayer3: 4x4\n"), ("stderr", "warning\n"), ("stdout", "done\n"))
    split = printed(("stdout", "layer2: 8x8\n"), ("stdout", "layer3: 4x4\n"), ("stderr", "warning\n"),
                    ("stdout", "done\n"))
    assert notebook_differences(one, split) == []
    assert notebook_differences(one, printed(("stdout", "layer2: 8x8\nlayer3: 2x2\n"), ("stderr", "warning\n"),
                                             ("stdout", "done\n")))
    clean_outputs(split)
    assert [(o.name, o.text) for o in split.cells[0].outputs] == [
        ("stdout", "layer2: 8x8\nlayer3: 4x4\n"), ("stderr", "warning\n"), ("stdout", "done\n")]  # order kept
    nbformat.validate(split)


def test_text_printed_around_a_finished_progress_bar_is_joined_as_a_loaded_run_prints_it():
    # a run that trains prints its epochs between progress bars; a finished leave=False bar leaves an
    # empty display, dropped by clean_outputs: the lines on either side become one output, as a
    # loaded run (no bars) prints them
    trained = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("train()", outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="epoch 1/2: loss 0.8\n"),
        nbformat.v4.new_output("display_data", data={"text/plain": ""}),
        nbformat.v4.new_output("stream", name="stdout", text="epoch 2/2: loss 0.5\n")])])
    loaded = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("train()", outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="epoch 1/2: loss 0.8\nepoch 2/2: loss 0.5\n")])])
    clean_outputs(trained)
    clean_outputs(loaded)
    assert trained.cells[0].outputs == loaded.cells[0].outputs
