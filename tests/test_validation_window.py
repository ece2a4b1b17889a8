"""Validating only the last epochs (TrainConfig.validate_from_epoch) selects the same checkpoint and
trains the same weights as validating every epoch, when the best epoch lies in the window; and the
data-loading processes change no training batch."""
from __future__ import annotations

import pytest
import torch

from msrn_core.data.dataset import build_transform
from msrn_core.running import recipes
from msrn_core.running.checkpoints import read_checkpoint
from msrn_core.running.experiment import make_model
from msrn_core.running.loaders import training_loader
from msrn_core.running.training import TrainConfig, train_model
from msrn_core.utils import seed_everything

EPOCHS = 3


def tiny_config(**overrides) -> TrainConfig:
    # one loader process for training and validation, as the notebooks run: the validation loader's
    # iterator draws its seed from the global random stream, so skipping a pass must not change training
    values = dict(epochs=EPOCHS, batch_size=16, lr=0.05, backbone_lr_mult=1.0, num_workers=1, max_steps_per_epoch=2,
                  schedule="cosine", progress=False, seed=0, device="cpu")
    return TrainConfig(**{**values, **overrides})


def train(setup, folder, **overrides):
    seed_everything(0)
    model = make_model(setup, recipes.SMALL.model_config(kind="plain", output_stride=32))
    return train_model(model, setup.train, setup.val, tiny_config(**overrides), folder)


def test_validating_the_last_epochs_selects_the_same_checkpoint(setup, tmp_path, one_torch_thread):
    every = train(setup, tmp_path / "every")
    assert every.best_epoch > 1  # else the window below would skip nothing
    window = train(setup, tmp_path / "window", validate_from_epoch=every.best_epoch)
    assert (window.best_epoch, window.best_val_map) == (every.best_epoch, every.best_val_map)
    best_every, best_window = (read_checkpoint(run.best_path)["model"] for run in (every, window))
    assert all(torch.equal(best_every[name], best_window[name]) for name in best_every)
    last_every, last_window = (read_checkpoint(run.last_path)["model"] for run in (every, window))
    assert all(torch.equal(last_every[name], last_window[name]) for name in last_every)
    for one, other in zip(every.history, window.history):
        assert one["train_loss"] == other["train_loss"]
        assert other["val_mAP"] == (one["val_mAP"] if one["epoch"] >= every.best_epoch else None)


@pytest.mark.parametrize("first", [0, EPOCHS + 1])
def test_a_window_without_an_epoch_is_refused(setup, tmp_path, first):
    with pytest.raises(ValueError, match="validate_from_epoch must be between 1 and epochs"):
        train(setup, tmp_path / "run", validate_from_epoch=first)


def test_the_backbone_pretraining_validates_its_last_epochs():
    assert recipes.CPU.pretrain_config().validate_from_epoch == (
        recipes.CPU.pretrain_epochs - recipes.PRETRAIN_VALIDATED_EPOCHS + 1)
    assert recipes.SMALL.pretrain_config().validate_from_epoch == 1  # one epoch: validated
    assert recipes.CPU.train_config().validate_from_epoch == 1  # the fine-tunings validate every epoch


def test_the_training_batches_do_not_depend_on_the_loader_processes(small_scenes, setup):
    from msrn_core.data.scenes import load_scene_splits

    root, config, *_ = small_scenes
    augmented, _, _ = load_scene_splits(root, config, train_transform=build_transform(config.image_size, train=True),
                                        eval_transform=build_transform(config.image_size, train=False))
    batches = {}
    for workers in (0, 2):
        loader = training_loader(augmented, tiny_config(num_workers=workers), torch.device("cpu"),
                                 torch.Generator().manual_seed(0))
        loader.dataset.set_epoch(1)
        batches[workers] = [batch.images for batch, _ in zip(loader, range(2))]
    assert all(torch.equal(a, b) for a, b in zip(batches[0], batches[2]))
