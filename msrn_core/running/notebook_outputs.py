"""What the headless runner writes into the committed notebooks, and how two runs are compared.

A committed notebook is read without a kernel (GitHub, nbviewer, the static book, JupyterLab
before running). What only a live kernel can show is rewritten for that reader, and what changes
on every run without the content changing is removed, so that a second run changes no line but
the measured times:

- :func:`strip_volatile_metadata`  execution times, kernel ids, papermill data, widget state;
- :func:`clean_outputs`            progress bars that a saved notebook shows frozen at their
  start ("Loading weights: 0%"), the empty outputs finished bars leave behind, and ipywidgets
  views: a saved notebook keeps no widget state, so a view shows its Python repr
  (``VBox(children=(...))``) and a random model id; it becomes :data:`WIDGET_NOTE` (the
  notebooks draw the widget's default figure as an image beside it); printed text split into
  chunks by the kernel's flushes is joined;
- :func:`normalise_measured_times` and :func:`notebook_differences`  what
  ``python -m msrn_core.running.compare_runs`` compares.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = ("[interactive widget: it works when the notebook runs in a kernel (JupyterLab, Colab); "
               "the figure beside it shows its default setting]")
VOLATILE_CELL_METADATA = ("execution", "collapsed", "scrolled")
# tqdm's meter: "Loading weights:   0%|          | 0/103 [00:00<?, ?it/s]"
PROGRESS_METER = re.compile(r"\d+%\|[^|\n]*\|\s*[\d.]+[kMG]?/[\d.?]*[kMG]?")


def strip_volatile_metadata(notebook) -> None:
    """Remove what changes on every run without the content changing."""
    notebook.metadata.pop("widgets", None)
    notebook.metadata.pop("papermill", None)
    if "kernelspec" in notebook.metadata:
        notebook.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    if "language_info" in notebook.metadata:
        notebook.metadata["language_info"] = {"name": "python"}
    for cell in notebook.cells:
        for key in VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            for output in cell.get("outputs", []):
                output.get("metadata", {}).pop("execution", None)


def _plain_text(output) -> str:
    text = output.get("data", {}).get("text/plain", "")
    return "".join(text) if isinstance(text, list) else text


def is_stalled_progress_bar(output) -> bool:
    """A tqdm widget bar: saved, it shows its text fallback frozen where the widget started."""
    return WIDGET_VIEW in output.get("data", {}) and bool(PROGRESS_METER.search(_plain_text(output)))


def is_empty_display(output) -> bool:
    """What a finished ``leave=False`` bar leaves: a display with nothing in it."""
    data = output.get("data", {})
    return output.get("output_type") == "display_data" and set(data) <= {"text/plain"} and not _plain_text(output)


def merge_streams(outputs: list) -> list:
    """``outputs`` with consecutive stream outputs of one name (stdout, stderr) joined into one: how
    the kernel's flushes split a cell's printed text changes from run to run, the text does not."""
    merged = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (output.get("output_type") == "stream" and previous is not None
                and previous.get("output_type") == "stream" and previous.get("name") == output.get("name")):
            previous["text"] = "".join(previous.get("text", "")) + "".join(output.get("text", ""))
        else:
            merged.append(copy.deepcopy(output) if output.get("output_type") == "stream" else output)
    return merged


def clean_outputs(notebook) -> None:
    """Drop stalled progress bars and empty displays; turn widget views into :data:`WIDGET_NOTE`;
    join the consecutive printed chunks of a cell (:func:`merge_streams`)."""
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        shown = [output for output in cell.get("outputs", [])
                 if not (is_stalled_progress_bar(output) or is_empty_display(output))]
        for output in merge_streams(shown):  # after the bars are gone: the text around a bar joins too
            data = output.get("data", {})
            if WIDGET_VIEW in data:
                data.pop(WIDGET_VIEW)
                data["text/plain"] = WIDGET_NOTE
            kept.append(output)
        cell["outputs"] = kept


# --------------------------------------------------------------------------------------------
# comparing two runs
# --------------------------------------------------------------------------------------------
TIME_MASK = "<time>"
_MEASURED_TIME = [
    re.compile(r"\[\d+:\d+(:\d+)?(<[\d:?]+)?(, *[^\]]*)?\]"),  # tqdm: [00:12<00:03, 2.1it/s]
    re.compile(r"\d+(\.\d+)?\s*(s/it|it/s)"),
    re.compile(r"\d+(\.\d+)?\s*(ms|s|sec|seconds?|min|minutes?|h|hours?)\b"),  # 12 s, 1.5 min, 3 seconds
]
_TIME_HEADER = re.compile(r"\btime\b|\((s|min)\)|\bseconds\b", re.IGNORECASE)
_HTML_ROW = re.compile(r"<tr[^>]*>(.*?)</tr>", re.DOTALL)
_HTML_CELL = re.compile(r"<(t[hd])([^>]*)>(.*?)</\1>", re.DOTALL)


def normalise_measured_times(text: str) -> str:
    """``text`` with every measured time (a number with a time unit, a tqdm meter) as ``<time>``."""
    for pattern in _MEASURED_TIME:
        text = pattern.sub(TIME_MASK, text)
    return text


def _mask_time_columns(html: str) -> str:
    """An HTML table (pandas' ``to_html``) with the cells of its time columns masked."""
    rows = _HTML_ROW.findall(html)
    if not rows:
        return html
    header = [content for _, _, content in _HTML_CELL.findall(rows[0])]
    columns = {i for i, content in enumerate(header) if _TIME_HEADER.search(re.sub(r"<[^>]+>", "", content))}
    if not columns:
        return html

    def mask_row(match):
        cells = iter(range(10**6))
        return _HTML_CELL.sub(lambda cell: (f"<{cell.group(1)}{cell.group(2)}>{TIME_MASK}</{cell.group(1)}>"
                                            if next(cells) in columns else cell.group(0)), match.group(0))

    head, _, body = html.partition("</thead>")
    return head + "</thead>" + _HTML_ROW.sub(mask_row, body) if body else html


def comparable_outputs(cell) -> list[str]:
    """A code cell's outputs, one text each, with measured times masked and images as their hashes
    (an HTML table stands for the text form of the same table)."""
    texts = []
    for output in merge_streams(cell.get("outputs", [])):
        kind = output.get("output_type")
        if kind == "stream":
            texts.append(f"{output.get('name')}: " + normalise_measured_times("".join(output.get("text", ""))))
        elif kind == "error":
            texts.append(f"error: {output.get('ename')}: {output.get('evalue')}")
        else:
            parts = []
            data = output.get("data", {})
            for mime in sorted(data):
                value = data[mime]
                value = "".join(value) if isinstance(value, list) else value
                if mime == "text/plain" and "text/html" in data:
                    continue
                if mime == "text/html":
                    value = _mask_time_columns(value)
                if mime.startswith("text/"):
                    parts.append(f"{mime}: {normalise_measured_times(value)}")
                else:
                    parts.append(f"{mime}: sha1 {hashlib.sha1(json.dumps(value).encode()).hexdigest()[:12]}")
            texts.append("\n".join(parts))
    return texts


def notebook_differences(first, second) -> list[str]:
    """What differs between two executed versions of one notebook, measured times aside.

    One line per difference (cell number and what differs); empty when they agree.
    """
    differences = []
    if len(first.cells) != len(second.cells):
        return [f"{len(first.cells)} cells against {len(second.cells)}"]
    for index, (a, b) in enumerate(zip(first.cells, second.cells)):
        if a.cell_type != b.cell_type or a.source != b.source:
            differences.append(f"cell {index}: the source differs")
        elif a.cell_type == "code":
            left, right = comparable_outputs(a), comparable_outputs(b)
            if len(left) != len(right):
                differences.append(f"cell {index}: {len(left)} outputs against {len(right)}")
            for number, (x, y) in enumerate(zip(left, right)):
                if x != y:
                    differences.append(f"cell {index}, output {number}: {_first_difference(x, y)}")
    return differences


def _first_difference(x: str, y: str) -> str:
    for line_x, line_y in zip(x.splitlines(), y.splitlines()):
        if line_x != line_y:
            return f"{line_x.strip()[:100]!r} against {line_y.strip()[:100]!r}"
    return f"{len(x.splitlines())} lines against {len(y.splitlines())}"


# --------------------------------------------------------------------------------------------
# what a reader without a kernel must never see
# --------------------------------------------------------------------------------------------
_BAR_PERCENT = re.compile(r"(\d+)%\|[^|\n]*\|\s*[\d.]+[kMG]?/[\d.?]*[kMG]?")
_WIDGET_REPR = re.compile(r"^\s*(?:[A-Z]\w*Box|interactive|\w*(?:Slider|Dropdown|Upload|Output|Image|Button|Text|HTML))"
                          r"\((?:children|value|layout|description|options|outputs|index)=")
_NUMPY_REPR = re.compile(r"\bnp\.(?:float|int|uint|bool|complex|str_|bytes_|datetime64|timedelta64)\w*\(")


def _texts(output) -> list[str]:
    """Every text a reader sees in ``output`` (stream text, tracebacks, text/* representations)."""
    if output.get("output_type") == "stream":
        return ["".join(output.get("text", ""))]
    if output.get("output_type") == "error":
        return ["\n".join(output.get("traceback", []))]
    return ["".join(v) if isinstance(v, list) else v for k, v in output.get("data", {}).items()
            if k.startswith("text/")]


def _has_image(output) -> bool:
    """Whether ``output`` carries an image (any ``image/*`` representation)."""
    return any(kind.startswith("image/") for kind in output.get("data", {}))


def _shown_lines(text: str) -> list[str]:
    """The lines a reader sees: of each line, the last text written after a carriage return (a bar's
    final state; a bar cleared by spaces shows blank)."""
    return [next((part for part in reversed(line.split("\r")) if part), "") for line in text.split("\n")]


def static_reader_problems(notebook) -> list[str]:
    """What a reader of the saved notebook (GitHub, nbviewer, the book) would see of a live kernel's
    outputs, one line each: a progress bar that did not finish, a widget with no state (its view
    or its Python repr), a NumPy scalar repr (``np.float64(0.87)``), or a widget cell without an
    image of its default setting and :data:`WIDGET_NOTE`. Empty when there is none."""
    problems = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        where = f"cell {index} ({cell.get('id', '?')})"
        widget_cell = False
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data:
                problems.append(f"{where}: a widget view with no saved state")
                widget_cell = True
            for text in _texts(output):
                for line in _shown_lines(text):
                    bar = _BAR_PERCENT.search(line)
                    if bar and int(bar.group(1)) < 100:
                        problems.append(f"{where}: a progress bar that did not finish: {line.strip()[:80]!r}")
                numpy_repr = _NUMPY_REPR.search(text)
                if numpy_repr:
                    problems.append(f"{where}: a NumPy repr {numpy_repr.group(0)!r}: print the number (float(x), f'{{x:.3f}}')")
            plain = _plain_text(output)
            if plain and _WIDGET_REPR.search(plain) and not _has_image(output):
                problems.append(f"{where}: a widget's Python repr {plain.strip()[:60]!r}")
                widget_cell = True
            widget_cell |= WIDGET_NOTE in plain
        if widget_cell:
            outputs = cell.get("outputs", [])
            if not any(_has_image(o) for o in outputs):
                problems.append(f"{where}: a widget without an image of its default setting in the same cell")
            if not any(WIDGET_NOTE in _plain_text(o) for o in outputs):
                problems.append(f"{where}: a widget without the sentence saying it works in a kernel")
    return problems
