"""The runs the notebooks and the ablation study share: one folder per recipe and run name, the
recipe recorded beside its runs, and the recipe's shared backbone, so that a model trained once
(by a notebook, or by ``python -m msrn_core.running.ablation_study``) is loaded by the others.

- :func:`tutorial_data`   the built-in dataset of a recipe, with its label graph and label features
- :func:`trained_model`   ``load_or_train`` with the shared recipe and run folders; every model
  starts from the recipe's shared backbone (:func:`shared_backbone`), trained once;
  :func:`trained_attention_models` the two label-specific attentions beside them (CSRA and the
  MSRN variant of ``recipes.ATTENTION_VARIANT``), :func:`attention_variant_title` its name
- :func:`run_folder`, :func:`runs_root`  ``<runs_root>/<recipe name>/<name>``: ``runs/notebooks``
  in the checkout, ``MSRN_RUNS``, or the folder a notebook's ``RUNS`` parameter names
  (:func:`use_runs_root`; on Colab a Google Drive folder keeps the runs between notebooks)
- :func:`check_recipe_folder`  runs of an earlier version of a recipe are refused, not mixed in
"""
from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

from .. import defaults
from ..utils import atomic_write_json, dataclass_changes, display_path, project_root, read_json, seed_everything
from . import recipes
from .checkpoints import load_trunk_weights
from .experiment import DataSetup, make_model, prepare_scenes
from .training import TrainResult, load_or_train, training_finished

RUNS_ENV = "MSRN_RUNS"
_runs_root: Path | None = None  # the folder a notebook's RUNS parameter named, see use_runs_root


def use_runs_root(runs: str | Path | None) -> Path | None:
    """Keep the run folders under ``runs`` for the rest of this process (a notebook's ``RUNS``
    parameter, set by ``notebook_setup``); None goes back to :func:`runs_root`'s default."""
    global _runs_root
    _runs_root = Path(runs).expanduser() if runs else None
    return _runs_root


def runs_root() -> Path:
    """The folder of the notebooks' run folders: the ``RUNS`` parameter given to
    ``notebook_setup`` (:func:`use_runs_root`), else ``MSRN_RUNS``, else ``runs/notebooks`` at the top of the checkout."""
    if _runs_root is not None:
        return _runs_root
    if os.environ.get(RUNS_ENV):
        return Path(os.environ[RUNS_ENV]).expanduser()
    return project_root() / "runs" / "notebooks"


def tutorial_data(small: bool | None = None, label_features: str | None = None, root: str | Path | None = None,
                  train_augmentation: bool = True, recipe: recipes.Recipe | None = None,
                  t: float | None = None, p: float | None = None) -> DataSetup:
    """The built-in scene dataset of the current mode, its label graph and label features.

    ``label_features`` defaults to ``MSRN_LABEL_FEATURES`` if set, else ``defaults.LABEL_FEATURES``.
    The label graph is ML-GCN's at threshold ``t`` and re-weight ``p`` (None: ``defaults.T`` and
    ``defaults.P``, the paper's 0.4 and 0.25).
    ``recipe`` picks the images (their size) of another recipe than the mode's, e.g. ``recipes.GPU``.
    """
    recipe = recipe or recipes.default_recipe(small)
    label_features = label_features or os.environ.get(defaults.LABEL_FEATURES_ENV) or defaults.LABEL_FEATURES
    setup = prepare_scenes(root or project_root() / "data", recipe.scene_config(),
                           label_features=label_features, t=t, p=p,
                           train_augmentation=train_augmentation)
    print(setup.describe())
    return setup


RECIPE_FILE = "recipe.json"  # the fields of the recipe whose runs a recipe folder holds


class RecipeChangedError(RuntimeError):
    """A recipe folder holds runs of another version of that recipe (the package changed it)."""


def run_folder(name: str, small: bool | None = None, recipe: recipes.Recipe | None = None) -> Path:
    """``<runs_root>/<recipe name>/<name>``: the folder of run ``name`` of ``recipe``."""
    recipe = recipe or recipes.default_recipe(small)
    return runs_root() / recipe.name / name


def check_recipe_folder(folder: Path, recipe: recipes.Recipe) -> None:
    """The recipe folder (``<runs_root>/<recipe name>``) records the recipe's fields in
    ``recipe.json`` when its first run starts; runs of an earlier version of the recipe (the package
    changed it) are refused with :class:`RecipeChangedError`, not mixed with the new ones."""
    path = folder / RECIPE_FILE
    if not path.exists():
        earlier = sorted(run.parent.name for run in folder.glob("*/last.pt"))
        if earlier:  # runs from before the recipe was recorded: of which version, nobody knows
            raise RecipeChangedError(
                f"{display_path(folder)} holds runs from before this package recorded its recipes "
                f"({', '.join(earlier[:4])}{', ...' if len(earlier) > 4 else ''}), probably of an earlier "
                f"{recipe.name!r} recipe: move or delete that folder (or give the notebooks another RUNS "
                "folder) and run again")
        atomic_write_json(path, asdict(recipe))
        return
    changed = [f"{key} {there!r} there, {now!r} now"
               for key, (there, now) in dataclass_changes(read_json(path), recipe).items()]
    if changed:
        raise RecipeChangedError(
            f"{display_path(folder)} holds runs of an earlier {recipe.name!r} recipe ({'; '.join(changed)}): "
            "move or delete that folder (or give the notebooks another RUNS folder) and run again")


# Kinds fine-tuned from the recipe's shared backbone. SDL is left out: it is trained on the seen
# classes of a zero-shot split, and a backbone trained on every class would leak the unseen ones.
SHARED_BACKBONE_KINDS = ("msrn", "plain", "mlgcn", "dsdl", "csra")


def shared_backbone(setup: DataSetup, recipe: recipes.Recipe | None = None, small: bool | None = None,
                    force: bool = False, folder: str | Path | None = None, announce: bool = True) -> Path:
    """The recipe's backbone, trained once on ``setup``'s training split (a plain ResNet for
    ``recipe.pretrain_epochs``) in ``folder`` (default ``runs/notebooks/<recipe>/backbone``);
    returns its ``best.pt``.

    A finished run is loaded, not trained again (``announce=False``: without printing its epochs).
    It stands in for the ImageNet weights the paper starts from (section 4.1): every compared model
    starts from this same backbone.
    """
    recipe = recipe or recipes.default_recipe(small)
    seed_everything(0)
    model = make_model(setup, recipe.model_config(kind="plain", output_stride=recipe.pretrain_output_stride))
    if folder is None:
        folder = run_folder("backbone", recipe=recipe)
        check_recipe_folder(folder.parent, recipe)
    folder = Path(folder)
    load_or_train(model, setup.train, setup.val, recipe.pretrain_config(num_workers=1), folder, force=force,
                  announce=announce)
    return folder / "best.pt"


def trained_model(setup: DataSetup, name: str = "msrn", small: bool | None = None, force: bool = False,
                  model_overrides: dict | None = None, train_overrides: dict | None = None,
                  train_set=None, val_set=None, recipe: recipes.Recipe | None = None):
    """Load the finished run ``name`` or train it with the shared recipe; returns ``(model, result)``.

    ``recipe`` defaults to the mode's (``CPU``, or ``SMALL`` in small mode). When the recipe
    pre-trains a shared backbone (``pretrain_epochs > 0``) and the run has to be trained, that
    backbone is loaded, or trained once first (:func:`shared_backbone`), and the model starts
    from it; ``force`` retrains the run ``name``, not the backbone.
    ``model_overrides`` change the architecture (``kind="plain"``, ``embeddings="label"``, ...),
    ``train_overrides`` the schedule. ``train_set``/``val_set`` replace the setup's splits (for
    compact ablation runs on a subset).
    """
    recipe = recipe or recipes.default_recipe(small)
    model_config = recipe.model_config(**(model_overrides or {}))
    pretrains = recipe.pretrain_epochs > 0 and not recipe.pretrained
    schedule = {"num_workers": 1}
    if pretrains and model_config.kind not in SHARED_BACKBONE_KINDS:
        # a model that must not start from the shared backbone (SDL: that backbone has seen the
        # unseen tags) gets the whole budget from scratch: pre-training plus fine-tuning epochs
        schedule.update(epochs=recipe.pretrain_epochs + recipe.epochs, backbone_lr_mult=1.0)
    config = recipe.train_config(**{**schedule, **(train_overrides or {})})
    folder = run_folder(name, recipe=recipe)
    check_recipe_folder(folder.parent, recipe)
    backbone = None
    if (pretrains and model_config.kind in SHARED_BACKBONE_KINDS
            and (force or not training_finished(folder, config.epochs))):
        backbone = shared_backbone(setup, recipe, announce=False)  # trained here if missing, else loaded quietly
    seed_everything(0)  # the same start whether the backbone was just trained or loaded
    model = make_model(setup, model_config)
    if backbone is not None:
        load_trunk_weights(backbone, model)
    result: TrainResult = load_or_train(model, train_set or setup.train, val_set or setup.val, config,
                                        folder, force=force)
    return model.eval(), result


def attention_variant_run() -> str:
    """The run folder name of :data:`~msrn_core.running.recipes.ATTENTION_VARIANT`: ``msrn-<axis>-<scale>...``."""
    return recipes.attention_variant_name().replace("_", "-")


def main_job_runs(recipe: recipes.Recipe | None = None, small: bool | None = None) -> dict[str, tuple[Path, int]]:
    """The runs ``make tutorial`` trains (notebooks 02 and 05): name -> (run folder, epochs)."""
    recipe = recipe or recipes.default_recipe(small)
    names = ["msrn", "plain", "mlgcn", "csra", attention_variant_run()]
    runs = {name: (run_folder(name, recipe=recipe), recipe.epochs) for name in names}
    if recipe.pretrain_epochs > 0 and not recipe.pretrained:
        runs = {"backbone": (run_folder("backbone", recipe=recipe), recipe.pretrain_epochs), **runs}
    return runs


def finished_main_job_runs(recipe: recipes.Recipe | None = None, small: bool | None = None) -> list[str]:
    """The names of :func:`main_job_runs` whose run folders hold a finished run."""
    return [name for name, (folder, epochs) in main_job_runs(recipe, small).items()
            if training_finished(folder, epochs)]


def attention_variant_title(variant: dict | None = None) -> str:
    """``"MSRN, label axis, sqrt_d scale"``: how the notebooks name an MSRN variant
    (:data:`msrn_core.running.recipes.ATTENTION_VARIANT` by default) in tables and figures."""
    variant = recipes.ATTENTION_VARIANT if variant is None else variant
    parts = [f"{variant.get('attention_axis', 'channel')} axis", f"{variant.get('attention_scale', 'none')} scale"]
    if "attention_temperature" in variant:
        parts.append(f"T = {variant['attention_temperature']:g}")
    return ", ".join(["MSRN", *parts])


def trained_attention_models(setup: DataSetup, small: bool | None = None, force: bool = False) -> dict:
    """The two label-specific attentions trained beside MSRN and its baselines (notebooks 05-06), each
    fine-tuned from the shared backbone like them: CSRA (``kind="csra"``, run ``csra``) and the MSRN
    variant of :data:`~msrn_core.running.recipes.ATTENTION_VARIANT` (run ``msrn-<axis>-<scale>``).
    Returns title -> ``(model, result)`` as :func:`trained_model` does."""
    variant_run = attention_variant_run()
    return {"CSRA": trained_model(setup, "csra", small, force, model_overrides=dict(kind="csra")),
            attention_variant_title(): trained_model(setup, variant_run, small, force,
                                                     model_overrides=dict(recipes.ATTENTION_VARIANT))}
