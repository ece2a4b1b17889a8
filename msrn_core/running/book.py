"""A static HTML book of the notebooks, with their committed outputs, built offline.

    python -m msrn_core.running.book                 # all eight notebooks into build/book (what `make book` runs)
    python -m msrn_core.running.book 01 --out /tmp/b # only the notebooks whose names start so

Sphinx with MyST-NB (the ``book`` extra): the notebooks are rendered as committed, never executed,
so the book shows exactly what ``make tutorial`` wrote, figures included; a Markdown cell is read
as MyST Markdown (CommonMark with ``$...$`` maths). The notebooks and a generated front page are
copied to ``<out>/source`` and built into ``<out>/html``; open ``<out>/html/index.html`` in a
browser. The build needs no network; the maths is typeset by MathJax, which the browser loads
when it has the network (offline the TeX source shows).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from ..utils import project_root
from .cli import run_cli
from .run_notebooks import notebook_paths

DEFAULT_OUT = Path("build") / "book"
TITLE = "MSRN tutorial: multi-label image classification with label semantics"
SPHINX_SETTINGS = {
    "project": "MSRN tutorial",
    "extensions": ["myst_nb"],
    "nb_execution_mode": "off",  # the committed outputs, as make tutorial wrote them
    "myst_enable_extensions": ["dollarmath", "amsmath"],
    "html_theme": "alabaster",
    "html_title": "MSRN tutorial",
    "html_show_sourcelink": False,
    "suppress_warnings": ["myst.header", "myst.xref_missing", "mystnb.unknown_mime_type"],
}


def notebook_title(path: Path) -> str:
    """The first Markdown heading of a notebook."""
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return path.stem


def front_page(paths: list[Path]) -> str:
    """The book's index: what it is, and the notebooks in reading order."""
    entries = "\n".join(path.stem for path in paths)
    return (f"# {TITLE}\n\n"
            "The tutorial's notebooks with the outputs of the committed run: every figure and table as "
            "`make tutorial` (notebooks 01-06) and `make dsdl-sdl` (07-08) wrote them. The widgets "
            "(sliders, menus, the photo upload) work only when a notebook runs in a kernel "
            "(`make lab`, or Colab); here each one shows its figure at the default setting.\n\n"
            f"```{{toctree}}\n:maxdepth: 1\n:caption: Notebooks\n\n{entries}\n```\n")


def build_book(paths: list[Path], out: Path) -> Path:
    """Build the book of ``paths`` under ``out``; returns the path of its front page."""
    try:
        from sphinx.application import Sphinx
    except ImportError as error:
        raise ImportError("the book needs Sphinx and MyST-NB: pip install -e \".[book]\"") from error
    source, html = out / "source", out / "html"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    for path in paths:
        shutil.copy2(path, source / path.name)
    (source / "index.md").write_text(front_page(paths), encoding="utf-8")
    app = Sphinx(str(source), None, str(html), str(out / "doctrees"), "html", confoverrides=SPHINX_SETTINGS,
                 status=None, warning=sys.stderr, freshenv=True)
    app.build()
    if app.statuscode:
        raise RuntimeError(f"Sphinx stopped with status {app.statuscode}")
    return html / "index.html"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m msrn_core.running.book", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prefixes", nargs="*", help="only notebooks whose file names start so (e.g. 01)")
    parser.add_argument("--out", type=Path, default=None, help=f"output folder (default: {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    out = args.out or project_root() / DEFAULT_OUT
    index = build_book(notebook_paths(args.prefixes), out)
    print(f"the book: {index} (open it in a browser)")
    return 0


def cli(argv=None) -> int:
    return run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(cli())
