"""Progressive resizing (TrainConfig.epoch_image_sizes): each epoch trains at its own image side,
validation at the loader's; without a schedule, or with the loader's side throughout, training is
bit for bit what it was."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from msrn_core.running import recipes
from msrn_core.running.checkpoints import read_checkpoint
from msrn_core.running.guards import ResumeConflictError
from msrn_core.running.experiment import make_model
from msrn_core.running.training import TrainConfig, epoch_images, train_model
from msrn_core.utils import seed_everything

EPOCHS = 3


def plain_model(setup):
    seed_everything(0)
    return make_model(setup, recipes.SMALL.model_config(kind="plain", output_stride=32))


def train(setup, folder, model=None, **overrides):
    model = model or plain_model(setup)
    seed_everything(0)  # the same random streams whether the model was built here or passed in
    config = TrainConfig(**{**dict(epochs=EPOCHS, batch_size=16, lr=0.05, backbone_lr_mult=1.0, num_workers=0,
                                   max_steps_per_epoch=2, schedule="cosine", progress=False, seed=0, device="cpu"),
                            **overrides})
    return train_model(model, setup.train, setup.val, config, folder)


def loaded_side(setup) -> int:
    return setup.train[0][0].shape[-1]


def growing_sizes(setup) -> tuple[int, int, int]:
    """Half, three quarters and all of the loader's side: one per epoch."""
    side = loaded_side(setup)
    return side // 2, 3 * side // 4, side


def test_each_epoch_trains_at_its_side_and_validates_at_the_loaders(setup, tmp_path, one_torch_thread):
    sizes = growing_sizes(setup)
    model = plain_model(setup)
    seen = []  # (training?, side) of every forward pass
    model.register_forward_pre_hook(lambda module, inputs: seen.append((module.training, inputs[0].shape[-1])))
    train(setup, tmp_path / "run", model=model, epoch_image_sizes=sizes)
    training_sides = [s for training, s in seen if training]
    assert training_sides == [sizes[0]] * 2 + [sizes[1]] * 2 + [sizes[2]] * 2  # 2 steps per epoch
    assert {s for training, s in seen if not training} == {loaded_side(setup)}


def test_the_loaders_side_throughout_changes_nothing(setup, tmp_path, one_torch_thread):
    side = loaded_side(setup)
    plain = train(setup, tmp_path / "plain")
    scheduled = train(setup, tmp_path / "scheduled", epoch_image_sizes=(side,) * EPOCHS)
    assert [h["train_loss"] for h in plain.history] == [h["train_loss"] for h in scheduled.history]
    one, other = (read_checkpoint(run.last_path)["model"] for run in (plain, scheduled))
    assert all(torch.equal(one[name], other[name]) for name in one)


def test_epoch_images_resizes_as_pillows_antialiased_bilinear():
    # the reference: Pillow's BILINEAR resize, which widens its filter when it shrinks (antialiasing)
    pixels = np.random.default_rng(0).random((2, 3, 16, 16)).astype(np.float32)
    config = TrainConfig(epochs=3, epoch_image_sizes=(8, 12, 16))
    for epoch, side in enumerate(config.epoch_image_sizes[:2]):
        resized = epoch_images(torch.from_numpy(pixels), config, epoch)
        assert resized.shape == (2, 3, side, side)
        expected = [[np.asarray(Image.fromarray(channel, mode="F").resize((side, side), Image.BILINEAR))
                     for channel in image] for image in pixels]
        np.testing.assert_allclose(resized.numpy(), np.array(expected), atol=1e-5)
    images = torch.from_numpy(pixels)
    assert epoch_images(images, config, 2) is images  # already at the epoch's side
    assert epoch_images(images, TrainConfig(epochs=3), 0) is images  # no schedule


@pytest.mark.parametrize("sizes", [(32, 64), (32, 0, 64), (32, 48.0, 64), (True, 32, 64), 64])
def test_a_schedule_without_one_side_per_epoch_is_refused(setup, tmp_path, sizes):
    with pytest.raises(ValueError, match=r"epoch_image_sizes must give one positive image side per epoch \(3\)"):
        train(setup, tmp_path / "run", epoch_image_sizes=sizes)


def test_a_resumed_run_keeps_its_schedule(setup, tmp_path, one_torch_thread):
    sizes = growing_sizes(setup)
    model = plain_model(setup)
    seen = []

    def stop_in_the_second_epoch(module, inputs):
        if module.training:
            seen.append(inputs[0].shape[-1])
            if len(seen) == 3:  # the first step of epoch 2
                raise KeyboardInterrupt

    hook = model.register_forward_pre_hook(stop_in_the_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train(setup, tmp_path / "run", model=model, epoch_image_sizes=sizes)
    hook.remove()
    seen.clear()
    model.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].shape[-1]) if module.training
                                    else None)
    resumed = train(setup, tmp_path / "run", model=model, epoch_image_sizes=sizes)
    assert resumed.resumed_from_epoch == 0  # after epoch 1 (counted from 0)
    assert seen == [sizes[1]] * 2 + [sizes[2]] * 2  # epochs 2 and 3 at their own sides
    with pytest.raises(ResumeConflictError, match="epoch_image_sizes"):  # another schedule: a new run
        train(setup, tmp_path / "run", epoch_image_sizes=(loaded_side(setup),) * EPOCHS)
