"""Seconds of the CPU recipe's backbone pre-training on the built-in dataset, as the notebooks run it.

Training steps through the real training loader (seeded augmentation, ``--workers`` data-loading
processes) followed by the epoch's validation pass, or one validation pass alone. The data are
the notebooks' (``data/``, made by notebook 01 or ``python -m msrn_core.running.make_scenes``).

    python benchmarks/training_steps.py --workers 0 --steps 20     # augmentation in the training process
    python benchmarks/training_steps.py --workers 1 --steps 20     # one loader process
    python benchmarks/training_steps.py --validation-only          # one pass over the 500 validation images

Time two settings against each other with whole-process timings taken in turn (A B A B ...), so
that a drifting machine moves both.
"""
from __future__ import annotations

import argparse
import tempfile
import time

import torch

from msrn_core.running import recipes
from msrn_core.running.evaluation import predict
from msrn_core.running.experiment import make_model
from msrn_core.running.shared_runs import tutorial_data
from msrn_core.running.training import train_model
from msrn_core.utils import seed_everything


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=1, help="data-loading processes (the notebooks': 1)")
    parser.add_argument("--steps", type=int, default=20, help="training steps before the validation pass")
    parser.add_argument("--validation-only", action="store_true", help="time one validation pass, no training")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    recipe = recipes.CPU
    setup = tutorial_data(recipe=recipe)
    seed_everything(0)
    model = make_model(setup, recipe.model_config(kind="plain", output_stride=recipe.pretrain_output_stride))
    config = recipe.pretrain_config(num_workers=args.workers, epochs=1, validate_from_epoch=1,
                                    max_steps_per_epoch=args.steps, progress=False)
    started = time.perf_counter()
    if args.validation_only:
        predict(model, setup.val, batch_size=max(config.batch_size, 16), device=torch.device("cpu"),
                num_workers=args.workers, amp=config.amp)
        print(f"one validation pass ({len(setup.val)} images, output stride {recipe.pretrain_output_stride}, "
              f"{args.workers} workers): {time.perf_counter() - started:.1f} s")
        return
    with tempfile.TemporaryDirectory() as folder:
        result = train_model(model, setup.train, setup.val, config, folder)
    print(f"{args.steps} training steps and one validation pass, {args.workers} workers: "
          f"{time.perf_counter() - started:.1f} s (validation mAP {100 * result.best_val_map:.2f})")


if __name__ == "__main__":
    main()
