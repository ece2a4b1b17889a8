"""Compare two executed versions of the notebooks, measured times aside.

    python -m msrn_core.running.compare_runs runs/first/05_train_msrn.ipynb notebooks/05_train_msrn.ipynb
    python -m msrn_core.running.compare_runs saved_run/ notebooks/      # every notebook present in both folders
    python -m msrn_core.running.compare_runs --git HEAD                 # notebooks/ against the last commit

Two runs of ``make tutorial`` on one clone should differ only in measured times (durations,
progress-bar rates, the columns of tables headed "time"): those are masked, everything else
(sources, printed text, tables, images) must agree. Prints one line per difference; the exit
status is 1 when there is one, 0 otherwise.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from ..utils import project_root
from .cli import run_cli
from .notebook_outputs import notebook_differences


def _read(text_or_path):
    import nbformat

    if isinstance(text_or_path, Path):
        return nbformat.read(text_or_path, as_version=4)
    return nbformat.reads(text_or_path, as_version=4)


def notebook_pairs(first: Path, second: Path) -> list[tuple[str, Path, Path]]:
    """(name, first, second) for two notebooks, or for the notebooks two folders share."""
    if first.is_dir() != second.is_dir():
        raise ValueError(f"compare a notebook with a notebook or a folder with a folder, not {first} with {second}")
    if not first.is_dir():
        return [(second.name, first, second)]
    names = sorted({p.name for p in first.glob("*.ipynb")} & {p.name for p in second.glob("*.ipynb")})
    if not names:
        raise FileNotFoundError(f"no notebook is in both {first} and {second}")
    return [(name, first / name, second / name) for name in names]


def committed_version(path: Path, revision: str) -> str:
    """The text of ``path`` at git ``revision``."""
    relative = path.resolve().relative_to(project_root())
    return subprocess.run(["git", "show", f"{revision}:{relative.as_posix()}"], cwd=project_root(),
                          capture_output=True, text=True, check=True).stdout


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m msrn_core.running.compare_runs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", type=Path, help="two notebooks, or two folders of notebooks")
    parser.add_argument("--git", metavar="REVISION", help="compare notebooks/ with its version at REVISION")
    args = parser.parse_args(argv)
    if args.git:
        folder = project_root() / "notebooks"
        pairs = [(p.name, committed_version(p, args.git), p) for p in sorted(folder.glob("[0-9][0-9]_*.ipynb"))]
    elif len(args.paths) == 2:
        pairs = notebook_pairs(*args.paths)
    else:
        parser.error("give two notebooks (or two folders), or --git REVISION")
    differing = 0
    for name, first, second in pairs:
        differences = notebook_differences(_read(first), _read(second))
        differing += bool(differences)
        for line in differences:
            print(f"{name}: {line}")
    print(f"{len(pairs) - differing} of {len(pairs)} notebooks agree (measured times aside)")
    return 1 if differing else 0


def cli(argv=None) -> int:
    return run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(cli())
