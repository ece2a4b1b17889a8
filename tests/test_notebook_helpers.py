"""The helpers that every notebook's opening cells call (msrn_core.notebook)."""
import json
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


# --------------------------------------------------------------------------- small mode and recipes
import pytest
import torch

from msrn_core import mode, notebook, plots
from msrn_core.running import shared_runs
from msrn_core.utils import project_root


@pytest.fixture
def fresh_kernel(monkeypatch):
    """No mode settled by an earlier notebook_setup, and none left behind for later tests."""
    monkeypatch.setattr(mode, "_settled", None)
    monkeypatch.setattr(mode, "_settled_device", None)
    monkeypatch.setattr(shared_runs, "_runs_root", None)
    monkeypatch.delenv("MSRN_SMALL", raising=False)
    monkeypatch.delenv("MSRN_FIGURES_DIR", raising=False)
    monkeypatch.delenv("MSRN_RUNS", raising=False)


def test_small_mode_reads_the_parameter_first_then_msrn_small(fresh_kernel, monkeypatch):
    assert mode.parse_small_mode() == mode.SmallMode(False, "MSRN_SMALL unset")
    monkeypatch.setenv("MSRN_SMALL", "1")
    assert mode.parse_small_mode() == mode.SmallMode(True, "MSRN_SMALL=1")
    assert mode.parse_small_mode(False) == mode.SmallMode(False, "parameter SMALL=False")
    monkeypatch.setenv("MSRN_SMALL", "0")
    assert mode.parse_small_mode(True).on and mode.parse_small_mode("yes").on  # papermill -r SMALL yes
    assert not mode.parse_small_mode().on
    with pytest.raises(ValueError, match="SMALL is 'maybe'.*MSRN_SMALL"):
        mode.parse_small_mode("maybe")


def test_notebook_setup_settles_the_mode_and_says_what_set_it(fresh_kernel, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MSRN_SMALL", "0")
    monkeypatch.setattr(mode, "small_figures_dir", lambda: tmp_path / "small-figures")
    notebook.notebook_setup(small=True)
    assert "mode: small (parameter SMALL=True) | recipe small" in capsys.readouterr().out
    # later calls without `small` follow the notebook's parameter, not the environment
    assert recipes.small_mode_requested() and recipes.default_recipe() is recipes.SMALL
    fig = plots.plot_label_heatmap(np.eye(3), ["a", "b", "c"], "tiny")
    path = plots.save_figure(fig, "from_a_small_notebook")
    assert path == tmp_path / "small-figures" / "from_a_small_notebook.png"
    assert plots.FIGURES_DIR not in path.parents  # small mode never writes the committed figures
    notebook.notebook_setup(small=None)
    assert "mode: full (MSRN_SMALL=0) | recipe cpu" in capsys.readouterr().out
    assert plots.figures_dir() == plots.FIGURES_DIR


def test_each_kernel_trains_the_recipe_of_its_device(fresh_kernel, monkeypatch):
    assert recipes.recipe_for_device(False, torch.device("cuda")) is recipes.GPU
    assert recipes.recipe_for_device(False, "cpu") is recipes.CPU
    assert recipes.recipe_for_device(False, "mps") is recipes.CPU
    assert recipes.recipe_for_device(True, "cuda") is recipes.SMALL
    assert recipes.default_recipe(False) is recipes.CPU  # nothing settled: the CPU recipe
    mode.use_small_mode(False, torch.device("cuda"))  # what notebook_setup does on a CUDA kernel
    assert recipes.default_recipe(False) is recipes.GPU and notebook.run_folder("msrn").parent.name == "gpu"


def test_the_runs_parameter_moves_every_run_folder(fresh_kernel, tmp_path, capsys):
    assert notebook.run_folder("msrn", small=True) == project_root() / "runs" / "notebooks" / "small" / "msrn"
    notebook.notebook_setup(small=True, runs=tmp_path / "drive")
    assert f"runs: {tmp_path / 'drive'}" in capsys.readouterr().out
    assert notebook.run_folder("plain") == tmp_path / "drive" / "small" / "plain"


def test_real_data_parameters_left_at_none_read_the_environment(monkeypatch, tmp_path):
    from msrn_core.running.real_data import RealDataRun

    monkeypatch.setenv("MSRN_DATASET", "VOC2007")
    monkeypatch.setenv("MSRN_DATA_ROOT", str(tmp_path))
    run = RealDataRun(None, None)  # the notebooks' literal parameters DATASET = None, DATA_ROOT = None
    assert (run.dataset, run.data_root) == ("voc2007", tmp_path)
    monkeypatch.delenv("MSRN_DATASET")
    assert RealDataRun(None, "x").dataset == "scenes"
def test_figure_png_and_float_tensor():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from msrn_core.notebook import figure_png, float_tensor

    fig, ax = plt.subplots(figsize=(1, 1))
    png = figure_png(fig, dpi=20)
    assert png.startswith(b"\x89PNG") and not plt.fignum_exists(fig.number)  # PNG bytes, figure closed
    tensor = float_tensor(np.array([[1, 2]], dtype=np.int64))
    assert tensor.dtype == torch.float32 and tensor.tolist() == [[1.0, 2.0]]
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
    resolved = train.resolve_options(train.build_parser().parse_args([]))
    assert (resolved.epochs, resolved.backbone_lr_mult) == (recipes.CPU_SCRATCH.epochs, 1.0) == (3, 1.0)
    assert train.cli_recipe(resolved) is recipes.CPU_SCRATCH


def test_trained_model_starts_every_head_from_one_shared_backbone(small_scenes, tmp_path, monkeypatch):
    import torch

    from msrn_core import notebook
    from msrn_core.running.checkpoints import read_checkpoint
    from msrn_core.running.experiment import setup_from_splits

    monkeypatch.setattr(shared_runs, "project_root", lambda: tmp_path)
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


def test_a_run_that_trains_and_a_run_that_loads_print_the_same_lines(small_scenes, tmp_path, monkeypatch, capsys):
    from msrn_core import notebook
    from msrn_core.running.experiment import setup_from_splits

    monkeypatch.setattr(shared_runs, "project_root", lambda: tmp_path)
    _, _, train, val, test = small_scenes
    setup = setup_from_splits(train, val, test, label_features="onehot")
    recipe = replace(recipes.SMALL, name="tiny", max_steps_per_epoch=2, pretrain_epochs=2, embed_dim=32, fc_hidden=32)
    assert shared_runs.finished_main_job_runs(recipe) == []

    def notebook_02_and_05():  # as the notebooks call them: the backbone, MSRN, then a baseline
        shared_runs.shared_backbone(setup, recipe)
        notebook.trained_model(setup, "msrn", recipe=recipe)
        notebook.trained_model(setup, "plain", recipe=recipe, model_overrides=dict(kind="plain"))
        return capsys.readouterr().out

    trained, loaded = notebook_02_and_05(), notebook_02_and_05()
    assert trained == loaded
    assert trained.count("epoch 1/2: loss") == 1 and trained.count("epoch 1/1: loss") == 2  # the backbone once
    assert "tiny/msrn: finished, best epoch 1" in trained
    assert shared_runs.finished_main_job_runs(recipe) == ["backbone", "msrn", "plain"]


def test_a_model_kept_off_the_shared_backbone_trains_the_whole_budget_from_scratch(small_scenes, tmp_path,
                                                                                   monkeypatch):
    from msrn_core import notebook
    from msrn_core.running.checkpoints import read_checkpoint
    from msrn_core.running.experiment import setup_from_splits

    monkeypatch.setattr(shared_runs, "project_root", lambda: tmp_path)
    _, _, train, val, test = small_scenes
    setup = setup_from_splits(train, val, test, label_features="onehot")
    recipe = replace(recipes.SMALL, name="tiny", max_steps_per_epoch=2, pretrain_epochs=2)
    _, result = notebook.trained_model(setup, "sdl", recipe=recipe, model_overrides=dict(kind="sdl"))
    assert len(result.history) == recipe.pretrain_epochs + recipe.epochs == 3
    assert not (tmp_path / "runs" / "notebooks" / "tiny" / "backbone").exists()  # SDL never saw it
    saved = read_checkpoint(tmp_path / "runs" / "notebooks" / "tiny" / "sdl" / "last.pt")
    assert saved["train_config"]["backbone_lr_mult"] == 1.0


def test_runs_of_an_earlier_recipe_are_refused_with_the_fields_that_changed(fresh_kernel, tmp_path, monkeypatch):
    monkeypatch.setattr(shared_runs, "_runs_root", tmp_path)
    folder = notebook.run_folder("msrn", recipe=recipes.SMALL).parent
    assert not folder.exists()  # naming a run folder creates nothing
    notebook.check_recipe_folder(folder, recipes.SMALL)  # the first run records the recipe
    notebook.check_recipe_folder(folder, recipes.SMALL)  # the same recipe again: fine
    assert json.loads((folder / notebook.RECIPE_FILE).read_text())["output_stride"] == recipes.SMALL.output_stride
    changed = replace(recipes.SMALL, pretrain_epochs=3, output_stride=32)
    with pytest.raises(notebook.RecipeChangedError, match=r"pretrain_epochs 1 there, 3 now; output_stride 16 there, 32 now"
                       r".*move or delete that folder"):
        notebook.check_recipe_folder(folder, changed)
    assert json.loads((folder / notebook.RECIPE_FILE).read_text())["pretrain_epochs"] == 1  # nothing overwritten


def test_runs_from_before_recipes_were_recorded_are_refused(fresh_kernel, tmp_path):
    folder = tmp_path / "cpu"
    (folder / "msrn").mkdir(parents=True)
    (folder / "msrn" / "last.pt").write_bytes(b"")  # a run of some earlier version, no recipe.json
    with pytest.raises(notebook.RecipeChangedError, match=r"from before .*\(msrn\).*move or delete that folder"):
        notebook.check_recipe_folder(folder, recipes.CPU)
    assert not (folder / notebook.RECIPE_FILE).exists()
