"""The helpers that every notebook's opening cells call (msrn_core.notebook)."""
from dataclasses import replace

import numpy as np
import pytest

from msrn_core.running import recipes
from msrn_core.notebook import tutorial_data


def test_tutorial_data_of_another_recipe_has_its_image_size_and_the_chosen_label_features(tmp_path, monkeypatch):
    # notebook 05 on a GPU asks for the GPU recipe's images; offline runs choose one-hot vectors
    # through MSRN_LABEL_FEATURES, and that choice must hold for those images too
    monkeypatch.setenv("MSRN_LABEL_FEATURES", "onehot")
    recipe = replace(recipes.SMALL, image_size=40)
    setup = tutorial_data(recipe=recipe, root=tmp_path)
    image, target, _ = setup.test[0]
    assert image.shape[-2:] == (40, 40)
    assert setup.label_features.shape == (len(target), len(target))
    np.testing.assert_array_equal(setup.label_features, np.eye(len(target), dtype=np.float32))


def test_the_cpu_recipe_fine_tunes_a_shared_backbone_and_small_stays_tiny():
    cpu, small = recipes.CPU, recipes.SMALL
    assert cpu.pretrain_epochs > 0 and not cpu.pretrained and cpu.backbone_lr_mult == 0.1  # paper 4.1
    assert (cpu.schedule, cpu.amp, cpu.channels_last, cpu.compactness_form) == ("cosine", "bf16", True, "paper_mean")
    assert cpu.model_config().compactness_form == "paper_mean"
    assert cpu.model_config(kind="dsdl").kind == "dsdl"  # a kind without the field is still built
    fine_tune, pretrain = cpu.train_config(), cpu.pretrain_config()
    assert (fine_tune.schedule, fine_tune.amp, fine_tune.channels_last) == ("cosine", "bf16", True)
    assert (pretrain.epochs, pretrain.lr, pretrain.backbone_lr_mult) == (cpu.pretrain_epochs, cpu.pretrain_lr, 1.0)
    assert small.image_size == 64 and small.max_steps_per_epoch == 4 and small.epochs == small.pretrain_epochs == 1
    # the GPU recipes start from ImageNet weights: no pre-training phase
    assert recipes.GPU.pretrain_epochs == recipes.PAPER.pretrain_epochs == 0
    with pytest.raises(ValueError, match="pretrain_epochs"):
        recipes.GPU.pretrain_config()
    # the training command line keeps the former from-scratch recipe
    from msrn_core.running import train
    assert train.build_parser().parse_args([]).epochs == recipes.CPU_SCRATCH.epochs == 3


def test_trained_model_starts_every_head_from_one_shared_backbone(small_scenes, tmp_path, monkeypatch):
    import torch

    from msrn_core import notebook
    from msrn_core.running.checkpoints import read_checkpoint
    from msrn_core.running.experiment import setup_from_splits

    monkeypatch.setattr(notebook, "project_root", lambda: tmp_path)
    _, _, train, val, test = small_scenes
    setup = setup_from_splits(train, val, test, label_features="onehot")
    recipe = replace(recipes.SMALL, name="tiny", max_steps_per_epoch=2, embed_dim=32, fc_hidden=32)
    # fine-tuning at lr 0 leaves the convolutions as the backbone left them
    model, _ = notebook.trained_model(setup, "msrn", recipe=recipe, train_overrides=dict(lr=0.0))
    backbone_file = tmp_path / "runs" / "notebooks" / "tiny" / "backbone" / "best.pt"
    trained_at = backbone_file.stat().st_mtime_ns
    saved = read_checkpoint(backbone_file)["model"]
    assert torch.equal(model.trunk.stem[0].weight, saved["trunk.stem.0.weight"])
    assert torch.equal(model.trunk.stages[3][1].conv2.weight, saved["trunk.stages.3.1.conv2.weight"])
    plain, _ = notebook.trained_model(setup, "plain", recipe=recipe, model_overrides=dict(kind="plain"),
                                      train_overrides=dict(lr=0.0))
    assert backbone_file.stat().st_mtime_ns == trained_at  # loaded, not trained again
    assert torch.equal(plain.trunk.stem[0].weight, saved["trunk.stem.0.weight"])
