"""Command-line entry point: train MSRN or a baseline, select on validation, evaluate on test.

Run ``python -m msrn_core.train --help`` (or ``msrn-train --help``) for the options.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from . import distributed
from .checkpoints import load_model_state
from .datasets import DATASETS
from .datasets.common import DEFAULT_SPLIT_SEED, DEFAULT_VAL_FRACTION
from .metrics import format_metrics_table
from .model import EMBEDDING_MODES, HEAD_KINDS, MODEL_KINDS, ModelConfig
from .recipes import CPU_SCRATCH as CPU, PAPER, SMALL  # the CLI trains from scratch
from .training import AMP_MODES, TrainConfig, evaluate, load_best, train_model
from .utils import get_device, seed_everything

EXAMPLES = """\
examples:
  # MSRN on the built-in scene dataset, CPU-sized (ResNet-18 from scratch, 128 px): ~7 minutes
  python -m msrn_core.train

  # the plain-backbone baseline and the ML-GCN head with the same settings
  python -m msrn_core.train --model plain
  python -m msrn_core.train --model mlgcn

  # ablations of the paper (Table 5 and 6): label embeddings only, last two stages only
  python -m msrn_core.train --embeddings label --out runs/msrn-label
  python -m msrn_core.train --branches 3 4 --out runs/msrn-last2

  # the paper's recipe (GPU): ResNet-101 with ImageNet weights, 448 px, batch 8, 90 epochs
  python -m msrn_core.train --paper

  # an interrupted run continues where its last epoch ended (same --out); --fresh starts over
  python -m msrn_core.train --out runs/msrn

  # a real benchmark on disk (README: Real benchmarks); VOC 2007 can be downloaded once
  python -m msrn_core.train --dataset voc2007 --data-root data --download --paper
  python -m msrn_core.train --dataset coco2014 --data-root data/coco --paper --label-features glove

  # evaluate a saved checkpoint on the test split only
  python -m msrn_core.train --evaluate runs/msrn/best.pt

  # several GPUs: one process each (DistributedDataParallel); --batch-size stays the global batch
  torchrun --nproc_per_node=4 -m msrn_core.train --dataset voc2007 --paper --label-features glove

Outputs in --out: best.pt (best validation mAP), last.pt (resumable), history.json,
test_metrics.json. The test split is never used for model selection.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m msrn_core.train",
        description="Train MSRN (or a baseline) on a multi-label dataset and evaluate it on the test split.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default="scenes", choices=list(DATASETS),
                      help="dataset to use (default: the built-in scene dataset, generated offline); "
                           "the real benchmarks must be on disk (README: Real benchmarks)")
    data.add_argument("--data-root", default="data",
                      help="folder holding the datasets, or the dataset's own folder (default: data)")
    data.add_argument("--val-fraction", type=float, default=DEFAULT_VAL_FRACTION,
                      help="real benchmarks: fraction of the training split held out for validation")
    data.add_argument("--split-seed", type=int, default=DEFAULT_SPLIT_SEED,
                      help="real benchmarks: seed of the held-out validation split (and of Apparel's 50/50 split)")
    data.add_argument("--download", action="store_true",
                      help="voc2007: download and extract the official archives into --data-root if missing")
    data.add_argument("--image-size", type=int, default=None,
                      help="input size in pixels (default: 128, 64 with --small; paper: 448)")
    data.add_argument("--small", action="store_true", help="tiny dataset and few steps: a smoke test")
    data.add_argument("--label-features", default="sentence", choices=["sentence", "onehot", "glove"],
                      help="label vectors V fed to the GAT (paper: glove; default: sentence embeddings)")
    data.add_argument("--glove-path", default=None,
                      help="a GloVe text file or zip for --label-features glove (default: $MSRN_GLOVE_PATH, "
                           "else data/glove, downloading glove.6B.zip once if missing)")
    data.add_argument("--t", type=float, default=0.4, help="co-occurrence threshold of the label graph")
    data.add_argument("--p", type=float, default=0.25, help="ML-GCN re-weighting factor")

    model = parser.add_argument_group("model")
    model.add_argument("--model", default="msrn", choices=MODEL_KINDS, help="msrn, plain backbone, or ML-GCN head")
    model.add_argument("--backbone", default=CPU.backbone, help="any torchvision ResNet (paper: resnet101)")
    model.add_argument("--pretrained", action="store_true", help="start from ImageNet weights (needs them cached or online)")
    model.add_argument("--groups", type=int, default=4, help="number of Diffpool label groups m")
    model.add_argument("--branches", type=int, nargs="+", default=[2, 3, 4],
                       help="backbone stages feeding branches (paper: 2 3 4)")
    model.add_argument("--embeddings", default="full", choices=EMBEDDING_MODES,
                       help="Table 5 ablation: full, label (only), group (only), none (no LGE)")
    model.add_argument("--embed-dim", type=int, default=CPU.embed_dim, help="embedding width d (paper: 512)")
    model.add_argument("--fc-hidden", type=int, default=CPU.fc_hidden, help="width of fc1 (paper: 2048)")
    model.add_argument("--head", default="paper", choices=HEAD_KINDS,
                       help="MSRN classifier: paper (fc1 over all labels' rows) or per_label (linear in n)")

    train = parser.add_argument_group("training")
    train.add_argument("--epochs", type=int, default=CPU.epochs)
    train.add_argument("--batch-size", type=int, default=CPU.batch_size,
                       help="images per optimiser step; under torchrun the global batch, split over the processes")
    train.add_argument("--lr", type=float, default=CPU.lr, help="learning rate of the new layers (paper: 0.01)")
    train.add_argument("--backbone-lr-mult", type=float, default=None,
                       help="backbone lr = lr x this (default: 0.1 with --pretrained, else 1.0)")
    train.add_argument("--lr-step", type=int, default=CPU.lr_step, help="decay the lr x0.1 every this many epochs")
    train.add_argument("--lambda", dest="compactness_weight", type=float, default=1e-3,
                       help="weight of the compactness loss (paper: 1e-3)")
    train.add_argument("--workers", type=int, default=None,
                       help=f"data-loading processes (default: {CPU.num_workers}; with --paper one per core, "
                            f"up to 8: {PAPER.num_workers} here)")
    train.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    train.add_argument("--amp", default="auto", choices=AMP_MODES,
                       help="mixed precision on CUDA (auto: bf16 where supported)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", default=None, help="run folder (default: runs/<model>)")
    train.add_argument("--fresh", action="store_true", help="ignore a last.pt in --out and start over")
    train.add_argument("--paper", action="store_true",
                       help="the paper's recipe: resnet101, ImageNet weights, 448 px, d 512, fc1 2048, "
                            "batch 8, lr 0.01 (backbone x0.1), x0.1 every 30 epochs, 90 epochs")
    parser.add_argument("--evaluate", metavar="CHECKPOINT", default=None,
                        help="only evaluate this checkpoint on the test split")
    return parser


# the options --paper sets (it overrides any value given for them)
PAPER_RECIPE_OPTIONS = ("backbone", "pretrained", "image_size", "embed_dim", "fc_hidden", "batch_size", "epochs",
                        "lr", "backbone_lr_mult", "lr_step")


def apply_paper_recipe(args: argparse.Namespace) -> None:
    for name in PAPER_RECIPE_OPTIONS:
        setattr(args, name, getattr(PAPER, name))
    if args.workers is None:
        args.workers = PAPER.num_workers


def prepare_cli_dataset(args: argparse.Namespace):
    """The DataSetup the options ask for: the built-in dataset or a real benchmark."""
    from .experiment import prepare_dataset

    if args.download and args.dataset != "voc2007":
        raise SystemExit("--download is available for voc2007 only; the README's 'Real benchmarks' "
                         "section says how to get the other datasets")
    if args.glove_path and args.label_features != "glove":
        raise SystemExit("--glove-path goes with --label-features glove")
    features = dict(label_features=args.label_features, t=args.t, p=args.p,
                    label_feature_options={"vectors_path": args.glove_path} if args.glove_path else None)
    if args.dataset == "scenes":
        recipe = SMALL if args.small else CPU
        scene_config = replace(recipe.scene_config(), image_size=args.image_size or recipe.image_size, seed=args.seed)
        return prepare_dataset("scenes", args.data_root, config=scene_config, **features)
    options = dict(val_fraction=args.val_fraction, seed=args.split_seed)
    if args.download:
        options["download"] = True
    image_size = args.image_size or (SMALL.image_size if args.small else CPU.image_size)
    return prepare_dataset(args.dataset, args.data_root, image_size=image_size, **features, **options)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.paper:
        apply_paper_recipe(args)
    if args.workers is None:
        args.workers = CPU.num_workers
    # under torchrun: one process per GPU (or CPU process), rank 0 alone prints
    with distributed.process_group(get_device(args.device)), distributed.quiet_unless_main():
        return train_and_evaluate(args)


def train_and_evaluate(args: argparse.Namespace) -> int:
    """Build the dataset and model of ``args``, train (or load ``--evaluate``), evaluate on test."""
    from .experiment import make_model  # imported late: --help stays instant

    seed_everything(args.seed)
    with distributed.main_process_first():  # rank 0 generates or caches the data first
        setup = prepare_cli_dataset(args)
    print(setup.describe())

    model_config = ModelConfig(kind=args.model, backbone=args.backbone, pretrained=args.pretrained,
                               branch_stages=tuple(args.branches), num_groups=args.groups,
                               embeddings=args.embeddings, embed_dim=args.embed_dim, fc_hidden=args.fc_hidden,
                               head=args.head)
    model = make_model(setup, model_config)
    out = Path(args.out or f"runs/{args.model}")

    if args.evaluate:
        load_model_state(args.evaluate, model, setup.class_names)
    else:
        mult = args.backbone_lr_mult if args.backbone_lr_mult is not None else (
            PAPER.backbone_lr_mult if args.pretrained else CPU.backbone_lr_mult)
        train_config = TrainConfig(
            epochs=SMALL.epochs if args.small else args.epochs, batch_size=args.batch_size, lr=args.lr,
            backbone_lr_mult=mult, lr_step=args.lr_step, compactness_weight=args.compactness_weight,
            num_workers=args.workers, seed=args.seed, device=args.device, amp=args.amp,
            max_steps_per_epoch=SMALL.max_steps_per_epoch if args.small else None,
        )
        result = train_model(model, setup.train, setup.val, train_config, out, resume=not args.fresh)
        print(f"best validation mAP {100 * result.best_val_map:.2f} at epoch {result.best_epoch}; "
              f"checkpoints in {out}")
        load_best(model, out, setup.class_names)

    metrics = evaluate(model, setup.test, batch_size=32, device=distributed.process_device(get_device(args.device)),
                       num_workers=args.workers, json_path=out / "test_metrics.json", amp=args.amp)
    print(format_metrics_table({args.model: metrics}))
    print(f"test metrics written to {out / 'test_metrics.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
