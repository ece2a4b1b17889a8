"""Reproduce the paper's tables: one command per table, one results file per run, one collector.

    python -m msrn_core.running.reproduce list                              # every run and its train command
    python -m msrn_core.running.reproduce run --table 1                     # VOC 2007: MSRN
    python -m msrn_core.running.reproduce run --table 5                     # VOC 2007: no LGE, label-E, group-E, MSRN
    python -m msrn_core.running.reproduce run --table 6                     # VOC 2007: branches last 1, 2, 3, all 4
    python -m msrn_core.running.reproduce run --table 2                     # COCO 2014: MSRN
    python -m msrn_core.running.reproduce run --table dsdl-voc2007          # VOC 2007: DSDL as its authors train it
    python -m msrn_core.running.reproduce run --table dsdl-coco2014         # COCO 2014: DSDL as its authors train it
    python -m msrn_core.running.reproduce run --table authors-voc2007       # VOC 2007: MSRN as its authors train it
    python -m msrn_core.running.reproduce collect                           # the results files as markdown tables
    torchrun --nproc_per_node=4 -m msrn_core.running.reproduce run --table 5  # the same on 4 GPUs

Every run is ``python -m msrn_core.running.train --paper`` (ResNet-101 with ImageNet weights, 448 px,
d = 512, fc1 -> 2048, batch 8, SGD lr 0.01 with the backbone at 0.1 x, x0.1 every 30 of 90
epochs, lambda = 1e-3, m = 4, t = 0.4, p = 0.25) with the paper's 300-d GloVe label vectors
and the table's setting. Runs with the same configuration are one run: Table 1's MSRN, Table
5's full model and Table 6's last three branches share ``runs/reproduce/voc2007-full-b234``.
An interrupted run continues from its ``last.pt`` when the command is repeated.

The two DSDL tables train DSDL (notebook 07) with its authors' recipe instead
(:data:`DSDL_TRAIN_OPTIONS`, from their ``demo_*.py`` defaults and run scripts): their loss
(``--dsdl-loss authors``), lambda = 10, beta = 1e-4 on VOC 2007 and lambda = 0.1, beta = 1e-6
on COCO, ResNet-101 with ImageNet weights, 448 px, batch 32, SGD lr 0.01 with the backbone at
0.1 x, weight decay 1e-4, GloVe label vectors. Their demo decays the learning rate once, x0.1
at epoch 40, and defaults to 200 epochs without saying how many the published models trained;
80 epochs (the decay at 40) is this repository's choice.

The ``authors-voc2007`` table trains MSRN as its authors' code does (``train --authors``, recipe
``authors-voc`` in :mod:`msrn_core.running.recipes`: their model preset, multi-scale crop,
optimiser and fp16 autocast) beside the paper's figures. Every table names the recipe of its
rows (``paper``, ``dsdl-authors`` or ``authors-voc``).

Each finished setting writes ``<results>/table<T>-<setting>.json`` (:data:`RESULT_FORMAT`):
``format``, ``table``, ``setting``, ``dataset``, ``run_dir``, ``command``,
``extra_train_options``, ``config`` (every resolved training option), ``metrics`` (test split,
fractions in [0, 1], as ``test_metrics.json``), ``selection`` (best epoch and its validation
mAP), ``commit`` (``hash``, ``dirty``), ``date`` (UTC, ISO 8601) and ``hardware``. ``collect``
puts the paper's figures beside those measured; a cell without a results file stays empty.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import shlex
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from . import distributed
from ..utils import atomic_write_json, project_root
from .cli import DEBUG_HELP, OneLineParser, run_cli

RESULT_FORMAT = "msrn-reproduction-result/1"
RUNS_DIR = Path("runs/reproduce")
RESULTS_DIR = RUNS_DIR / "results"
DATA_ROOTS = {"voc2007": "data", "coco2014": "data/coco"}
PAPER_TRAIN_OPTIONS = ("--paper", "--label-features", "glove", "--groups", "4", "--lambda", "1e-3",
                       "--t", "0.4", "--p", "0.25")
# DSDL as its authors train it (their demo_voc2007.py / demo_coco.py defaults and run scripts)
DSDL_TRAIN_OPTIONS = ("--model", "dsdl", "--dsdl-loss", "authors", "--backbone", "resnet101", "--pretrained",
                      "--image-size", "448", "--batch-size", "32", "--lr", "0.01", "--backbone-lr-mult", "0.1",
                      "--epochs", "80", "--lr-step", "40", "--label-features", "glove")
DSDL_AUTHORS_OPTIONS = {  # lambda and beta of their run scripts (msrn_core.extras.dsdl.AUTHORS_SETTINGS)
    "voc2007": ("--dsdl-lambda", "10", "--dsdl-beta", "1e-4"),
    "coco2014": ("--dsdl-lambda", "0.1", "--dsdl-beta", "1e-6"),
}
# MSRN as its authors train it (recipes.AUTHORS_VOC; their compactness weight 1e-4, models.py MSGDN.forward)
AUTHORS_TRAIN_OPTIONS = ("--authors", "--label-features", "glove", "--groups", "4", "--lambda", "1e-4",
                         "--t", "0.4", "--p", "0.25")
# options a reproduction fixes: extra options after -- may not change them
FIXED_MODEL_OPTIONS = ("--model", "--dsdl-loss", "--dsdl-lambda", "--dsdl-beta", "--label-features", "--paper",
                       "--authors", "--small")
REQUIRED_KEYS = ("format", "table", "setting", "dataset", "config", "metrics", "commit", "date", "hardware")


@dataclass(frozen=True)
class Setting:
    """One cell group of a paper table: a model configuration and the paper's figures for it."""

    table: str
    key: str  # used on the command line and in file names
    label: str  # as the paper writes it
    dataset: str
    embeddings: str = "full"
    branches: tuple[int, ...] = (2, 3, 4)
    model: str = "msrn"  # msrn | dsdl
    recipe: str = "paper"  # paper (PAPER_TRAIN_OPTIONS) | dsdl-authors (DSDL_TRAIN_OPTIONS) | authors-voc

    @property
    def run_name(self) -> str:
        """The run folder's name: equal configurations share one run."""
        if self.model == "dsdl":
            return f"{self.dataset}-dsdl-authors"
        if self.recipe == "authors-voc":
            return f"{self.dataset}-msrn-authors"
        return f"{self.dataset}-{self.embeddings}-b{''.join(map(str, self.branches))}"


@dataclass(frozen=True)
class Table:
    number: str
    title: str
    settings: tuple[Setting, ...]
    metrics: tuple[str, ...]  # result keys; "AP <class>" reads the per-class AP
    paper: dict  # setting key -> {metric: figure in percent}
    decimals: int = 1  # as the paper prints its figures


VOC_AP = {  # Table 1, column MSRN (ImageNet weights only; MSRN(pre) adds COCO pre-training)
    "aeroplane": 100.0, "bicycle": 98.8, "bird": 98.9, "boat": 99.1, "bottle": 81.6, "bus": 95.5,
    "car": 98.0, "cat": 98.2, "chair": 84.4, "cow": 96.6, "diningtable": 87.5, "dog": 98.6,
    "horse": 98.6, "motorbike": 97.2, "person": 99.1, "pottedplant": 87.0, "sheep": 97.6, "sofa": 86.5,
    "train": 99.4, "tvmonitor": 94.4,
}
COCO_METRICS = ("mAP", "CP", "CR", "CF1", "OP", "OR", "OF1", "CP-3", "CR-3", "CF1-3", "OP-3", "OR-3", "OF1-3")
COCO_FIGURES = (83.4, 86.5, 71.5, 78.3, 86.1, 75.5, 80.4, 84.5, 72.9, 78.3, 84.3, 76.8, 80.4)
DSDL_VOC_AP = dict(zip(VOC_AP, (  # the DSDL authors' README, VOC 2007 table, row DSDL
    99.8, 98.7, 98.4, 97.9, 81.9, 95.4, 97.6, 98.3, 83.3, 95.0, 88.6, 98.0, 97.9, 95.8, 99.0, 86.6, 95.9, 86.4,
    98.6, 94.4)))
DSDL_COCO_FIGURES = (81.7, 84.1, 70.4, 76.7, 85.1, 73.9, 79.1, 88.1, 62.9, 73.4, 89.6, 65.3, 75.6)  # same README

TABLES = {
    "1": Table("1", "Pascal VOC 2007, AP per class and mAP",
               (Setting("1", "full", "MSRN", "voc2007"),),
               ("mAP", *(f"AP {name}" for name in VOC_AP)),
               {"full": {"mAP": 94.9, **{f"AP {name}": ap for name, ap in VOC_AP.items()}}}),
    "2": Table("2", "MS-COCO 2014",
               (Setting("2", "full", "MSRN", "coco2014"),),
               COCO_METRICS, {"full": dict(zip(COCO_METRICS, COCO_FIGURES))}),
    "5": Table("5", "label and group embeddings, Pascal VOC 2007 mAP",
               (Setting("5", "none", "no LGE", "voc2007", embeddings="none"),
                Setting("5", "label", "label-E", "voc2007", embeddings="label"),
                Setting("5", "group", "group-E", "voc2007", embeddings="group"),
                Setting("5", "full", "MSRN", "voc2007")),
               ("mAP",), {"none": {"mAP": 91.75}, "label": {"mAP": 94.42}, "group": {"mAP": 94.20},
                          "full": {"mAP": 94.85}}, decimals=2),
    "6": Table("6", "number of branches, Pascal VOC 2007 mAP",
               (Setting("6", "last1", "last 1", "voc2007", branches=(4,)),
                Setting("6", "last2", "last 2", "voc2007", branches=(3, 4)),
                Setting("6", "last3", "last 3", "voc2007", branches=(2, 3, 4)),
                Setting("6", "all4", "all 4", "voc2007", branches=(1, 2, 3, 4))),
               ("mAP",), {"last1": {"mAP": 94.53}, "last2": {"mAP": 94.66}, "last3": {"mAP": 94.85},
                          "all4": {"mAP": 94.65}}, decimals=2),
    "dsdl-voc2007": Table("dsdl-voc2007", "DSDL (its authors' figures), Pascal VOC 2007, AP per class and mAP",
                          (Setting("dsdl-voc2007", "full", "DSDL", "voc2007", model="dsdl", recipe="dsdl-authors"),),
                          ("mAP", *(f"AP {name}" for name in VOC_AP)),
                          {"full": {"mAP": 94.4, **{f"AP {name}": ap for name, ap in DSDL_VOC_AP.items()}}}),
    "dsdl-coco2014": Table("dsdl-coco2014", "DSDL (its authors' figures), MS-COCO 2014",
                           (Setting("dsdl-coco2014", "full", "DSDL", "coco2014", model="dsdl", recipe="dsdl-authors"),),
                           COCO_METRICS, {"full": dict(zip(COCO_METRICS, DSDL_COCO_FIGURES))}),
    "authors-voc2007": Table("authors-voc2007",
                             "MSRN trained as its authors' code trains it, Pascal VOC 2007, AP per class and mAP",
                             (Setting("authors-voc2007", "full", "MSRN", "voc2007", recipe="authors-voc"),),
                             ("mAP", *(f"AP {name}" for name in VOC_AP)),
                             {"full": {"mAP": 94.9, **{f"AP {name}": ap for name, ap in VOC_AP.items()}}}),
}


class ResultsFileError(ValueError):
    """A results file is unreadable or lacks what the format requires."""


def find_setting(table: str, key: str) -> Setting:
    if table not in TABLES:
        raise ValueError(f"no table {table!r}: the reproducible tables are {', '.join(TABLES)}")
    settings = {s.key: s for s in TABLES[table].settings}
    if key not in settings:
        raise ValueError(f"table {table} has no setting {key!r}; choose from {', '.join(settings)}")
    return settings[key]


def check_extra_options(extra: Sequence[str]) -> None:
    """Refuse extra train options that would silently override the recipe of a table (``--paper`` or DSDL's)."""
    from .train import PAPER_RECIPE_OPTIONS

    fixed_options = {"--" + name.replace("_", "-") for name in PAPER_RECIPE_OPTIONS} | set(FIXED_MODEL_OPTIONS)
    fixed = sorted({option.split("=", 1)[0] for option in extra if option.split("=", 1)[0] in fixed_options})
    if fixed:
        raise ValueError(f"{', '.join(fixed)} cannot change a paper run: the table's recipe fixes "
                         f"{'it' if len(fixed) == 1 else 'them'}. Run python -m msrn_core.running.train directly "
                         "for other settings.")


def train_arguments(setting: Setting, data_root: str | Path | None = None, runs_dir: str | Path = RUNS_DIR,
                    extra: Sequence[str] = ()) -> list[str]:
    """The ``python -m msrn_core.running.train`` options of ``setting`` (``extra`` options appended)."""
    if setting.model == "dsdl":
        recipe = [*DSDL_TRAIN_OPTIONS, *DSDL_AUTHORS_OPTIONS[setting.dataset]]
    elif setting.recipe == "authors-voc":
        recipe = [*AUTHORS_TRAIN_OPTIONS, "--model", "msrn"]
    else:
        recipe = [*PAPER_TRAIN_OPTIONS, "--model", "msrn", "--embeddings", setting.embeddings,
                  "--branches", *map(str, setting.branches)]
    return ["--dataset", setting.dataset, "--data-root", str(data_root or DATA_ROOTS[setting.dataset]),
            *recipe, "--out", str(Path(runs_dir) / setting.run_name), *extra]


def git_commit(root: Path | None = None) -> dict:
    """``{"hash": ..., "dirty": ...}`` of the checkout (``None`` values outside a git checkout)."""
    root = root or project_root()

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()

    try:
        return {"hash": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.CalledProcessError):
        return {"hash": None, "dirty": None}


def describe_hardware() -> dict:
    """The devices a run used, and the software versions that matter for its figures."""
    import torch

    processes = distributed.context().world_size
    hardware = {"processes": processes, "torch": torch.__version__, "python": platform.python_version(),
                "platform": platform.platform(), "cpu": platform.processor() or platform.machine()}
    if torch.cuda.is_available():
        hardware.update(gpu=torch.cuda.get_device_name(), gpus=processes)
    return hardware


def result_record(setting: Setting, argv: Sequence[str], extra: Sequence[str], run_dir: Path) -> dict:
    """The results file's content for a finished run in ``run_dir`` (see the module docstring)."""
    from .train import build_parser, resolve_options

    metrics_path = run_dir / "test_metrics.json"
    if not metrics_path.is_file():
        raise FileNotFoundError(f"{metrics_path} is missing: the run did not finish its test evaluation")
    args = resolve_options(build_parser().parse_args(list(argv)))
    history_path = run_dir / "history.json"
    selection = None
    if history_path.is_file():
        history = json.loads(history_path.read_text())
        validated = [record for record in history if record["val_mAP"] is not None]
        best = max(validated, key=lambda record: record["val_mAP"])
        selection = {"best_epoch": best["epoch"], "val_mAP": best["val_mAP"], "epochs_trained": len(history)}
    return {
        "format": RESULT_FORMAT,
        "table": setting.table,
        "setting": setting.key,
        "dataset": setting.dataset,
        "run_dir": str(run_dir),
        "command": "python -m msrn_core.running.train " + shlex.join(argv),
        "extra_train_options": list(extra),
        "config": vars(args),
        "metrics": json.loads(metrics_path.read_text()),
        "selection": selection,
        "commit": git_commit(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hardware": describe_hardware(),
    }


def train_main(argv: Sequence[str]) -> int:
    """The train CLI (a seam: tests put a stand-in here to check commands without training)."""
    from .train import main

    return main(list(argv))


def run_table(table: str, keys: Sequence[str] | None = None, data_root: str | Path | None = None,
              runs_dir: str | Path = RUNS_DIR, results_dir: str | Path = RESULTS_DIR,
              extra: Sequence[str] = ()) -> list[Path]:
    """Train and evaluate the settings of ``table`` (all, or ``keys``); returns the results files."""
    settings = [find_setting(table, key) for key in keys] if keys else list(TABLES[table].settings)
    check_extra_options(extra)
    written = []
    for setting in settings:
        argv = train_arguments(setting, data_root, runs_dir, extra)
        if distributed.context().is_main:
            print(f"table {table}, {setting.label}: python -m msrn_core.running.train {shlex.join(argv)}")
        status = train_main(argv)
        if status:
            raise SystemExit(status)
        path = Path(results_dir) / f"table{table}-{setting.key}.json"
        if distributed.context().is_main:
            atomic_write_json(path, result_record(setting, argv, extra, Path(runs_dir) / setting.run_name))
            print(f"results written to {path}")
        written.append(path)
    return written


def read_results(results_dir: str | Path) -> dict[tuple[str, str], dict]:
    """Every results file in ``results_dir``, keyed by ``(table, setting)``."""
    if not Path(results_dir).is_dir():
        raise FileNotFoundError(f"no results folder {results_dir}: run a table first "
                                "(python -m msrn_core.running.reproduce run --table 5), or pass --results")
    found = {}
    for path in sorted(Path(results_dir).glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ResultsFileError(f"{path} is not readable JSON ({error}); delete it or run its table again") from error
        missing = [key for key in REQUIRED_KEYS if key not in record] if isinstance(record, dict) else list(REQUIRED_KEYS)
        if missing or record.get("format") != RESULT_FORMAT:
            raise ResultsFileError(
                f"{path} is not a results file of format {RESULT_FORMAT}"
                + (f" (missing: {', '.join(missing)})" if missing else f" (format {record.get('format')!r})")
                + "; move it out of the results folder or run its table again")
        try:
            find_setting(record["table"], record["setting"])
        except ValueError as error:
            raise ResultsFileError(f"{path}: {error}") from error
        found[(record["table"], record["setting"])] = record
    return found


def metric_percent(metrics: dict, key: str) -> float | None:
    """A metric of a results file in percent (``"AP <class>"`` reads the per-class AP)."""
    value = metrics.get("per_class_ap", {}).get(key[3:]) if key.startswith("AP ") else metrics.get(key)
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else 100 * value


def _provenance(setting: Setting, record: dict) -> str:
    commit = record["commit"].get("hash") or "unknown commit"
    hardware = record["hardware"]
    device = f"{hardware['gpus']} x {hardware['gpu']}" if hardware.get("gpu") else hardware.get("cpu", "CPU")
    extra = f", extra options {' '.join(record.get('extra_train_options') or [])}" if record.get(
        "extra_train_options") else ""
    dirty = " (uncommitted changes)" if record["commit"].get("dirty") else ""
    return f"- {setting.label}: commit {commit[:10]}{dirty}, {record['date']}, {device}, torch {hardware['torch']}{extra}"


def table_recipes(table: Table) -> str:
    """The recipe(s) a table's rows train with, as the row label names them."""
    return ", ".join(dict.fromkeys(setting.recipe for setting in table.settings))


def table_markdown(table: Table, results: dict[tuple[str, str], dict]) -> str:
    """One paper table as markdown: a row of the paper's figures, a row of this repository's.

    A cell of this repository's row is filled only from a results file; without one it stays empty.
    """
    by_setting = len(table.settings) > 1
    cells = [(s, m) for s in table.settings for m in table.metrics]
    header = [s.label if by_setting else m.removeprefix("AP ") for s, m in cells]
    paper = [f"{table.paper[s.key][m]:.{table.decimals}f}" for s, m in cells]
    measured = []
    for setting, metric in cells:
        record = results.get((table.number, setting.key))
        value = None if record is None else metric_percent(record["metrics"], metric)
        measured.append("" if value is None else f"{value:.2f}")
    heading = f"Table {table.number}: {table.title}" if table.number.isdigit() else table.title
    lines = [f"**{heading}** (percent)", "",
             "| | " + " | ".join(header) + " |", "|---|" + "---:|" * len(cells),
             "| paper | " + " | ".join(paper) + " |",
             f"| this repository, recipe {table_recipes(table)} | " + " | ".join(measured) + " |"]
    measured_by = [_provenance(s, results[(table.number, s.key)]) for s in table.settings
                   if (table.number, s.key) in results]
    if measured_by:
        lines += ["", "Measured:", *measured_by]
    return "\n".join(lines)


def collect(results_dir: str | Path = RESULTS_DIR) -> str:
    """All reproducible tables as markdown, filled from the results files in ``results_dir``."""
    results = read_results(results_dir)
    return "\n\n".join(table_markdown(TABLES[number], results) for number in TABLES) + "\n"


def list_commands(tables: Sequence[str]) -> str:
    lines = []
    for number in tables:
        for setting in TABLES[number].settings:
            lines.append(f"table {number}, {setting.label}: python -m msrn_core.running.train "
                         f"{shlex.join(train_arguments(setting))}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m msrn_core.running.reproduce",
        description="Reproduce the paper's Tables 1, 2, 5 and 6 with its hyper-parameters (and DSDL's published "
                    "figures with its authors' recipe), and collect the results.",
        epilog=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    debug = argparse.ArgumentParser(add_help=False)  # --debug after the command too
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("list", help="print every run's train command", parents=[debug])
    show.add_argument("--table", choices=list(TABLES), action="append", help="only this table (repeatable)")
    run = commands.add_parser("run", help="train and evaluate a table's settings, write results files",
                              parents=[debug],
                              description="Options after -- go to python -m msrn_core.running.train unchanged "
                                          "(e.g. -- --workers 8 --amp bf16) and are recorded in the results.")
    run.add_argument("--table", required=True, choices=list(TABLES))
    run.add_argument("--setting", action="append", default=None,
                     help="only this setting (repeatable): Table 5: none label group full; "
                          "Table 6: last1 last2 last3 all4; Tables 1, 2 and the DSDL tables: full")
    run.add_argument("--data-root", default=None,
                     help="the dataset's folder (default: data for VOC 2007, data/coco for COCO 2014)")
    run.add_argument("--runs", default=str(RUNS_DIR), help=f"folder of the run folders (default: {RUNS_DIR})")
    run.add_argument("--results", default=str(RESULTS_DIR), help=f"folder of the results files (default: {RESULTS_DIR})")
    gather = commands.add_parser("collect", help="the results files as markdown tables beside the paper's figures",
                                 parents=[debug])
    gather.add_argument("--results", default=str(RESULTS_DIR), help=f"folder of the results files (default: {RESULTS_DIR})")
    gather.add_argument("--out", default=None, help="also write the markdown to this file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = build_parser().parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if args.command == "list":
        print(list_commands(args.table or list(TABLES)))
    elif args.command == "run":
        from .train import build_parser as train_parser
        from ..utils import get_device

        try:
            check_extra_options(extra)
        except ValueError as error:
            raise SystemExit(f"error: {error}") from error

        device = get_device(train_parser().parse_known_args(extra)[0].device)  # as the train CLI will choose it
        with distributed.process_group(device):  # one process group for all settings
            run_table(args.table, args.setting, args.data_root, args.runs, args.results, extra)
    else:
        try:
            markdown = collect(args.results)
        except (FileNotFoundError, ResultsFileError) as error:
            raise SystemExit(f"error: {error}") from error
        print(markdown, end="")
        if args.out:
            Path(args.out).write_text(markdown)
    return 0


def cli(argv: Sequence[str] | None = None) -> int:
    """The console entry point: :func:`main`, with the project's errors as one ``error:`` line."""
    return run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(cli())
