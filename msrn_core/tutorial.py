"""The tutorial's main job, end to end on the built-in scene dataset (``make tutorial``).

1. generate (or reuse) the built-in scene dataset and build its label graph;
2. train MSRN and the plain-backbone baseline on the CPU (or a GPU when present), both
   fine-tuned from the recipe's shared backbone;
3. evaluate both on the test split and print the metrics table;
4. write the figures to ``figures/``: sample images, the co-occurrence graph, the Diffpool
   groups, per-class AP of both models, training curves and attention maps.

Runs finish where they stopped: an interrupted run resumes from ``runs/tutorial/<model>``, a
finished one is loaded (``--force`` trains again). ``MSRN_SMALL=1`` or ``--small`` selects a
smoke-test size that runs in well under a minute.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from . import plots, recipes
from .checkpoints import load_trunk_weights
from .experiment import make_model, prepare_scenes
from .graph import graph_summary
from .metrics import format_metrics_table
from .notebook import shared_backbone
from .training import evaluate, load_or_train
from .utils import atomic_write_json, get_device, seed_everything

def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m msrn_core.tutorial", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="smoke-test size (also: MSRN_SMALL=1)")
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--runs", default="runs/tutorial", help="run folders of the two models")
    parser.add_argument("--figures", default=None, help="figure folder (default: figures/)")
    parser.add_argument("--epochs", type=int, default=None, help=f"default {recipes.CPU.epochs}")
    parser.add_argument("--label-features", default="sentence", choices=["sentence", "onehot"])
    parser.add_argument("--workers", type=int, default=1, help="data-loading processes")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--force", action="store_true", help="train again even if finished runs exist")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    small = args.small or recipes.small_mode_requested()
    if args.figures:
        os.environ["MSRN_FIGURES_DIR"] = args.figures
    elif small:  # smoke-test figures must not overwrite the committed ones
        os.environ.setdefault("MSRN_FIGURES_DIR", str(Path(args.runs) / "small-figures"))
    started = time.perf_counter()
    seed_everything(0)
    device = get_device(args.device)
    print(f"torch {torch.__version__} on {device}; mode: {'small' if small else 'full'}")

    # 1. data, graph and label features
    recipe = recipes.default_recipe(small)
    scene_config = recipe.scene_config()
    setup = prepare_scenes(args.data_root, scene_config, label_features=args.label_features)
    print(setup.describe())
    print(graph_summary(setup.graph))
    names = setup.class_names
    plots.plot_samples(setup.test, list(range(8)), ncols=4, save_as="tutorial_samples")
    theme_ids = theme_indices(setup.train)
    plots.plot_label_graph(setup.graph, groups=theme_ids, group_names=setup.train.theme_names,
                           save_as="tutorial_cooccurrence_graph")

    # 2. train both models on the same data, backbone and budget
    epochs = args.epochs or recipe.epochs
    train_config = recipe.train_config(epochs=epochs, num_workers=args.workers, device=args.device)
    results, histories, models = {}, {}, {}
    # the recipe's shared backbone (trained once, loaded afterwards), as notebook.trained_model does
    backbone = shared_backbone(setup, recipe) if recipe.pretrain_epochs > 0 else None
    for kind in ("msrn", "plain"):
        seed_everything(0)
        model = make_model(setup, recipe.model_config(kind=kind))
        if backbone is not None:
            load_trunk_weights(backbone, model)
        print(f"\n== {kind}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters ==")
        run = load_or_train(model, setup.train, setup.val, train_config, Path(args.runs) / kind, force=args.force)
        histories[kind] = run.history
        # 3. evaluate on the test split (never used for selection)
        results[kind] = evaluate(model, setup.test, device=device, num_workers=args.workers,
                                 json_path=Path(args.runs) / kind / "test_metrics.json")
        models[kind] = model

    # 4. figures
    plots.plot_training_curves(histories, save_as="tutorial_training_curves")
    plots.plot_per_class_ap({k: r["per_class_ap"] for k, r in results.items()}, names,
                            save_as="tutorial_per_class_ap")
    msrn = models["msrn"].eval()
    with torch.no_grad():
        lge = msrn.label_group_embeddings()
    assignment = lge["assignment"].cpu().numpy()
    plots.plot_assignment(assignment, names, save_as="tutorial_diffpool_assignment")
    plots.plot_label_graph(setup.graph, groups=assignment.argmax(1),
                           group_names=[f"group {k + 1}" for k in range(assignment.shape[1])],
                           save_as="tutorial_diffpool_groups")
    save_attention_figures(msrn, setup, device)

    print("\nTest metrics (%), built-in scene dataset, "
          f"{recipe.backbone} from scratch, {scene_config.image_size} px, {epochs} epochs:")
    print(format_metrics_table(results))
    atomic_write_json(Path(args.runs) / "summary.json", {
        "mode": "small" if small else "full", "epochs": epochs, "metrics": results,
        "seconds": time.perf_counter() - started,
    })
    print(f"figures in {plots.figures_dir()}; wall time {time.perf_counter() - started:.0f} s")
    return 0


def theme_indices(dataset) -> np.ndarray:
    """Each class's (first) ground-truth theme as an integer, for colouring the graph."""
    return np.array([dataset.theme_names.index(themes[0]) for themes in dataset.class_themes])


def save_attention_figures(model, setup, device, count: int = 3) -> None:
    """Attention maps of the first ``count`` test images, for their true labels."""
    for index in range(count):
        image, target, _ = setup.test[index]
        with torch.no_grad():
            output = model(image[None].to(device), details=True)
        probabilities = torch.sigmoid(output.logits[0]).cpu().numpy()
        labels = np.flatnonzero(target.numpy())[:4]
        maps = [a[0].cpu() for a in output.details["label_attention"]]
        plots.plot_attention_maps(
            setup.test.load_image(index), maps, setup.class_names, labels.tolist(),
            output.details["branch_stages"], scores=probabilities, boxes=setup.test.boxes[index],
            save_as=f"tutorial_attention_{index}",
        )


if __name__ == "__main__":
    sys.exit(main())
