"""Bad input and faults: untrusted files never run code, every failure is one clear message,
nothing is lost or silently changed (one test or more per case of the fault table)."""
from __future__ import annotations

import errno
import json
import os
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from msrn_core.running import train as train_cli
from msrn_core.model import ModelConfig
from msrn_core.running.checkpoints import UnsafeCheckpointError, model_from_checkpoint, read_checkpoint
from msrn_core.data.dataset import SeededAugmentation, UnreadableImage, UnreadableImageWarning, build_transform
from msrn_core.running.cli import run_cli
from msrn_core.running.experiment import make_model
from msrn_core.running.guards import (DivergenceMonitor, LossDivergenceWarning, ModelSelectionError,
                                      ResumeConflictError, non_finite_message, resume_changes)
from msrn_core.running.training import NonFiniteLossError, TrainConfig, train_model
from msrn_core.utils import (OutputWriteError, atomic_write_bytes, atomic_write_json, check_writable_folder,
                             default_file_mode)

ROOT = Path(__file__).resolve().parents[1]
SMALL_MODEL = dict(backbone="resnet18", fc_hidden=32, embed_dim=32, gat_hidden=16)
CLI_SMALL = ["--small", "--label-features", "onehot", "--workers", "0", "--device", "cpu",
             "--embed-dim", "32", "--fc-hidden", "32"]


def small_config(**overrides):
    values = dict(epochs=1, batch_size=16, lr=0.01, backbone_lr_mult=1.0, num_workers=0,
                  max_steps_per_epoch=2, progress=False, seed=0, device="cpu")
    values.update(overrides)
    return TrainConfig(**values)


def copy_split(dataset, **changes):
    """A shallow copy of a split with some attributes replaced."""
    copy = type(dataset).__new__(type(dataset))
    copy.__dict__.update(dataset.__dict__)
    copy.__dict__.update(changes)
    return copy


def write_png_claiming(path: Path, width: int, height: int) -> None:
    """A 1x1 PNG whose header (with a valid checksum) claims ``width`` x ``height`` pixels."""
    Image.new("RGB", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    start = data.index(b"IHDR")
    data[start + 4:start + 12] = struct.pack(">II", width, height)
    data[start + 17:start + 21] = struct.pack(">I", zlib.crc32(bytes(data[start:start + 17])))
    path.write_bytes(bytes(data))


# ------------------------------------------------------------------ 1: untrusted files never execute
class WritesAFile:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_crafted_pickle_is_refused_without_running_its_code(setup, tmp_path):
    marker = tmp_path / "marker"
    crafted = tmp_path / "best.pt"
    torch.save({"signature": {}, "model": WritesAFile(marker)}, crafted)
    for load in (read_checkpoint, model_from_checkpoint):
        with pytest.raises(UnsafeCheckpointError, match="could run code"):
            load(crafted)
    run = tmp_path / "run"
    run.mkdir()
    crafted.rename(run / "last.pt")  # resuming reads last.pt the same way
    with pytest.raises(UnsafeCheckpointError, match="last.pt"):
        train_model(make_model(setup, ModelConfig(**SMALL_MODEL)), setup.train, setup.val, small_config(), run)
    assert not marker.exists()


def test_checkpoints_hold_only_tensors_and_plain_values(setup, tmp_path):
    train_model(make_model(setup, ModelConfig(**SMALL_MODEL)), setup.train, setup.val, small_config(), tmp_path)
    for name in ("last.pt", "best.pt"):
        torch.load(tmp_path / name, weights_only=True)  # raises on anything else


# ------------------------------------------------------------------ 2, 3: non-finite training
def nan_after_loading(model):
    """Make the head's output NaN (a hook: it survives the load of a checkpoint's weights)."""
    model.fc2.register_forward_hook(lambda module, inputs, output: output * float("nan"))
    return model


def test_nan_loss_names_the_step_and_that_no_checkpoint_exists(setup, tmp_path):
    model = nan_after_loading(make_model(setup, ModelConfig(**SMALL_MODEL)))
    with pytest.raises(NonFiniteLossError) as info:
        train_model(model, setup.train, setup.val, small_config(), tmp_path)
    message = str(info.value)
    assert "epoch 1, step 1" in message and "No checkpoint was written yet" in message
    assert "--amp" not in message  # a CPU run has no mixed precision to turn off
    assert "--lr" in message and not (tmp_path / "last.pt").exists()


def test_nan_loss_after_a_saved_epoch_names_that_checkpoint(setup, tmp_path):
    train_model(make_model(setup, ModelConfig(**SMALL_MODEL)), setup.train, setup.val, small_config(), tmp_path)
    model = nan_after_loading(make_model(setup, ModelConfig(**SMALL_MODEL)))
    with pytest.raises(NonFiniteLossError) as info:
        train_model(model, setup.train, setup.val, small_config(epochs=2), tmp_path)
    assert "epoch 2, step 1" in str(info.value)
    assert f"{tmp_path / 'last.pt'} (after epoch 1)" in str(info.value)


def test_mixed_precision_advice_only_where_it_applies(tmp_path):
    assert "--amp off" in non_finite_message("the loss became nan", 3, 7, 0.1, True, tmp_path / "last.pt")
    assert "--amp" not in non_finite_message("the loss became nan", 3, 7, 0.1, False, tmp_path / "last.pt")


def test_nan_validation_scores_stop_with_the_same_error(setup, tmp_path, monkeypatch):
    from msrn_core.running import training

    real_predict = training.predict

    def nan_scores(*args, **kwargs):
        logits, targets, indices, skipped = real_predict(*args, **kwargs)
        return logits * np.nan, targets, indices, skipped

    monkeypatch.setattr(training, "predict", nan_scores)
    with pytest.raises(NonFiniteLossError, match=r"validation scores became non-finite .* at epoch 1 \(validation\)"):
        train_model(make_model(setup, ModelConfig(**SMALL_MODEL)), setup.train, setup.val, small_config(), tmp_path)


# ------------------------------------------------------------------ 4: divergence warns once
def test_a_loss_growing_by_orders_of_magnitude_warns_once():
    monitor = DivergenceMonitor(lr=5.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step, loss in enumerate([0.69, 0.8, 50.0, 4.8e6, 3.6e10, 1e12], start=1):
            monitor.observe(loss, 1, step)
    diverging = [w for w in caught if issubclass(w.category, LossDivergenceWarning)]
    assert len(diverging) == 1
    assert "epoch 1, step 4" in str(diverging[0].message) and "now 5" in str(diverging[0].message)


def test_a_noisy_but_healthy_loss_does_not_warn():
    monitor = DivergenceMonitor(lr=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for step, loss in enumerate([0.69, 0.9, 2.5, 0.4, 0.3], start=1):
            monitor.observe(loss, 1, step)


# ------------------------------------------------------------------ 5: no model selection possible
def test_no_readable_validation_image_stops_after_the_first_epoch(setup, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG truncated")
    val = copy_split(setup.val, image_paths=[broken] * len(setup.val))
    with pytest.warns(UnreadableImageWarning):
        with pytest.raises(ModelSelectionError, match="no validation image could be read"):
            train_model(make_model(setup, ModelConfig(**SMALL_MODEL)), setup.train, val, small_config(epochs=3),
                        tmp_path / "run")
    assert not (tmp_path / "run" / "last.pt").exists()  # stopped in epoch 1, not after 3


def test_a_validation_split_without_positives_is_refused_before_training(setup, tmp_path):
    val = copy_split(setup.val, labels=np.zeros_like(setup.val.labels))
    with pytest.raises(ModelSelectionError, match="no positive label"):
        train_model(make_model(setup, ModelConfig(**SMALL_MODEL)), setup.train, val, small_config(), tmp_path)


# ------------------------------------------------------------------ 6, 21: every PIL failure is unreadable
def test_a_decompression_bomb_is_an_unreadable_image_naming_the_limit(setup, tmp_path):
    bomb = tmp_path / "bomb.png"
    write_png_claiming(bomb, 20000, 20000)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(bomb)
    train = copy_split(setup.train, image_paths=[bomb, *setup.train.image_paths[1:]])
    item = train[0]
    assert isinstance(item, UnreadableImage) and "MAX_IMAGE_PIXELS" in item.reason
    assert str(Image.MAX_IMAGE_PIXELS) in item.reason


def test_unreadable_images_warn_once_per_file_over_epochs(setup, tmp_path):
    bomb = tmp_path / "bomb.png"
    write_png_claiming(bomb, 20000, 20000)
    train = copy_split(setup.train, image_paths=[bomb, *setup.train.image_paths[1:]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train_model(make_model(setup, ModelConfig(**SMALL_MODEL)), train, setup.val,
                             small_config(epochs=2, max_steps_per_epoch=None), tmp_path / "run")
    about_bomb = [w for w in caught if issubclass(w.category, UnreadableImageWarning) and "bomb.png" in str(w.message)]
    assert len(about_bomb) == 1 and "MAX_IMAGE_PIXELS" in str(about_bomb[0].message)
    assert result.skipped_images == 2  # counted every epoch


# ------------------------------------------------------------------ 7, 19, 20: outputs
def test_an_unwritable_run_folder_fails_before_any_training(setup, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(OutputWriteError, match="cannot write to"):
        check_writable_folder(blocker / "run")
    model = make_model(setup, ModelConfig(**SMALL_MODEL))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(OutputWriteError, match=str(blocker / "run")):
        train_model(model, setup.train, setup.val, small_config(), blocker / "run")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # not one step was taken


@pytest.mark.parametrize("number, cause", [(errno.ENOSPC, "no space left"), (errno.EROFS, "read-only")])
def test_a_failed_save_names_the_file_the_cause_and_the_intact_previous_file(tmp_path, monkeypatch, number, cause):
    target = tmp_path / "last.pt"
    target.write_bytes(b"previous")

    def fail(fd):
        raise OSError(number, os.strerror(number))

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OutputWriteError) as info:
        atomic_write_bytes(target, lambda handle: handle.write(b"new"))
    assert str(target) in str(info.value) and cause in str(info.value)
    assert "previous last.pt is intact" in str(info.value) and info.value.errno == number
    assert target.read_bytes() == b"previous" and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_orphan_temporary_checkpoints_are_removed_at_the_next_start(setup, tmp_path, capsys):
    orphans = [tmp_path / ".last.pt.k3j9x.tmp", tmp_path / ".best.pt.0abc1.tmp"]
    for orphan in orphans:
        orphan.write_bytes(b"half a checkpoint")
    (tmp_path / "notes.tmp").write_text("not ours")
    train_model(make_model(setup, ModelConfig(**SMALL_MODEL)), setup.train, setup.val, small_config(), tmp_path)
    assert not any(orphan.exists() for orphan in orphans) and (tmp_path / "notes.tmp").exists()
    assert "removed 2 temporary file(s)" in capsys.readouterr().out


def test_outputs_and_the_statistics_cache_get_the_users_permissions(tmp_path):
    from msrn_core.data.real.statistics import cached_label_statistics

    previous = os.umask(0o022)
    try:
        assert default_file_mode() == 0o644
        atomic_write_json(tmp_path / "history.json", [{"epoch": 1}])
        dataset = type("Split", (), dict(split="train", class_names=["a", "b"], image_ids=["1", "2"],
                                         labels=np.array([[1, 0], [1, 1]], dtype=np.uint8), root=tmp_path))()
        _, _, cache = cached_label_statistics(dataset)
    finally:
        os.umask(previous)
    for path in (tmp_path / "history.json", cache):
        assert (path.stat().st_mode & 0o777) == 0o644, path


# ------------------------------------------------------------------ 10, 22: resuming
def test_resume_applies_a_new_learning_rate_and_says_so(setup, tmp_path, capsys):
    train_model(make_model(setup, ModelConfig(**SMALL_MODEL)), setup.train, setup.val, small_config(lr_step=1),
                tmp_path)
    model = make_model(setup, ModelConfig(**SMALL_MODEL))
    result = train_model(model, setup.train, setup.val, small_config(epochs=2, lr=0.002, lr_step=1), tmp_path)
    printed = capsys.readouterr().out
    assert "lr 0.01 -> 0.002 (--lr)" in printed and "epochs 1 -> 2" in printed
    # the schedule continues: after epoch 1 the lr was decayed once (x0.1), so epoch 2 ran at 0.0002
    assert result.history[1]["lr"] == pytest.approx(0.002 * 0.1 * 0.1)
    assert result.history[1]["seconds"] > result.history[0]["seconds"]  # 22: seconds span the resume


def test_resume_refuses_options_that_cannot_change_midway(setup, tmp_path):
    train_model(make_model(setup, ModelConfig(**SMALL_MODEL)), setup.train, setup.val, small_config(), tmp_path)
    with pytest.raises(ResumeConflictError, match=r"batch_size 16 -> 8 \(--batch-size\).*--fresh"):
        train_model(make_model(setup, ModelConfig(**SMALL_MODEL)), setup.train, setup.val,
                    small_config(epochs=2, batch_size=8), tmp_path)


def test_resume_changes_sorts_every_field():
    saved = {**TrainConfig().__dict__}
    applied, refused = resume_changes(saved, TrainConfig(epochs=5, lr=0.5, seed=3, num_workers=7))
    assert [line.split()[0] for line in applied] == ["epochs", "lr"]
    assert [line.split()[0] for line in refused] == ["seed"]  # num_workers changes nothing computed
    del saved["clip_grad_norm"]  # a field the checkpoint lacks had its default
    assert resume_changes(saved, TrainConfig()) == ([], [])


def test_a_refused_change_names_how_to_set_it():
    from dataclasses import fields

    from msrn_core.running.guards import cli_option
    from msrn_core.running.train import build_parser

    options = {option for action in build_parser()._actions for option in action.option_strings}
    for field in fields(TrainConfig):  # an option the command line has, else the field itself
        named = cli_option(field.name)
        assert named in options or named == f"TrainConfig.{field.name}", (field.name, named)
    missing = [f.name for f in fields(TrainConfig) if cli_option(f.name).startswith("TrainConfig.")
               and "--" + f.name.replace("_", "-") in options]
    assert not missing, missing  # a field the command line sets by its own name is named so
    _, refused = resume_changes({**TrainConfig().__dict__}, TrainConfig(seed=3, epoch_image_sizes=(64,) * 90))
    assert refused == ["seed 0 -> 3 (--seed)",
                       f"epoch_image_sizes None -> {(64,) * 90!r} (TrainConfig.epoch_image_sizes)"]


# ------------------------------------------------------------------ 11-14: messages naming the thing
def test_empty_voc_class_files_are_named(tmp_path):
    from msrn_core.data.real import load_voc2007
    from test_datasets import make_voc

    voc, _ = make_voc(tmp_path / "data")
    for path in (voc / "ImageSets" / "Main").glob("*_trainval.txt"):
        path.write_text("")
    with pytest.raises(ValueError, match=r"aeroplane_trainval.txt is empty"):
        load_voc2007(tmp_path / "data")


def test_truncated_coco_annotations_name_the_file(tmp_path):
    from msrn_core.data.real import load_coco2014
    from test_datasets import make_coco

    make_coco(tmp_path / "coco")
    path = tmp_path / "coco" / "annotations" / "instances_train2014.json"
    path.write_text(path.read_text()[:500])
    with pytest.raises(ValueError, match=r"instances_train2014.json is not valid JSON .*truncated"):
        load_coco2014(tmp_path)


def test_missing_coco_categories_are_named(tmp_path):
    from msrn_core.data.real.coco import COCO_CLASSES, check_categories

    with pytest.raises(ValueError, match="found 79; missing 1: zebra"):
        check_categories(tmp_path / "instances.json", [name for name in COCO_CLASSES if name != "zebra"])
    with pytest.raises(ValueError, match="not in COCO 2014: unicorn"):
        check_categories(tmp_path / "instances.json", [*COCO_CLASSES[:-1], "unicorn"])


def test_dropped_unannotated_coco_images_are_a_warning_with_the_count(tmp_path):
    pytest.importorskip("pycocotools")
    from msrn_core.data.real import load_coco2014
    from test_datasets import make_coco

    make_coco(tmp_path / "coco")
    with pytest.warns(UserWarning, match=r"COCO train2014: dropped 1 of 12 images without annotations"):
        load_coco2014(tmp_path, val_fraction=0.25)


# ------------------------------------------------------------------ 15: the parser
@pytest.mark.parametrize("options, expected", [
    (["--epochs", "0"], "--epochs: must be at least 1"),
    (["--batch-size", "0"], "--batch-size: must be at least 1"),
    (["--workers", "-1"], "--workers: must be at least 0"),
    (["--image-size", "8"], "--image-size 8 is too small for --model msrn"),
    (["--small", "--epochs", "3"], "--small trains its fixed smoke-test schedule"),
])
def test_the_parser_refuses_bad_values(options, expected, capsys):
    with pytest.raises(SystemExit) as info:
        train_cli.main(options)
    assert info.value.code == 2 and expected in capsys.readouterr().err


def test_cuda_is_refused_where_there_is_none(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit):
        train_cli.main(["--device", "cuda"])
    assert "no CUDA GPU is visible" in capsys.readouterr().err


def test_the_smallest_image_size_allowed_is_the_smallest_that_runs():
    from msrn_core.model import build_model

    smallest = train_cli.minimum_image_size("msrn", [2, 3, 4])
    model = build_model(ModelConfig(**SMALL_MODEL), torch.zeros(3, 3), torch.eye(3)).eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, smallest, smallest))
        with pytest.raises(RuntimeError):
            model(torch.zeros(1, 3, smallest - 1, smallest - 1))


# ------------------------------------------------------------------ 8, 9, 21: the CLI's outputs
def test_evaluate_prints_first_and_writes_next_to_its_checkpoint(small_scenes, tmp_path, capsys, monkeypatch):
    args = CLI_SMALL + ["--data-root", str(small_scenes[0])]
    assert train_cli.main(args + ["--out", str(tmp_path / "run")]) == 0
    (tmp_path / "run" / "test_metrics.json").unlink()
    elsewhere = tmp_path / "copy"
    elsewhere.mkdir()
    (tmp_path / "run" / "best.pt").rename(elsewhere / "best.pt")
    monkeypatch.chdir(tmp_path)
    assert train_cli.main(args + ["--evaluate", str(elsewhere / "best.pt")]) == 0
    assert (elsewhere / "test_metrics.json").exists() and not (tmp_path / "runs").exists()
    capsys.readouterr()

    def read_only(path, obj):
        raise OutputWriteError(errno.EROFS, f"could not write {path}: the file system is read-only")

    monkeypatch.setattr(train_cli, "atomic_write_json", read_only)
    with pytest.raises(OutputWriteError):
        train_cli.main(args + ["--evaluate", str(elsewhere / "best.pt")])
    assert "mAP" in capsys.readouterr().out  # the table came before the failed write


def test_the_test_splits_skip_count_is_printed_with_the_table(small_scenes, tmp_path, capsys, monkeypatch):
    from msrn_core.running import evaluation

    real_predict = evaluation.predict

    def two_skipped(*args, **kwargs):
        logits, targets, indices, skipped = real_predict(*args, **kwargs)
        return logits, targets, indices, skipped + 2

    monkeypatch.setattr(evaluation, "predict", two_skipped)  # evaluate's scores, the test split's
    assert train_cli.main(CLI_SMALL + ["--data-root", str(small_scenes[0]), "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert out.index("test split: 2 unreadable images skipped") > out.index("mAP")


# ------------------------------------------------------------------ 16, 17: one clear line
def run_module(*arguments, env=None):
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", *arguments], capture_output=True, text=True, timeout=300,
                          env=environment, cwd=ROOT)


def test_the_train_cli_prints_one_error_line_and_debug_the_traceback(tmp_path):
    plain = run_module("msrn_core.running.train", "--dataset", "voc2007", "--data-root", str(tmp_path), "--out",
                       str(tmp_path / "run"))
    assert plain.returncode == 1 and plain.stderr.startswith("error: PASCAL VOC 2007 not found")
    assert "Traceback" not in plain.stderr
    debug = run_module("msrn_core.running.train", "--dataset", "voc2007", "--data-root", str(tmp_path), "--out",
                       str(tmp_path / "run"), "--debug")
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "DatasetNotFoundError" in debug.stderr


def test_every_cli_ends_with_one_error_line(tmp_path, capsys):
    from msrn_core.running import make_scenes, reproduce, run_notebooks

    cases = [(run_notebooks.main, ["99"], "error: no notebooks matching"),
             (reproduce.main, ["collect", "--results", str(tmp_path / "none")], "error: no results folder"),
             (make_scenes.main, ["--root", str(tmp_path), "--image-size", "8"], "error: "),
             (train_cli.main, ["--evaluate", str(tmp_path / "none.pt"), "--small", "--data-root", str(tmp_path),
                               "--label-features", "onehot"], "error: no checkpoint at")]
    for main, argv, expected in cases:
        try:
            status = run_cli(main, argv)
        except SystemExit as exit_:  # reproduce already turned its errors into one line
            status, printed = 1, str(exit_.code)
        else:
            printed = capsys.readouterr().err.strip().splitlines()[-1]  # after any progress bars
        assert status == 1 and printed.startswith(expected), (main, printed)


def test_under_torchrun_a_process_that_lost_its_peers_exits_quietly(monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")

    def lost_peer(argv):
        raise torch.distributed.DistError("[../gloo/transport/tcp/pair.cc:534] Connection closed by peer")

    def failing(argv):
        raise ValueError("the dataset is missing")

    assert run_cli(lost_peer, []) == 1 and capsys.readouterr().err == ""
    assert run_cli(failing, []) == 1
    assert capsys.readouterr().err.startswith("[rank 1] error: the dataset is missing")


# ------------------------------------------------------------------ 18: --pretrained offline
def test_the_offline_weights_advice_creates_the_cache_folder(tmp_path, monkeypatch):
    import urllib.error

    from msrn_core.model import PretrainedWeightsError, load_resnet

    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(PretrainedWeightsError) as info:
        load_resnet("resnet18", pretrained=True)
    assert f"mkdir -p {tmp_path / 'hub' / 'checkpoints'} && curl -L -o {tmp_path / 'hub' / 'checkpoints'}/" in str(
        info.value)


# ------------------------------------------------------------------ 23: augmentation per image
def test_each_images_augmentation_depends_on_seed_epoch_and_index_only(setup):
    train = copy_split(setup.train, transform=build_transform(64, train=True))
    seeded = SeededAugmentation(train, seed=0)
    first = seeded[5][0]
    torch.manual_seed(123)  # the global stream (a loader worker's, another process's) plays no part
    state = torch.get_rng_state()
    again = seeded[5][0]
    assert torch.equal(first, again) and torch.equal(torch.get_rng_state(), state)  # and is left alone
    seeded.set_epoch(1)
    assert not torch.equal(seeded[5][0], first)
    assert not torch.equal(SeededAugmentation(train, seed=1)[5][0], first)
    assert seeded.class_names == train.class_names
