"""Bad input and faults, second round: each test names the case of docs/bad_input.md it proves."""
from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest
import torch

from msrn_core.running.checkpoints import CheckpointMismatchError, UnsafeCheckpointError, read_checkpoint

ROOT = Path(__file__).resolve().parents[1]
CLI_SMALL = ["--small", "--label-features", "onehot", "--workers", "0", "--device", "cpu",
             "--embed-dim", "32", "--fc-hidden", "32"]


class WritesAFile:
    """A pickle whose loading creates ``marker``: proof that a load ran the file's code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


# ------------------------------------------------------------------ the pretrained-weights cache
def cached_weights_path(torch_home: Path, name: str = "resnet18") -> Path:
    import torchvision

    url = torchvision.models.get_model_weights(name).DEFAULT.url
    return torch_home / "hub" / "checkpoints" / url.rsplit("/", 1)[-1]


def crafted_weights_cache(tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    """A pickle whose unpickling writes ``marker``, saved where torchvision caches resnet18's weights."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = cached_weights_path(tmp_path / "torch")
    cached.parent.mkdir(parents=True)
    marker = tmp_path / "code-ran"
    torch.save({"conv1.weight": WritesAFile(marker)}, cached)
    return cached, marker


def test_a_crafted_file_in_the_weights_cache_never_runs(tmp_path, monkeypatch):
    from msrn_core.model import PretrainedWeightsError, load_resnet

    cached, marker = crafted_weights_cache(tmp_path, monkeypatch)
    with pytest.raises(PretrainedWeightsError) as info:
        load_resnet("resnet18", pretrained=True)
    assert not marker.exists()
    assert str(cached) in str(info.value) and f"rm {cached}" in str(info.value)


def test_a_crafted_file_with_the_right_hash_is_still_read_as_data(tmp_path, monkeypatch):
    """The hash is checked first; the weights-only load is the second wall (a hash collision)."""
    from msrn_core import model as model_module

    cached, marker = crafted_weights_cache(tmp_path, monkeypatch)
    prefix = torch.hub.HASH_REGEX.search(cached.name).group(1)
    monkeypatch.setattr(model_module, "file_digest", lambda path: prefix + "0" * 56)
    with pytest.raises(model_module.PretrainedWeightsError, match="could run code") as info:
        model_module.load_resnet("resnet18", pretrained=True)
    assert not marker.exists() and "weights_only" not in str(info.value)


def test_deleting_a_refused_weights_file_downloads_it_anew(tmp_path, monkeypatch):
    """Following the message (delete the file, run again) gives the published weights."""
    import torchvision

    from msrn_core import model as model_module

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = cached_weights_path(tmp_path / "torch")
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not the weights")
    with pytest.raises(model_module.PretrainedWeightsError, match="delete it"):
        model_module.load_resnet("resnet18", pretrained=True)
    cached.unlink()  # the fix the message names
    published = torchvision.models.resnet18(weights=None).state_dict()
    prefix = torch.hub.HASH_REGEX.search(cached.name).group(1)

    def download(url, destination, hash_prefix=None, progress=True):  # the server, offline
        assert hash_prefix == prefix  # torch.hub checks the download against the name's hash
        torch.save(published, destination)

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    real_digest = model_module.file_digest
    monkeypatch.setattr(model_module, "file_digest",
                        lambda path: prefix + real_digest(path)[len(prefix):])
    loaded = model_module.load_resnet("resnet18", pretrained=True)
    assert torch.equal(loaded.conv1.weight, published["conv1.weight"])


# ------------------------------------------------------------------ the blocked-pickle message
@pytest.mark.parametrize("form", ["zip", "legacy", "protocol0"])
def test_a_blocked_pickle_message_names_the_object_and_never_advises_unsafe_loading(tmp_path, form):
    from msrn_core.predict import PredictError, read_checkpoint_safely

    marker = tmp_path / "code-ran"
    crafted = tmp_path / "best.pt"
    if form == "zip":
        torch.save({"signature": {}, "model": WritesAFile(marker)}, crafted)
    elif form == "legacy":
        torch.save({"signature": {}, "model": WritesAFile(marker)}, crafted, _use_new_zipfile_serialization=False)
    else:
        crafted.write_bytes(f"c__builtin__\nopen\n(S'{marker}'\nS'w'\ntR.".encode())
    with pytest.raises(UnsafeCheckpointError) as info:
        read_checkpoint(crafted)
    assert "could run code" in str(info.value) and "open" in str(info.value)
    with pytest.raises(PredictError) as predicted:
        read_checkpoint_safely(crafted)
    for message in (str(info.value), str(predicted.value)):
        assert "weights_only" not in message and "\n" not in message
    assert not marker.exists()


def test_a_truncated_checkpoint_message_never_advises_unsafe_loading(tmp_path):
    buffer = io.BytesIO()
    torch.save({"model": torch.zeros(1000)}, buffer)
    for content in (buffer.getvalue()[:300], b"", b"garbage"):
        (tmp_path / "model.pt").write_bytes(content)
        with pytest.raises(CheckpointMismatchError) as info:
            read_checkpoint(tmp_path / "model.pt")
        assert "truncated or corrupt" in str(info.value) and "weights_only" not in str(info.value)


# ------------------------------------------------------------------ a truncated best.pt
def test_the_advice_for_a_truncated_best_pt_works_when_followed(small_scenes, tmp_path, capsys):
    from msrn_core.running import train as train_cli

    run = tmp_path / "run"
    command = CLI_SMALL + ["--data-root", str(small_scenes[0]), "--out", str(run)]
    assert train_cli.main(command) == 0
    best = run / "best.pt"
    best.write_bytes(best.read_bytes()[:1000])
    with pytest.raises(CheckpointMismatchError) as info:
        train_cli.main(command)  # the finished run reloads its best epoch
    message = str(info.value)
    assert "--fresh" in message and f"--evaluate {run / 'last.pt'}" in message
    # the first fix named: evaluate the last epoch's weights
    assert train_cli.main(CLI_SMALL + ["--data-root", str(small_scenes[0]), "--evaluate", str(run / "last.pt")]) == 0
    assert (run / "test_metrics.json").exists()
    # the second: delete it and train again with --fresh
    best.unlink()
    assert train_cli.main(command + ["--fresh"]) == 0
    read_checkpoint(best)
    capsys.readouterr()


# ------------------------------------------------------------------ labels.csv of your own photos
def photo_folder(tmp_path: Path, rows: str, photos=("a.jpg", "b.jpg", "c.jpg", "d.jpg"), encoding="utf-8") -> Path:
    from photo_fixtures import draw_photo

    folder = tmp_path / "photos"
    folder.mkdir()
    for i, name in enumerate(photos):
        draw_photo(folder / name, [], i)
    (folder / "labels.csv").write_bytes(rows.encode(encoding))
    return folder


@pytest.mark.parametrize("listed", ["../outside.jpg", "sub/../../outside.jpg", "{outside}"])
def test_labels_csv_cannot_reach_files_outside_its_folder(tmp_path, listed):
    from photo_fixtures import draw_photo

    from msrn_core.data.real.folder import load_folder

    draw_photo(tmp_path / "outside.jpg", [], 9)
    listed = listed.format(outside=tmp_path / "outside.jpg")
    folder = photo_folder(tmp_path, f"a.jpg,cat,train\nb.jpg,dog,val\n{listed},cat,test\n")
    with pytest.raises(ValueError, match="stay inside it.*copy the photo into the folder"):
        load_folder(folder)


def test_labels_csv_cannot_follow_a_link_out_of_its_folder(tmp_path):
    from photo_fixtures import draw_photo

    from msrn_core.data.real.folder import load_folder

    draw_photo(tmp_path / "outside.jpg", [], 9)
    folder = photo_folder(tmp_path, "a.jpg,cat,train\nb.jpg,dog,val\nlink.jpg,cat,test\n")
    (folder / "link.jpg").symlink_to(tmp_path / "outside.jpg")
    with pytest.raises(ValueError, match="outside .*copy the photo into the folder"):
        load_folder(folder)


def test_one_photo_spelled_two_ways_is_listed_once(tmp_path):
    """``./a.jpg`` in train and ``a.jpg`` in test would put one photo on both sides."""
    from msrn_core.data.real.folder import load_folder

    folder = photo_folder(tmp_path, "./a.jpg,cat,train\nb.jpg,dog,val\na.jpg,cat,test\nc.jpg,dog,test\n")
    with pytest.raises(ValueError, match=r"lists 'a.jpg' more than once \(as '\./a.jpg', 'a.jpg'"):
        load_folder(folder)
    (folder / "labels.csv").write_text("./a.jpg,cat,train\nb.jpg,dog,val\nc.jpg,cat,test\n")
    train, _, _ = load_folder(folder)
    assert train.image_ids == ["a.jpg"]


def test_class_names_are_compared_in_one_unicode_form_and_case_collisions_named(tmp_path):
    import unicodedata

    from msrn_core.data.real.folder import load_folder

    composed, decomposed = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    assert composed != decomposed
    folder = photo_folder(tmp_path, f"a.jpg,{composed},train\nb.jpg,{decomposed},val\nc.jpg,{composed},test\n")
    train, val, test = load_folder(folder)
    assert train.class_names == [composed] and val.labels.sum() == 1
    (folder / "labels.csv").write_text("a.jpg,Dog,train\nb.jpg,dog,val\nc.jpg,dog,test\n")
    with pytest.raises(ValueError, match=r"differing only in case: 'Dog' \(1 rows\) and 'dog' \(2 rows\)"):
        load_folder(folder)


def test_a_latin1_labels_csv_is_named_and_the_conversion_it_gives_works(tmp_path):
    import re
    import shutil
    import subprocess

    from msrn_core.data.real.folder import load_folder

    folder = photo_folder(tmp_path, "a.jpg,café,train\nb.jpg,thé,val\nc.jpg,café,test\n", encoding="latin-1")
    with pytest.raises(ValueError, match="is not UTF-8 text.*line 1") as info:
        load_folder(folder)
    command = re.search(r"`(iconv [^`]+)`", str(info.value)).group(1)
    if shutil.which("iconv") is None:
        pytest.skip("iconv is not installed here")
    subprocess.run(command, shell=True, check=True)
    assert load_folder(folder)[0].class_names == ["café", "thé"]


# ------------------------------------------------------------------ one run per run folder
def python_env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


FIRST_RUN = """
import sys, time
from pathlib import Path
from msrn_core.running import run_folder, train

ready, go = Path(sys.argv[1]), Path(sys.argv[2])
real_save = run_folder.save_checkpoint

def save_then_wait(path, *args, **kwargs):  # the run pauses after writing its first checkpoint
    real_save(path, *args, **kwargs)
    if not ready.exists():
        ready.write_text("saved")
        while not go.exists():
            time.sleep(0.1)

run_folder.save_checkpoint = save_then_wait  # where the training loop saves its epochs
sys.exit(train.cli(sys.argv[3:]))
"""


def test_a_second_run_on_a_folder_in_use_stops_at_once_naming_the_first(small_scenes, tmp_path):
    import socket
    import subprocess
    import time

    run = tmp_path / "run"
    command = CLI_SMALL + ["--data-root", str(small_scenes[0]), "--out", str(run)]
    script = tmp_path / "first.py"
    script.write_text(FIRST_RUN)
    ready, go = tmp_path / "ready", tmp_path / "go"
    first = subprocess.Popen([sys.executable, str(script), str(ready), str(go), *command], env=python_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not ready.exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        before = {name: (run / name).read_bytes() for name in ("best.pt", "last.pt") if (run / name).exists()}
        second = subprocess.run([sys.executable, "-m", "msrn_core.running.train", *command], env=python_env(),
                                capture_output=True, text=True, timeout=240)
        lines = second.stderr.strip().splitlines()
        assert second.returncode == 1 and len(lines) == 1, second.stderr
        assert lines[0].startswith(f"error: {run} is in use by another run: process {first.pid} on "
                                   f"{socket.gethostname()}, started 20")
        assert "pass another --out folder" in lines[0]
        assert second.stdout.strip() == ""  # refused before any data was prepared (nothing described or trained)
        assert {name: (run / name).read_bytes() for name in before} == before  # nothing of the first touched
    finally:
        go.write_text("go")
        out, err = first.communicate(timeout=240)
    assert first.returncode == 0, err
    read_checkpoint(run / "best.pt")
    read_checkpoint(run / "last.pt")
    from msrn_core.running.run_lock import run_folder_lock

    with run_folder_lock(run):  # the folder is free again once the first run ended
        pass


def test_a_lock_left_by_a_killed_run_is_cleared(tmp_path, capsys):
    import signal
    import subprocess

    from msrn_core.running.run_lock import LOCK_NAME, release_run_folder, run_folder_lock

    run = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from msrn_core.running.run_lock import acquire_run_folder; "
                               "acquire_run_folder(sys.argv[1]); print('held', flush=True); time.sleep(600)",
         str(run)], env=python_env(), stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    assert str(holder.pid) in (run / LOCK_NAME).read_text()
    holder.send_signal(signal.SIGKILL)  # a crash: nothing released the lock
    holder.wait()
    assert str(holder.pid) in (run / LOCK_NAME).read_text()
    with run_folder_lock(run):
        assert str(os.getpid()) in (run / LOCK_NAME).read_text()
    assert f"cleared a stale lock in {run}: process {holder.pid}" in capsys.readouterr().err
    assert (run / LOCK_NAME).read_text() == ""  # released
    release_run_folder(run)  # a release without a lock does nothing


# ------------------------------------------------------------------ corrupt caches
@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage", "rows", "nan"])
def test_a_corrupt_label_vector_cache_is_rebuilt_from_the_glove_file(tmp_path, monkeypatch, caplog, damage):
    import numpy as np

    from msrn_core.label_features import GloVeFeatures, LabelFeatureError, get_label_features

    monkeypatch.delenv("MSRN_GLOVE_PATH", raising=False)
    glove = tmp_path / "tiny.4d.txt"
    glove.write_text("car 1 2 3 4\ntraffic 0 1 0 1\nlight 1 0 1 0\n")
    options = dict(vectors_path=glove, dim=4, cache_dir=tmp_path / "cache", download=False)
    first, _ = get_label_features("glove", ["car", "traffic light"], **options)
    cache = GloVeFeatures(glove, dim=4, cache_dir=tmp_path / "cache").cache_path
    whole = cache.read_bytes()
    if damage == "truncated":
        cache.write_bytes(whole[: len(whole) // 2])
    elif damage == "empty":
        cache.write_bytes(b"")
    elif damage == "garbage":
        cache.write_bytes(b"\x00not a zip" * 50)
    else:
        vectors = np.ones((2, 4), np.float32) if damage == "rows" else np.full((3, 4), np.nan, np.float32)
        np.savez(cache.with_suffix(""), words=np.array(["car", "light", "traffic"]), vectors=vectors,
                 oov=np.array([], dtype=str))
    again, _ = get_label_features("glove", ["car", "traffic light"], **options)
    np.testing.assert_array_equal(again, first)
    assert "is corrupt" in caplog.text and "rebuilding it" in caplog.text
    glove.unlink()  # the rebuilt cache answers alone
    np.testing.assert_array_equal(get_label_features("glove", ["car", "traffic light"], **options)[0], first)
    cache.write_bytes(b"")  # without the GloVe file, a corrupt cache is refused with the fix
    with pytest.raises(LabelFeatureError, match="Fix: download"):
        get_label_features("glove", ["car"], **options)


@pytest.mark.parametrize("damage", ["image deleted", "image emptied", "annotations truncated", "record cut",
                                    "key missing"])
def test_a_damaged_scene_dataset_is_drawn_again_identically(tmp_path, damage):
    import json

    from msrn_core.data.dataset import DatasetNotFoundError
    from msrn_core.data.scenes import SceneConfig, generate_scenes, load_scene_splits, load_scenes

    config = SceneConfig.small(num_train=24, num_val=12, num_test=12)
    folder = generate_scenes(config, tmp_path, workers=1)
    files = {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}
    annotations = folder / "annotations.json"
    meta = json.loads(annotations.read_text())
    if damage == "image deleted":
        (folder / "images/val/00003.png").unlink()
    elif damage == "image emptied":
        (folder / "images/train/00000.png").write_bytes(b"")
    elif damage == "annotations truncated":
        annotations.write_bytes(files[annotations][:500])
    elif damage == "record cut":
        meta["splits"]["test"].pop()
        annotations.write_text(json.dumps(meta))
    else:
        del meta["splits"]["train"][5]["labels"]
        annotations.write_text(json.dumps(meta))
    with pytest.raises(DatasetNotFoundError, match="is corrupt .*generate_scenes.*force=True"):
        load_scenes(tmp_path, "train", config, generate=False)  # refused with the fix, when asked not to draw
    with pytest.warns(UserWarning, match="is corrupt .*generating it again"):
        train, val, test = load_scene_splits(tmp_path, config)
    assert {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()} == files
    assert (len(train), len(val), len(test)) == (24, 12, 12)


# ------------------------------------------------------------------ numeric options and one error line
@pytest.mark.parametrize("option, value, expected", [
    ("--lr", "nan", "argument --lr: must be a finite number in (0, inf)"),
    ("--lr", "-0.1", "argument --lr: must lie in (0, inf)"),
    ("--lr", "0", "argument --lr: must lie in (0, inf)"),
    ("--lr", "inf", "argument --lr: must be a finite number"),
    ("--backbone-lr-mult", "-1", "argument --backbone-lr-mult: must lie in [0, inf)"),
    ("--lambda", "nan", "argument --lambda: must be a finite number"),
    ("--val-fraction", "1", "argument --val-fraction: must lie in (0, 1)"),
    ("--test-fraction", "0", "argument --test-fraction: must lie in (0, 1)"),
    ("--t", "1.5", "argument --t: must lie in [0, 1]"),
    ("--p", "-inf", "argument --p: must be a finite number"),
    ("--dsdl-lambda", "0", "argument --dsdl-lambda: must lie in (0, inf)"),
    ("--dsdl-beta", "nan", "argument --dsdl-beta: must be a finite number"),
    ("--groups", "0", "argument --groups: must be at least 1"),
    ("--embed-dim", "-4", "argument --embed-dim: must be at least 1"),
    ("--seed", "-1", "argument --seed: must be at least 0"),
    ("--branches", "5", "--branches 5: a ResNet has stages 1 to 4"),
])
def test_numeric_train_options_are_checked_with_one_error_line(capsys, option, value, expected):
    from msrn_core.running import train as train_cli

    with pytest.raises(SystemExit) as info:
        train_cli.main([f"{option}={value}"])  # the form that takes a leading minus
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and err.count("\n") == 0 and err.startswith("error: ") and expected in err


@pytest.mark.parametrize("options, expected", [
    (["--download"], "error: --download is available for voc2007 only"),
    (["--glove-path", "x.txt", "--label-features", "onehot"], "error: --glove-path goes with --label-features glove"),
    (["--test-fraction", "0.3"], "error: --test-fraction goes with --dataset folder"),
])
def test_option_conflicts_are_one_error_line(tmp_path, options, expected):
    """Python prints a SystemExit's text as the process's whole stderr: it is the one line."""
    from msrn_core.running import train as train_cli

    with pytest.raises(SystemExit) as info:
        train_cli.main(options + ["--out", str(tmp_path / "run"), "--data-root", str(tmp_path)])
    assert str(info.value.code).startswith(expected) and "\n" not in str(info.value.code)


@pytest.mark.parametrize("module, argv", [("make_scenes", ["--seed", "x"]), ("run_notebooks", ["--no-such-option"]),
                                          ("reproduce", ["--no-such-option"]), ("train", ["--epochs", "two"])])
def test_every_command_lines_usage_error_is_one_error_line(capsys, module, argv):
    import importlib

    main = importlib.import_module(f"msrn_core.running.{module}").main
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and err.count("\n") == 0 and err.startswith("error: ") and "--help" in err
