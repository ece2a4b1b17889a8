"""Execute the tutorial notebooks top to bottom, headless, each in a fresh kernel.

    python -m msrn_core.running.run_notebooks            # full mode: outputs written back into the notebooks
    python -m msrn_core.running.run_notebooks --small    # smoke-test size (what CI runs); nothing committed is written
    python -m msrn_core.running.run_notebooks 03 05      # only the notebooks whose names start so

Full mode is what ``make tutorial`` runs: it regenerates every figure in ``figures/`` and the
committed outputs of the notebooks, with volatile metadata (execution times, kernel ids,
widget state) stripped and the outputs only a live kernel can show rewritten for readers without
one (:mod:`.notebook_outputs`), so that a re-run only changes what really changed
(``python -m msrn_core.running.compare_runs`` checks that). Small mode writes
nothing that is committed: its figures go to ``runs/notebooks/small/figures`` (``msrn_core.plots``
decides that, for every client) and ``--write`` saves its notebooks under ``runs/notebooks/small/notebooks``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .. import lessons
from .cli import DEBUG_HELP, OneLineParser, run_cli
from .notebook_outputs import clean_outputs, static_reader_problems, strip_volatile_metadata
from .recipes import small_mode_requested
from .shared_runs import finished_main_job_runs
from ..utils import project_root

NOTEBOOK_DIR = project_root() / "notebooks"


def notebook_paths(prefixes=()) -> list[Path]:
    paths = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if prefixes:
        paths = [p for p in paths if any(p.name.startswith(prefix) for prefix in prefixes)]
    if not paths:
        raise FileNotFoundError(f"no notebooks matching {list(prefixes) or 'NN_*.ipynb'} in {NOTEBOOK_DIR}")
    return paths


def prepare_for_commit(notebook) -> None:
    """What every notebook the runner writes goes through (:mod:`.notebook_outputs`)."""
    strip_volatile_metadata(notebook)
    clean_outputs(notebook)


def execute_notebook(path: Path, small: bool, timeout: int = 3600, write: bool = False):
    """Run ``path`` in a fresh ``python3`` kernel with ``notebooks/`` as working directory."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    previous = os.environ.get("MSRN_SMALL")
    os.environ["MSRN_SMALL"] = "1" if small else "0"
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    try:
        client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})
        client.execute()
    finally:
        if previous is None:
            os.environ.pop("MSRN_SMALL", None)
        else:
            os.environ["MSRN_SMALL"] = previous
    if write:
        prepare_for_commit(notebook)
        nbformat.validate(notebook)
        nbformat.write(notebook, output_path(path, small))
        for problem in static_reader_problems(notebook):  # tests/test_committed_outputs.py fails on these
            print(f"  {path.name}, seen without a kernel: {problem}", flush=True)
    return notebook


def output_path(path: Path, small: bool) -> Path:
    """Where an executed notebook is saved: over the committed one in full mode only."""
    if not small:
        return path
    folder = project_root() / "runs" / "notebooks" / "small" / "notebooks"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / path.name


def main(argv=None) -> int:
    parser = OneLineParser(prog="python -m msrn_core.running.run_notebooks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prefixes", nargs="*", help="run only notebooks whose file names start so (e.g. 03)")
    parser.add_argument("--small", action="store_true",
                        help="smoke-test size (also: MSRN_SMALL=1 in the environment); outputs not saved")
    parser.add_argument("--write", action="store_true", help="save the executed notebooks in small mode too (under runs/notebooks/small/notebooks)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds allowed per cell")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    args = parser.parse_args(argv)
    small = args.small or small_mode_requested()
    timings = {}
    trained_before = [] if small else finished_main_job_runs(small=False)
    started = time.perf_counter()
    for path in notebook_paths(args.prefixes):
        print(f"running {path.name} ({'small' if small else 'full'} mode) ...", flush=True)
        begin = time.perf_counter()
        execute_notebook(path, small, args.timeout, write=args.write or not small)
        timings[path.name] = time.perf_counter() - begin
        print(f"  done in {timings[path.name]:.0f} s", flush=True)
    total = time.perf_counter() - started
    print("\nexecution times:")
    for name, seconds in timings.items():
        print(f"  {name:45s} {seconds:7.0f} s")
    print(f"  {'total':45s} {total:7.0f} s")
    summary = project_root() / "runs" / "notebooks" / ("small" if small else "cpu") / "test_metrics_table.txt"
    if summary.exists():
        print("\n" + summary.read_text())
    timing_file = project_root() / "runs" / "notebooks" / f"timings_{'small' if small else 'full'}.json"
    timing_file.parent.mkdir(parents=True, exist_ok=True)
    timing_file.write_text(json.dumps({"seconds": timings, "total": total}, indent=2))
    main_job = record_main_job_seconds(timings, small, trained_before=trained_before)
    if main_job is not None:
        print(f"main job (notebooks {', '.join(MAIN_JOB)}): {main_job:.0f} s, recorded in lessons.json")
    elif trained_before and not small:
        print(f"main job: not timed, its runs {', '.join(trained_before)} were finished before it started "
              "(lessons.json keeps the time of the run that trained them)")
    return 0


MAIN_JOB = ("01", "02", "03", "04", "05", "06")  # what `make tutorial` runs


def record_main_job_seconds(timings: dict[str, float], small: bool, directory=None,
                            trained_before: Sequence[str] = ()) -> float | None:
    """Record the main job's wall time in ``lessons.json`` when notebooks 01-06 all ran in full mode
    and trained every run of the main job: ``trained_before`` (the runs already finished when it
    started, :func:`.shared_runs.finished_main_job_runs`) must be empty, else the time measured is
    that of loading them."""
    seconds = {prefix: [t for name, t in timings.items() if name.startswith(prefix)] for prefix in MAIN_JOB}
    if small or trained_before or not all(seconds.values()):
        return None
    total = sum(t for values in seconds.values() for t in values)
    lessons.record("main_job_seconds", total, "main job: run_notebooks", directory)
    return total


def cli(argv=None) -> int:
    """The console entry point: :func:`main`, with the project's errors as one ``error:`` line."""
    return run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(cli())
