"""The training loop: the loss falls, resuming is exact, and bad input fails clearly."""
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from msrn_core.running.checkpoints import (CheckpointMismatchError, load_model_state, model_from_checkpoint,
                                   save_checkpoint)
from msrn_core.data.dataset import UnreadableImageWarning
from msrn_core.running.experiment import make_model, setup_from_splits
from msrn_core.model import ModelConfig
from msrn_core.running.training import (NonFiniteLossError, TrainConfig, _keep_kernel_choice, evaluate, loss_terms,
                                load_or_train, make_sgd, train_model)
from msrn_core.utils import atomic_write_bytes, seed_everything

SMALL_MODEL = dict(backbone="resnet18", fc_hidden=64, embed_dim=64, gat_hidden=32)


def small_config(**overrides):
    values = dict(epochs=2, batch_size=16, lr=0.01, backbone_lr_mult=1.0, num_workers=0,
                  max_steps_per_epoch=2, progress=False, seed=0, device="cpu")
    values.update(overrides)
    return TrainConfig(**values)


def test_a_few_steps_reduce_the_loss_on_the_builtin_dataset(setup):
    seed_everything(0)
    model = make_model(setup, ModelConfig(**SMALL_MODEL))
    images, targets = zip(*[setup.train[i][:2] for i in range(16)])
    images, targets = torch.stack(images), torch.stack(targets)
    optimizer = torch.optim.SGD(model.parameter_groups(0.01, 1.0), lr=0.01, momentum=0.9)
    losses = []
    for _ in range(8):
        loss, _ = loss_terms(model(images), targets, 1e-3)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_a_model_with_its_own_loss_is_trained_with_it(setup):
    model = make_model(setup, ModelConfig(**SMALL_MODEL))
    images, targets = zip(*[setup.train[i][:2] for i in range(4)])
    images, targets = torch.stack(images), torch.stack(targets)
    output = model(images)
    default_total, default_bce = loss_terms(output, targets, 1e-3, model)
    assert torch.allclose(default_total, default_bce + 1e-3 * output.compactness)
    model.training_loss = lambda out, tgt: (out.logits.pow(2).mean(), out.logits.abs().mean())
    total, main = loss_terms(output, targets, 1e-3, model)
    assert torch.allclose(total, output.logits.pow(2).mean())
    assert torch.allclose(main, output.logits.abs().mean())
    wrapped = torch.nn.Module()
    wrapped.module = model  # as DistributedDataParallel holds it
    assert torch.allclose(loss_terms(output, targets, 1e-3, wrapped)[0], total)


def test_training_writes_checkpoints_history_and_metrics(setup, tmp_path):
    seed_everything(0)
    model = make_model(setup, ModelConfig(**SMALL_MODEL))
    result = train_model(model, setup.train, setup.val, small_config(), tmp_path)
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert (tmp_path / "best.pt").exists() and (tmp_path / "last.pt").exists()
    assert json.loads((tmp_path / "history.json").read_text()) == result.history
    metrics = evaluate(model, setup.test, json_path=tmp_path / "test.json")
    saved = json.loads((tmp_path / "test.json").read_text())
    assert set(saved) >= {"mAP", "CP", "CR", "CF1", "OP", "OR", "OF1", "CF1-3", "OF1-3", "per_class_ap"}
    assert saved["mAP"] == pytest.approx(metrics["mAP"])
    assert 0 <= saved["mAP"] <= 1


def test_resumed_training_continues_identically(setup, tmp_path):
    config = small_config(epochs=3)
    seed_everything(0)
    straight = make_model(setup, ModelConfig(**SMALL_MODEL))
    straight_result = train_model(straight, setup.train, setup.val, config, tmp_path / "straight")

    seed_everything(0)
    first = make_model(setup, ModelConfig(**SMALL_MODEL))
    train_model(first, setup.train, setup.val, small_config(epochs=1), tmp_path / "resumed")
    seed_everything(123)  # a new process would start from other random state
    second = make_model(setup, ModelConfig(**SMALL_MODEL))
    resumed_result = train_model(second, setup.train, setup.val, config, tmp_path / "resumed")

    assert resumed_result.resumed_from_epoch == 0
    for key, value in straight.state_dict().items():
        torch.testing.assert_close(second.state_dict()[key], value, rtol=0, atol=0, msg=key)
    drop = lambda history: [{k: v for k, v in h.items() if k != "seconds"} for h in history]  # noqa: E731
    assert drop(resumed_result.history) == drop(straight_result.history)


def test_load_or_train_loads_a_finished_run(setup, tmp_path):
    seed_everything(0)
    model = make_model(setup, ModelConfig(**SMALL_MODEL))
    trained = load_or_train(model, setup.train, setup.val, small_config(epochs=1), tmp_path)
    fresh = make_model(setup, ModelConfig(**SMALL_MODEL))
    loaded = load_or_train(fresh, setup.train, setup.val, small_config(epochs=1), tmp_path)
    assert loaded.extra.get("loaded") and loaded.history == trained.history
    for key, value in model.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value, rtol=0, atol=0)


def test_checkpoint_rebuilds_the_model_alone(setup, tmp_path):
    model = make_model(setup, ModelConfig(**SMALL_MODEL)).eval()
    save_checkpoint(tmp_path / "m.pt", model, setup.class_names)
    rebuilt, names, _ = model_from_checkpoint(tmp_path / "m.pt")
    images = torch.stack([setup.test[i][0] for i in range(2)])
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(images).logits, model(images).logits)
    assert names == setup.class_names


def test_checkpoint_for_another_label_set_is_refused(setup, tmp_path):
    model = make_model(setup, ModelConfig(**SMALL_MODEL))
    save_checkpoint(tmp_path / "m.pt", model, setup.class_names)
    renamed = list(reversed(setup.class_names))
    with pytest.raises(CheckpointMismatchError, match="another label set"):
        load_model_state(tmp_path / "m.pt", model, renamed)


def test_checkpoint_for_another_architecture_is_refused(setup, tmp_path):
    model = make_model(setup, ModelConfig(**SMALL_MODEL))
    save_checkpoint(tmp_path / "m.pt", model, setup.class_names)
    other = make_model(setup, ModelConfig(**{**SMALL_MODEL, "num_groups": 3}))
    with pytest.raises(CheckpointMismatchError, match="num_groups"):
        load_model_state(tmp_path / "m.pt", other, setup.class_names)


def test_corrupt_checkpoint_is_named(tmp_path):
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointMismatchError, match="not a readable checkpoint"):
        model_from_checkpoint(tmp_path / "broken.pt")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        model_from_checkpoint(tmp_path / "missing.pt")


def test_interrupted_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "last.pt"
    target.write_bytes(b"previous")

    def crash(handle):
        handle.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(target, crash)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_nan_loss_stops_with_a_clear_error(setup, tmp_path):
    model = make_model(setup, ModelConfig(**SMALL_MODEL))
    with torch.no_grad():
        model.fc2.bias.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match="Lower the learning rate"):
        train_model(model, setup.train, setup.val, small_config(epochs=1), tmp_path)


def test_unreadable_images_are_skipped_and_counted(small_scenes, tmp_path):
    root, config, train, val, test = small_scenes
    corrupted = tmp_path / "copy"
    shutil.copytree(train.image_paths[0].parents[2], corrupted)
    broken_train = type(train).__new__(type(train))
    broken_train.__dict__.update(train.__dict__)
    broken_train.image_paths = [corrupted / p.relative_to(train.image_paths[0].parents[2])
                                for p in train.image_paths]
    broken_train.image_paths[3].write_bytes(b"\x89PNG truncated")
    setup = setup_from_splits(broken_train, val, test, label_features="onehot")
    model = make_model(setup, ModelConfig(**SMALL_MODEL))
    with pytest.warns(UnreadableImageWarning, match="skipping unreadable image"):
        result = train_model(model, setup.train, setup.val,
                             small_config(epochs=1, max_steps_per_epoch=None), tmp_path / "run")
    assert result.skipped_images == 1
    assert Image.open(val.image_paths[0]).size == (config.image_size, config.image_size)


def test_label_without_positives_is_refused(small_scenes):
    _, _, train, val, test = small_scenes
    no_positive = type(train).__new__(type(train))
    no_positive.__dict__.update(train.__dict__)
    no_positive.labels = train.labels.copy()
    no_positive.labels[:, 0] = 0
    with pytest.raises(ValueError, match=f"no positive example.*{train.class_names[0]}"):
        setup_from_splits(no_positive, val, test, label_features="onehot")
    assert np.all(train.labels.sum(0) > 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("amp", ["fp16", "bf16"])
def test_mixed_precision_training_and_resume_on_cuda(setup, tmp_path, amp):
    seed_everything(0)
    model = make_model(setup, ModelConfig(**SMALL_MODEL))
    config = small_config(epochs=1, device="cuda", amp=amp)
    first = train_model(model, setup.train, setup.val, config, tmp_path)
    assert np.isfinite(first.history[0]["train_loss"])
    resumed = train_model(make_model(setup, ModelConfig(**SMALL_MODEL)), setup.train, setup.val,
                          small_config(epochs=2, device="cuda", amp=amp), tmp_path)
    assert resumed.resumed_from_epoch == 0 and len(resumed.history) == 2
    assert next(model.parameters()).device.type == "cuda"


def test_command_line_trains_and_evaluates_in_small_mode(small_scenes, tmp_path, capsys):
    from msrn_core.running import train

    root = small_scenes[0]
    args = ["--small", "--data-root", str(root), "--out", str(tmp_path / "run"), "--label-features", "onehot",
            "--workers", "0", "--device", "cpu", "--embed-dim", "32", "--fc-hidden", "32"]
    assert train.main(args) == 0
    metrics = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    assert 0 <= metrics["mAP"] <= 1 and metrics["num_images"] == 48
    assert train.main(args + ["--evaluate", str(tmp_path / "run" / "best.pt")]) == 0
    with pytest.raises(CheckpointMismatchError, match="architecture"):
        train.main(args[:-4] + ["--evaluate", str(tmp_path / "run" / "best.pt")])
    assert "msrn" in capsys.readouterr().out


def test_command_line_help_explains_the_options(capsys):
    from msrn_core.running import train

    with pytest.raises(SystemExit):
        train.main(["--help"])
    text = capsys.readouterr().out
    for option in ("--paper", "--evaluate", "--embeddings", "--branches", "--small", "examples:"):
        assert option in text


def test_sgd_is_fused_where_torch_has_it_and_equals_the_plain_loop():
    torch.manual_seed(0)
    params = [torch.randn(5, 3, requires_grad=True), torch.randn(3, requires_grad=True)]
    twins = [p.detach().clone().requires_grad_() for p in params]
    fused, plain = make_sgd(params, 0.1, 0.9, 1e-2), torch.optim.SGD(twins, lr=0.1, momentum=0.9, weight_decay=1e-2)
    torch_version = tuple(int(part) for part in torch.__version__.split(".")[:2])
    assert bool(fused.defaults.get("fused")) == (torch_version >= (2, 4))  # the CPU's fused SGD came in 2.4
    for step in range(3):
        for group in (params, twins):
            for p in group:
                p.grad = torch.full_like(p, 0.5 + step)
        fused.step()
        plain.step()
    for p, q in zip(params, twins):
        torch.testing.assert_close(p, q)


def test_sgd_falls_back_to_the_plain_loop_without_a_fused_kernel(monkeypatch):
    original = torch.optim.SGD

    def sgd_without_fused(params, fused=None, **options):
        if fused:
            raise RuntimeError("`fused=True` requires all the params to be floating point Tensors of "
                               "supported devices")
        return original(params, **options)

    monkeypatch.setattr(torch.optim, "SGD", sgd_without_fused)
    parameters = (p for p in [torch.randn(2, requires_grad=True)])  # a generator is read once
    optimizer = make_sgd(parameters, 0.1, 0.9, 0.0)
    assert not optimizer.defaults.get("fused") and len(optimizer.param_groups[0]["params"]) == 1


def test_resumed_optimiser_keeps_its_own_kernel_choice():
    p = torch.randn(3, requires_grad=True)
    optimizer = make_sgd([p], 0.1, 0.9, 0.0)
    chosen = bool(optimizer.param_groups[0]["fused"])
    saved = torch.optim.SGD([p], lr=0.05, momentum=0.9).state_dict()
    saved["param_groups"][0]["fused"] = not chosen  # a checkpoint from another torch or device
    _keep_kernel_choice(optimizer, saved)
    assert bool(optimizer.param_groups[0]["fused"]) == chosen
    assert optimizer.param_groups[0]["lr"] == 0.05  # the rest of the state is the checkpoint's


def test_gpu_recipes_load_data_with_more_processes_than_the_cpu_recipe(monkeypatch):
    import os

    from msrn_core.running import recipes, train

    assert recipes.CPU.train_config().num_workers == 2
    assert recipes.GPU.train_config().num_workers == recipes.PAPER.num_workers == min(8, os.cpu_count() or 1)
    # the CLI: --paper brings the recipe's workers unless --workers is given
    args = train.resolve_options(train.build_parser().parse_args(["--paper"]))
    assert args.workers == recipes.PAPER.num_workers
    args = train.resolve_options(train.build_parser().parse_args(["--paper", "--workers", "3"]))
    assert args.workers == 3


def test_command_line_options_come_from_the_recipes():
    from msrn_core import defaults
    from msrn_core.running import recipes, train

    def resolved(*argv):
        return train.resolve_options(train.build_parser().parse_args(list(argv)))

    cpu = resolved()
    assert (cpu.backbone, cpu.image_size, cpu.embed_dim, cpu.fc_hidden, cpu.epochs, cpu.batch_size, cpu.lr,
            cpu.backbone_lr_mult, cpu.lr_step, cpu.workers) == (
        "resnet18", defaults.IMAGE_SIZE, defaults.CPU_EMBED_DIM, defaults.CPU_FC_HIDDEN, recipes.CPU_SCRATCH.epochs,
        recipes.CPU_SCRATCH.batch_size, recipes.CPU_SCRATCH.lr, 1.0, recipes.CPU_SCRATCH.lr_step,
        recipes.CPU_SCRATCH.num_workers)  # the CLI trains from scratch: the former CPU recipe
    assert (cpu.t, cpu.p, cpu.label_features) == (defaults.T, defaults.P, defaults.LABEL_FEATURES)
    assert resolved("--pretrained").backbone_lr_mult == recipes.PAPER.backbone_lr_mult  # ImageNet weights: 0.1
    assert resolved("--embed-dim", "64").embed_dim == 64
    small = resolved("--small", "--epochs", "5")
    assert (small.image_size, small.epochs) == (recipes.SMALL.image_size, recipes.SMALL.epochs)
    paper = resolved("--paper", "--embed-dim", "64", "--image-size", "96")  # --paper fixes its options
    assert all(getattr(paper, name) == getattr(recipes.PAPER, name) for name in train.PAPER_RECIPE_OPTIONS)
    assert train.cli_recipe(paper).model_config(embed_dim=paper.embed_dim) == recipes.PAPER.model_config()


# --- the CPU recipe's training levers (compactness forms, schedules, bf16, a shared backbone) ---

def test_compactness_forms_match_hand_computed_values_on_four_labels():
    from msrn_core.layers import compactness_loss

    # 4 labels in 2 groups (argmax of S): labels 0, 1 -> group 0; labels 2, 3 -> group 1
    label_embeddings = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0], [1.0, 1.0]])
    group_embeddings = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    assignment = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7]])
    # differences E_g^k(i) - E_l^i: (0, 1), (1, -1), (-3, -4), (-1, -1)
    squared = [0 + 1, 1 + 1, 9 + 16, 1 + 1]  # 1, 2, 25, 2 -> 30
    assert compactness_loss(group_embeddings, label_embeddings, assignment, "paper").item() == pytest.approx(30.0)
    assert compactness_loss(group_embeddings, label_embeddings, assignment, "paper_mean").item() == \
        pytest.approx(sum(squared) / 4)
    # the authors' code: sum_i torch.dist(E_l^i, E_g^k(i)), unsquared: 1 + sqrt 2 + 5 + sqrt 2
    authors = sum(float(torch.dist(label_embeddings[i], group_embeddings[k])) for i, k in enumerate([0, 0, 1, 1]))
    assert authors == pytest.approx(6 + 2 * 2 ** 0.5)
    assert compactness_loss(group_embeddings, label_embeddings, assignment, "authors").item() == \
        pytest.approx(authors)
    with pytest.raises(ValueError, match="compactness form"):
        compactness_loss(group_embeddings, label_embeddings, assignment, "squared")


def test_each_compactness_form_brings_its_own_weight_and_the_authors_form_pools_relu_embeddings(setup):
    from msrn_core.layers import COMPACTNESS_FORMS
    from msrn_core.running.training import compactness_lambda

    assert COMPACTNESS_FORMS == {"paper": 1e-3, "authors": 1e-4, "paper_mean": 1e-3}
    images = torch.stack([setup.train[i][0] for i in range(2)])
    targets = torch.stack([setup.train[i][1] for i in range(2)])
    for form, weight in COMPACTNESS_FORMS.items():
        seed_everything(0)
        model = make_model(setup, ModelConfig(**SMALL_MODEL, compactness_form=form))
        assert compactness_lambda(model, None) == weight and compactness_lambda(model, 0.5) == 0.5
        output = model(images)
        total, bce = loss_terms(output, targets, None, model)
        assert torch.allclose(total, bce + weight * output.compactness)
    with pytest.raises(ValueError, match="compactness_form"):
        ModelConfig(compactness_form="squared")


def test_loss_gradient_norms_are_finite_per_step_and_leave_the_model_alone(setup):
    from msrn_core.running.training import loss_gradient_norms

    seed_everything(0)
    model = make_model(setup, ModelConfig(**SMALL_MODEL, compactness_form="paper"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    record = loss_gradient_norms(model, setup.train, small_config(batch_size=8), steps=3)
    for key in ("bce", "compactness", "total", "clip_scale", "bce_value", "compactness_value"):
        assert len(record[key]) == 3 and np.isfinite(record[key]).all(), key
    assert min(record["bce"]) > 0 and min(record["compactness"]) > 0
    # the clipped norm is the norm of the summed gradient: at most the sum of the two terms'
    assert all(t <= b + c + 1e-4 for t, b, c in zip(record["total"], record["bce"], record["compactness"]))
    assert record["compactness_weight"] == 1e-3 and record["form"] == "paper"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_cosine_schedule_warms_up_then_decays_to_zero():
    from msrn_core.running.training import make_scheduler

    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=1.0)
    scheduler = make_scheduler(optimizer, small_config(epochs=2, schedule="cosine", warmup_epochs=0.5), 10)
    rates = []
    for _ in range(20):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert all(a >= b for a, b in zip(rates[4:], rates[5:]))
    assert rates[-1] == pytest.approx(0.5 * (1 + np.cos(np.pi * 14 / 15)))  # the last of 15 decay steps
    with pytest.raises(ValueError, match="schedule"):
        make_scheduler(optimizer, small_config(schedule="linear"), 10)


def test_cpu_bf16_autocasts_only_where_the_cpu_has_native_bf16(monkeypatch):
    from msrn_core.running import precision

    cpu = torch.device("cpu")
    assert precision.autocast_dtype(cpu, "auto") is None and precision.autocast_dtype(cpu, "off") is None
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert precision.autocast_dtype(cpu, "bf16") == torch.bfloat16
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert precision.autocast_dtype(cpu, "bf16") is None


def test_cosine_bf16_channels_last_training_resumes_identically(setup, tmp_path, monkeypatch):
    from msrn_core.running import training

    config = small_config(schedule="cosine", warmup_epochs=0.5, amp="bf16", channels_last=True)
    seed_everything(0)
    full = train_model(make_model(setup, ModelConfig(**SMALL_MODEL)), setup.train, setup.val, config, tmp_path / "a")
    # the same run stopped during epoch 2's validation (the cosine spans both epochs either way)
    real_predict, calls = training.predict, []

    def stop_at_second_validation(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_predict(*args, **kwargs)

    monkeypatch.setattr(training, "predict", stop_at_second_validation)
    seed_everything(0)
    with pytest.raises(KeyboardInterrupt):
        train_model(make_model(setup, ModelConfig(**SMALL_MODEL)), setup.train, setup.val, config, tmp_path / "b")
    monkeypatch.setattr(training, "predict", real_predict)
    seed_everything(123)
    resumed = train_model(make_model(setup, ModelConfig(**SMALL_MODEL)), setup.train, setup.val, config,
                          tmp_path / "b")
    assert resumed.resumed_from_epoch == 0
    assert [h["train_loss"] for h in resumed.history] == pytest.approx([h["train_loss"] for h in full.history])
    assert [h["lr"] for h in resumed.history] == pytest.approx([h["lr"] for h in full.history])


def test_fine_tuning_starts_from_the_saved_backbone_and_not_its_head(setup, tmp_path):
    from msrn_core.running.checkpoints import load_trunk_weights

    seed_everything(0)
    plain = make_model(setup, ModelConfig(**SMALL_MODEL, kind="plain"))
    save_checkpoint(tmp_path / "backbone.pt", plain, setup.class_names)
    seed_everything(1)
    msrn = make_model(setup, ModelConfig(**SMALL_MODEL))
    head_before = msrn.fc1.weight.clone()
    assert not torch.equal(msrn.trunk.stem[0].weight, plain.trunk.stem[0].weight)
    load_trunk_weights(tmp_path / "backbone.pt", msrn)
    for key, value in plain.trunk.state_dict().items():
        assert torch.equal(msrn.trunk.state_dict()[key], value), key
    assert torch.equal(msrn.fc1.weight, head_before)
    other = make_model(setup, ModelConfig(**{**SMALL_MODEL, "backbone": "resnet34"}))
    with pytest.raises(CheckpointMismatchError, match="resnet18 backbone"):
        load_trunk_weights(tmp_path / "backbone.pt", other)


def test_group_link_loss_is_zero_for_groups_that_are_the_graphs_components_and_weighted_in_the_loss(setup):
    from msrn_core.model import group_link_loss

    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]], dtype=torch.bool)
    hard = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert group_link_loss(hard, mask).item() == 0.0
    # every label in one group: S S^T is all ones, 8 wrong entries of 1 -> ||.||_F = sqrt 8, / n = 4
    one_group = torch.tensor([[1.0, 0.0]] * 4)
    assert group_link_loss(one_group, mask).item() == pytest.approx(8 ** 0.5 / 4)
    seed_everything(0)
    model = make_model(setup, ModelConfig(**SMALL_MODEL))
    images = torch.stack([setup.train[i][0] for i in range(2)])
    targets = torch.stack([setup.train[i][1] for i in range(2)])
    output = model(images)
    assert output.group_link is not None and output.group_link.item() > 0
    plain, bce = loss_terms(output, targets, 0.0, model)
    linked, _ = loss_terms(output, targets, 0.0, model, group_link_weight=2.0)
    assert torch.allclose(plain, bce) and torch.allclose(linked, bce + 2.0 * output.group_link)
