"""Command-line entry point: train MSRN or a baseline, select on validation, evaluate on test.

Run ``python -m msrn_core.running.train --help`` (or ``msrn-train --help``) for the options.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from .. import defaults
from . import distributed
from .checkpoints import load_model_state, require_checkpoint_file
from ..data.real import DATASETS, read_class_list
from ..data.real.common import DEFAULT_SPLIT_SEED, DEFAULT_VAL_FRACTION
from ..metrics import format_metrics_table
from ..model import CLASSIFIER_KINDS, EMBEDDING_MODES, HEAD_KINDS, config_class
from ..utils import atomic_write_json, get_device, seed_everything
from .cli import (DEBUG_HELP, OneLineParser, non_negative_float, non_negative_int, open_fraction, positive_float,
                  positive_int, probability, run_cli)
from .recipes import AUTHORS_VOC, CPU_SCRATCH as CPU, PAPER, SMALL, Recipe  # the CLI trains from scratch: no pre-training phase
from .run_lock import run_folder_lock
from .training import AMP_MODES, evaluate, load_best, train_model

EXAMPLES = """\
examples:
  # MSRN on the built-in scene dataset, CPU-sized (ResNet-18 from scratch, 128 px): ~7 minutes
  python -m msrn_core.running.train

  # the plain-backbone baseline and the ML-GCN head with the same settings
  python -m msrn_core.running.train --model plain
  python -m msrn_core.running.train --model mlgcn

  # ablations of the paper (Table 5 and 6): label embeddings only, last two stages only
  python -m msrn_core.running.train --embeddings label --out runs/msrn-label
  python -m msrn_core.running.train --branches 3 4 --out runs/msrn-last2

  # the paper's recipe (GPU): ResNet-101 with ImageNet weights, 448 px, batch 8, 90 epochs
  python -m msrn_core.running.train --paper

  # DSDL (notebook 07) with the authors' loss and their VOC lambda and beta
  python -m msrn_core.running.train --model dsdl --dsdl-loss authors --dsdl-lambda 10 --dsdl-beta 1e-4

  # an interrupted run continues where its last epoch ended (same --out); --fresh starts over
  python -m msrn_core.running.train --out runs/msrn

  # a real benchmark on disk (docs/real_benchmarks.md); VOC 2007 can be downloaded once
  python -m msrn_core.running.train --dataset voc2007 --data-root data --download --paper
  python -m msrn_core.running.train --dataset coco2014 --data-root data/coco --paper --label-features glove

  # your own labelled photos (a folder with labels.csv: docs/own_photos.md), three labels kept
  python -m msrn_core.running.train --dataset folder --data-root my_photos --classes cat,dog,person

  # evaluate a saved checkpoint on the test split only (test_metrics.json goes next to it)
  python -m msrn_core.running.train --evaluate runs/msrn/best.pt

  # several GPUs: one process each (DistributedDataParallel); --batch-size stays the global batch
  torchrun --nproc_per_node=4 -m msrn_core.running.train --dataset voc2007 --paper --label-features glove

Outputs in --out: best.pt (best validation mAP), last.pt (resumable), history.json,
test_metrics.json. The test split is never used for model selection. Errors print one line,
"error: ..."; --debug shows the traceback.
"""


def minimum_image_size(kind: str, branches) -> int:
    """The smallest input the model takes: a ResNet stage s maps x pixels to ceil(x / 2^(s+1));
    an MSRN branch max-pools 2x2 and needs 2 pixels there, the baselines need 1 after stage 4."""
    if kind == "msrn":
        return 2 ** (max(branches) + 1) + 1
    return 2 ** 5


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m msrn_core.running.train",
        description="Train MSRN (or a baseline) on a multi-label dataset and evaluate it on the test split.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default="scenes", choices=list(DATASETS),
                      help="dataset to use (default: the built-in scene dataset, generated offline); "
                           "the real benchmarks must be on disk (docs/real_benchmarks.md)")
    data.add_argument("--data-root", default="data",
                      help="folder holding the datasets, or the dataset's own folder (default: data)")
    data.add_argument("--val-fraction", type=open_fraction, default=DEFAULT_VAL_FRACTION,
                      help="real benchmarks: fraction of the training split held out for validation")
    data.add_argument("--split-seed", type=non_negative_int, default=DEFAULT_SPLIT_SEED,
                      help="real benchmarks: seed of the held-out validation split (and of Apparel's 50/50 split)")
    data.add_argument("--classes", default=None, metavar="LIST_OR_FILE",
                      help="keep only these labels: a comma-separated list (--classes cat,dog,person) or a "
                           "file with one class per line; any dataset")
    data.add_argument("--test-fraction", type=open_fraction, default=None,
                      help="folder: fraction of the images for test when labels.csv has no split column "
                           "(default 0.2)")
    data.add_argument("--download", action="store_true",
                      help="voc2007: download and extract the official archives into --data-root if missing")
    data.add_argument("--image-size", type=positive_int, default=None,
                      help=f"input size in pixels (default: {CPU.image_size}, {SMALL.image_size} with --small; "
                           f"paper: {PAPER.image_size}; MSRN: at least 33)")
    data.add_argument("--small", action="store_true",
                      help="tiny dataset, 1 epoch of 4 steps: a smoke test (not combined with --epochs)")
    data.add_argument("--label-features", default=defaults.LABEL_FEATURES, choices=["sentence", "onehot", "glove"],
                      help=f"label vectors V fed to the GAT (paper: glove; default: {defaults.LABEL_FEATURES})")
    data.add_argument("--glove-path", default=None,
                      help="a GloVe text file or zip for --label-features glove (default: $MSRN_GLOVE_PATH, "
                           "else data/glove, downloading glove.6B.zip once if missing)")
    data.add_argument("--t", type=probability, default=defaults.T,
                      help=f"co-occurrence threshold of the label graph (default: {defaults.T})")
    data.add_argument("--p", type=probability, default=defaults.P, help=f"ML-GCN re-weighting factor (default: {defaults.P})")

    model = parser.add_argument_group("model")
    model.add_argument("--model", default="msrn", choices=CLASSIFIER_KINDS,
                       help="msrn, plain backbone, ML-GCN head, or DSDL (notebook 07)")
    model.add_argument("--backbone", default=None,
                       help=f"any torchvision ResNet (default: {CPU.backbone}; paper: {PAPER.backbone})")
    model.add_argument("--pretrained", action="store_true", help="start from ImageNet weights (needs them cached or online)")
    model.add_argument("--groups", type=positive_int, default=defaults.NUM_GROUPS, help="number of Diffpool label groups m")
    model.add_argument("--branches", type=positive_int, nargs="+", default=[2, 3, 4],
                       help="backbone stages feeding branches (paper: 2 3 4)")
    model.add_argument("--embeddings", default="full", choices=EMBEDDING_MODES,
                       help="Table 5 ablation: full, label (only), group (only), none (no LGE)")
    model.add_argument("--embed-dim", type=positive_int, default=None,
                       help=f"embedding width d (default: {CPU.embed_dim}; paper: {PAPER.embed_dim})")
    model.add_argument("--fc-hidden", type=positive_int, default=None,
                       help=f"width of fc1 (default: {CPU.fc_hidden}; paper: {PAPER.fc_hidden})")
    model.add_argument("--head", default="paper", choices=HEAD_KINDS,
                       help="MSRN classifier: paper (fc1 over all labels' rows) or per_label (linear in n)")

    dsdl = parser.add_argument_group("DSDL (--model dsdl; msrn_core/extras/dsdl.py)")
    dsdl.add_argument("--dsdl-loss", default=None, choices=config_class("dsdl").loss_forms,
                      help="additive (this repository's, the default) or authors (their code's objective)")
    dsdl.add_argument("--dsdl-lambda", type=positive_float, default=None,
                      help="ridge lambda of the solve and the loss (default 1; the authors: 10 on VOC, 0.1 on COCO)")
    dsdl.add_argument("--dsdl-beta", type=non_negative_float, default=None,
                      help="weight of the ridge term (default 0.01; the authors: 1e-4 on VOC, 1e-6 on COCO)")

    train = parser.add_argument_group("training")
    train.add_argument("--epochs", type=positive_int, default=None,
                       help=f"(default: {CPU.epochs}; paper: {PAPER.epochs})")
    train.add_argument("--batch-size", type=positive_int, default=None,
                       help=f"images per optimiser step (default: {CPU.batch_size}); under torchrun the global batch, "
                            "split over the processes")
    train.add_argument("--lr", type=positive_float, default=None,
                       help=f"learning rate of the new layers (default: {CPU.lr}; paper: {PAPER.lr})")
    train.add_argument("--backbone-lr-mult", type=non_negative_float, default=None,
                       help="backbone lr = lr x this (default: 0.1 with --pretrained, else 1.0)")
    train.add_argument("--lr-step", type=positive_int, default=None,
                       help=f"decay the lr x0.1 every this many epochs (default: {CPU.lr_step}; paper: {PAPER.lr_step})")
    train.add_argument("--lambda", dest="compactness_weight", type=non_negative_float, default=1e-3,
                       help="weight of the compactness loss (paper: 1e-3)")
    train.add_argument("--workers", type=non_negative_int, default=None,
                       help=f"data-loading processes (default: {CPU.num_workers}; with --paper one per core, "
                            f"up to 8: {PAPER.num_workers} here)")
    train.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    train.add_argument("--amp", default="auto", choices=AMP_MODES,
                       help="mixed precision on CUDA (auto: bf16 where supported)")
    train.add_argument("--seed", type=non_negative_int, default=0)
    train.add_argument("--out", default=None,
                       help="run folder (default: runs/<model>; with --evaluate: the checkpoint's folder)")
    train.add_argument("--fresh", action="store_true", help="ignore a last.pt in --out and start over")
    train.add_argument("--paper", action="store_true",
                       help="the paper's recipe: resnet101, ImageNet weights, 448 px, d 512, fc1 2048, "
                            "batch 8, lr 0.01 (backbone x0.1), x0.1 every 30 epochs, 90 epochs")
    train.add_argument("--authors", action="store_true",
                       help="MSRN as its authors' code trains it (recipe authors-voc): ModelConfig.authors(), their "
                            "multi-scale crop, 448 px, batch 16, SGD lr 0.1 (backbone x0.1) x0.1 at epoch 30 of 60, "
                            "fp16 autocast with a gradient scaler")
    parser.add_argument("--evaluate", metavar="CHECKPOINT", default=None,
                        help="only evaluate this checkpoint on the test split")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    return parser


def validate_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What the option types alone cannot check; a failure is a usage error (exit status 2)."""
    if args.authors and (args.paper or args.small):
        parser.error("--authors is a recipe of its own: leave out --paper and --small")
    if args.small and args.epochs is not None:
        parser.error("--small trains its fixed smoke-test schedule (1 epoch of 4 steps): leave out --epochs, "
                     "or leave out --small to train --epochs epochs")
    if any(stage > 4 for stage in args.branches):
        parser.error(f"--branches {' '.join(map(str, args.branches))}: a ResNet has stages 1 to 4")
    smallest = minimum_image_size(args.model, args.branches)
    if args.image_size is not None and args.image_size < smallest:
        parser.error(f"--image-size {args.image_size} is too small for --model {args.model} with branches "
                     f"{' '.join(map(str, args.branches))}: at least {smallest} px")
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            parser.error(f"--device {args.device}: no CUDA GPU is visible to PyTorch here; use --device cpu "
                         "(or auto)")
        index = args.device.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            parser.error(f"--device {args.device}: this machine has {torch.cuda.device_count()} GPU(s), "
                         f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")


# the options --paper sets (it overrides any value given for them)
PAPER_RECIPE_OPTIONS = ("backbone", "pretrained", "image_size", "embed_dim", "fc_hidden", "batch_size", "epochs",
                        "lr", "backbone_lr_mult", "lr_step")


def cli_recipe(args: argparse.Namespace) -> Recipe:
    """The recipe the options start from: PAPER with --paper, AUTHORS_VOC with --authors, SMALL with
    --small, else CPU."""
    return PAPER if args.paper else AUTHORS_VOC if getattr(args, "authors", False) else SMALL if args.small else CPU


def resolve_options(args: argparse.Namespace) -> argparse.Namespace:
    """The options with the recipe's values filled in: every option left out takes the recipe's
    value, and --paper fixes its recipe's options (:data:`PAPER_RECIPE_OPTIONS`) whatever was given.

    Two rules keep the command line as it always was: without --paper the backbone's learning-rate
    factor follows --pretrained (PAPER's 0.1 with ImageNet weights, else CPU's 1.0), and --small
    always trains SMALL's single short epoch.
    """
    recipe = cli_recipe(args)
    values = vars(args).copy()
    fixed = args.paper or args.authors  # --authors fixes its recipe's options as --paper does
    for name in PAPER_RECIPE_OPTIONS:
        if fixed or values[name] is None:
            values[name] = getattr(recipe, name)
    if args.authors and args.amp == "auto":
        values["amp"] = recipe.amp
    if not fixed:
        values["pretrained"] = args.pretrained
        if args.backbone_lr_mult is None:
            values["backbone_lr_mult"] = PAPER.backbone_lr_mult if args.pretrained else CPU.backbone_lr_mult
    if args.small:
        values["epochs"] = SMALL.epochs
    if args.workers is None:
        values["workers"] = (PAPER if fixed else CPU).num_workers
    return argparse.Namespace(**values)


def prepare_cli_dataset(args: argparse.Namespace):
    """The DataSetup the options ask for: the built-in dataset or a real benchmark."""
    from .experiment import prepare_dataset

    if args.download and args.dataset != "voc2007":
        raise SystemExit("error: --download is available for voc2007 only; docs/real_benchmarks.md "
                         "says how to get the other datasets")
    if args.glove_path and args.label_features != "glove":
        raise SystemExit("error: --glove-path goes with --label-features glove")
    if args.test_fraction is not None and args.dataset != "folder":
        raise SystemExit("error: --test-fraction goes with --dataset folder (the others have their own test split)")
    features = dict(label_features=args.label_features, t=args.t, p=args.p,
                    augmentation=getattr(cli_recipe(args), "augmentation", "default"),
                    label_feature_options={"vectors_path": args.glove_path} if args.glove_path else None)
    if args.classes:
        try:
            features["classes"] = read_class_list(args.classes)
        except (OSError, ValueError) as error:
            raise SystemExit(f"error: {error}") from None
    if args.dataset == "scenes":
        scene_config = replace((SMALL if args.small else CPU).scene_config(), image_size=args.image_size,
                               seed=args.seed)
        return prepare_dataset("scenes", args.data_root, config=scene_config, **features)
    options = dict(val_fraction=args.val_fraction, seed=args.split_seed)
    if args.test_fraction is not None:
        options["test_fraction"] = args.test_fraction
    if args.download:
        options["download"] = True
    return prepare_dataset(args.dataset, args.data_root, image_size=args.image_size, **features, **options)


def cli_model_config(args: argparse.Namespace):
    """The model configuration the (resolved) options ask for; ``--dsdl-*`` belong to ``--model dsdl``."""
    dsdl_options = {name: value for name, value in (("loss_form", args.dsdl_loss), ("ridge_lambda", args.dsdl_lambda),
                                                    ("beta", args.dsdl_beta)) if value is not None}
    if args.model == "dsdl":
        return cli_recipe(args).model_config(kind="dsdl", backbone=args.backbone, pretrained=args.pretrained,
                                             **dsdl_options)
    if dsdl_options:
        raise SystemExit("error: --dsdl-loss, --dsdl-lambda and --dsdl-beta go with --model dsdl")
    return cli_recipe(args).model_config(
        kind=args.model, backbone=args.backbone, pretrained=args.pretrained, embed_dim=args.embed_dim,
        fc_hidden=args.fc_hidden, branch_stages=tuple(args.branches), num_groups=args.groups,
        embeddings=args.embeddings, head=args.head)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    validate_arguments(parser, args)
    args = resolve_options(args)
    # under torchrun: one process per GPU (or CPU process), rank 0 alone prints
    with distributed.process_group(get_device(args.device)), distributed.quiet_unless_main():
        return train_and_evaluate(args)


def train_and_evaluate(args: argparse.Namespace) -> int:
    """Build the dataset and model of ``args`` (resolved by :func:`resolve_options`), train (or load
    ``--evaluate``), evaluate on test."""
    seed_everything(args.seed)
    out = output_folder(args)
    if args.evaluate:
        require_checkpoint_file(args.evaluate)  # before the dataset is built
    # before any time is spent on data or training: a writable folder no other run is using
    with run_folder_lock(out, enabled=distributed.context().is_main):
        return _prepare_train_and_evaluate(args, out)


def _prepare_train_and_evaluate(args: argparse.Namespace, out: Path) -> int:
    from .experiment import make_model  # imported late: --help stays instant

    with distributed.main_process_first():  # rank 0 generates or caches the data first
        setup = prepare_cli_dataset(args)
    print(setup.describe())

    model = make_model(setup, cli_model_config(args))

    if args.evaluate:
        load_model_state(args.evaluate, model, setup.class_names)
    else:
        train_config = cli_recipe(args).train_config(
            epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, backbone_lr_mult=args.backbone_lr_mult,
            lr_step=args.lr_step, compactness_weight=args.compactness_weight, num_workers=args.workers,
            seed=args.seed, device=args.device, amp=args.amp,
            max_steps_per_epoch=SMALL.max_steps_per_epoch if args.small else None,
        )
        result = train_model(model, setup.train, setup.val, train_config, out, resume=not args.fresh)
        print(f"best validation mAP {100 * result.best_val_map:.2f} at epoch {result.best_epoch}; "
              f"checkpoints in {out}")
        load_best(model, out, setup.class_names)

    metrics = evaluate(model, setup.test, batch_size=32, device=distributed.process_device(get_device(args.device)),
                       num_workers=args.workers, amp=args.amp)
    # the table first: a failed write must not lose the result
    print(format_metrics_table({args.model: metrics}))
    if metrics["skipped_images"]:
        print(f"test split: {metrics['skipped_images']} unreadable images skipped (the metrics cover the other "
              f"{metrics['num_images']})")
    if distributed.context().is_main:
        atomic_write_json(out / "test_metrics.json", metrics)
        print(f"test metrics written to {out / 'test_metrics.json'}")
    return 0


def output_folder(args: argparse.Namespace) -> Path:
    """``--out``; else the evaluated checkpoint's folder (--evaluate), else ``runs/<model>``."""
    if args.out:
        return Path(args.out)
    if args.evaluate:
        return Path(args.evaluate).parent
    return Path(f"runs/{args.model}")


def cli(argv: list[str] | None = None) -> int:
    """The console entry point: :func:`main`, with the project's errors as one ``error:`` line."""
    return run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(cli())
