"""The README's and docs/own_photos.md's commands, run as written (at smoke-test size, offline).

Each command line of a code block (``python -m msrn_core...``) runs in a fresh folder, in this
process, with options appended that make it small: ``--small`` in place of ``--epochs N``, 64 px,
one-hot label vectors. ``--pretrained`` (ImageNet weights, downloaded) and ``--paper`` (a GPU
recipe) are what cannot run offline: the first is dropped, a command with the second is left out.
"""
from __future__ import annotations

import importlib
import re
import shlex
import shutil
from pathlib import Path

import pytest

from msrn_core.utils import project_root
from photo_fixtures import draw_photo

ROOT = project_root()
README, OWN_PHOTOS = ROOT / "README.md", ROOT / "docs" / "own_photos.md"
SMALL = ["--small", "--image-size", "64", "--batch-size", "2", "--workers", "0", "--label-features", "onehot",
         "--embed-dim", "16", "--fc-hidden", "16", "--device", "cpu"]
OFFLINE_ONLY = {"--pretrained"}  # dropped: ImageNet weights are a download

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def code_blocks(path: Path, after: str = "") -> list[str]:
    """The fenced code blocks of a Markdown file (those after the heading ``after``)."""
    text = path.read_text(encoding="utf-8")
    return re.findall(r"```[a-z]*\n(.*?)```", text[text.index(after):] if after else text, re.DOTALL)


def commands(block: str) -> list[tuple[str, list[str]]]:
    """(module, arguments) of each ``python -m msrn_core...`` line of a block, comments dropped."""
    found = []
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        if len(words) > 2 and words[0].endswith("python") and words[1] == "-m" and words[2].startswith("msrn_core"):
            found.append((words[2], words[3:]))
    return found


def at_small_size(module: str, arguments: list[str]) -> list[str]:
    """The arguments of a command with the options that make it a smoke test."""
    if not module.endswith("train") or "--help" in arguments:
        return arguments
    kept, skip = [], False
    for word in arguments:
        if skip or word in OFFLINE_ONLY:
            skip = False
            continue
        skip = word == "--epochs"  # replaced by --small
        if not skip:
            kept.append(word)
    return kept + SMALL


def run(module: str, arguments: list[str]) -> None:
    main = importlib.import_module(module).main
    assert main(at_small_size(module, arguments)) in (0, None), f"{module} {' '.join(arguments)}"


def labels_csv_example(path: Path) -> str:
    return next(block for block in code_blocks(path) if block.startswith("image,labels"))


def make_photos(folder: Path, labels_csv: str) -> None:
    """The photos a labels.csv names, drawn, and the file itself."""
    for number, row in enumerate(labels_csv.splitlines()[1:]):
        draw_photo(folder / row.split(",")[0], [(number % 4, 8, 8, 48, 40)], 4, seed=number)
    (folder / "labels.csv").write_text(labels_csv)


def notebook_checkpoint(path: str) -> None:
    """The notebooks' MSRN checkpoint (``make tutorial``) at ``path``: the model just trained stands in."""
    from msrn_core.notebook import run_folder
    from msrn_core.running import recipes

    assert Path(path).parent == run_folder("msrn", recipe=recipes.CPU).relative_to(ROOT), \
        "the docs name the folder where the notebooks keep their MSRN"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy("runs/msrn/best.pt", path)


def test_the_labels_csv_examples_agree():
    assert labels_csv_example(README) == labels_csv_example(OWN_PHOTOS)


def test_readme_own_photo_commands(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    block = code_blocks(README, "## Your own photos")[0]
    steps = commands(block)
    assert [module for module, _ in steps] == ["msrn_core.predict", "msrn_core.running.train", "msrn_core.predict"]
    make_photos(tmp_path / "my_photos", labels_csv_example(README))
    draw_photo(tmp_path / "photo.jpg", [(1, 8, 8, 48, 40)], 4)
    run(*steps[1])  # trains runs/msrn on my_photos
    notebook_checkpoint(steps[0][1][steps[0][1].index("--checkpoint") + 1])
    for step in (steps[0], steps[2]):
        run(*step)
    assert (tmp_path / "predictions" / "photo_predict.png").is_file()


def test_own_photos_commands(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    steps = [step for block in code_blocks(OWN_PHOTOS) for step in commands(block)]
    assert [module for module, _ in steps] == ["msrn_core.predict", "msrn_core.running.train", "msrn_core.predict"]
    make_photos(tmp_path / "my_photos", labels_csv_example(OWN_PHOTOS))
    for name in ("photo.jpg", "other.png", "new_photo.jpg"):
        draw_photo(tmp_path / name, [(2, 8, 8, 48, 40)], 4)
    run(*steps[1])
    notebook_checkpoint(steps[0][1][steps[0][1].index("--checkpoint") + 1])
    for step in (steps[0], steps[2]):
        run(*step)
    assert {p.name for p in (tmp_path / "predictions").iterdir()} >= {"photo_predict.png", "other_predict.png",
                                                                      "new_photo_predict.png"}


def test_readme_training_commands(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    steps = commands(code_blocks(README, "## Training from the command line")[0])
    assert len(steps) == 7
    for module, arguments in steps:
        if "--paper" in arguments:
            continue
        if "--help" in arguments:
            with pytest.raises(SystemExit) as done:
                run(module, arguments)
            assert done.value.code == 0 and "--dataset" in capsys.readouterr().out
            continue
        run(module, arguments)
    assert {p.parent.name for p in Path("runs").glob("*/best.pt")} == {"msrn", "plain", "msrn-label", "msrn-last2"}
