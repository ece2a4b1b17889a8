"""Progress bars that read well live and in a saved notebook.

In a notebook, ``tqdm.auto`` draws an ipywidgets bar. A saved notebook keeps no widget state, so
such a bar reopens as its text fallback frozen at the start ("0%| | 0/12"). :func:`progress_bar`
draws the same widget while it runs and, when it closes, replaces it with one line of text: the
bar's final state (or nothing, for ``leave=False`` bars, whose caller prints a summary line).
Outside a notebook it is plain ``tqdm.auto.tqdm``.
"""
from __future__ import annotations

from tqdm.auto import tqdm as auto_tqdm


def _notebook_bar_class():
    """A tqdm.notebook bar that leaves text behind, or None when tqdm.auto is not the widget bar."""
    try:
        from IPython.display import display
        from tqdm.notebook import tqdm as notebook_tqdm
    except ImportError:
        return None
    if not issubclass(auto_tqdm, notebook_tqdm):
        return None

    class TextWhenClosedBar(notebook_tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["display"] = False  # displayed below, with a handle to replace it later
            super().__init__(*args, **kwargs)
            self._handle = None
            if not self.disable and getattr(self, "container", None) is not None:
                self._handle = display(self.container, display_id=True)
                self.displayed = True

        def close(self):
            if self.disable or self._handle is None:
                return super().close()
            text = self.format_meter(**self.format_dict) if self.leave else ""
            handle, self._handle = self._handle, None
            super().close()
            handle.update({"text/plain": text}, raw=True)

    return TextWhenClosedBar


def progress_bar(iterable=None, **kwargs):
    """``tqdm.auto.tqdm(iterable, **kwargs)``; in a notebook, a widget that closes into text."""
    bar_class = _notebook_bar_class() or auto_tqdm
    return bar_class(iterable, **kwargs)
