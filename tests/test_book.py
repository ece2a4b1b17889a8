"""`make book`: the notebooks with their committed outputs as a static HTML site, built offline."""
import json
import re

from msrn_core.running.book import build_book, front_page
from msrn_core.running.run_notebooks import notebook_paths


def test_the_book_of_one_notebook_shows_its_text_and_every_figure(tmp_path):
    path = notebook_paths(["01"])[0]
    index = build_book([path], tmp_path / "book")
    page = index.parent / f"{path.stem}.html"
    assert index.is_file() and page.is_file()
    assert f'href="{path.stem}.html"' in index.read_text()
    html = page.read_text()
    cells = json.loads(path.read_text())["cells"]
    figures = sum("image/png" in o.get("data", {}) for c in cells if c["cell_type"] == "code" for o in c["outputs"])
    shown = re.findall(r'<img[^>]+src="(_images/[^"]+\.png)"', html)
    assert figures and len(shown) == figures
    assert all((index.parent / src).is_file() for src in shown)
    assert "co-occurrence" in html.lower()


def test_the_front_page_lists_the_notebooks_in_order():
    paths = notebook_paths()
    page = front_page(paths)
    assert page.index(paths[0].stem) < page.index(paths[-1].stem) and "{toctree}" in page
