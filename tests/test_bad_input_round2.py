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


def test_a_crafted_file_in_the_weights_cache_never_runs(tmp_path, monkeypatch):
    from msrn_core.model import PretrainedWeightsError, load_resnet

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = cached_weights_path(tmp_path / "torch")
    cached.parent.mkdir(parents=True)
    marker = tmp_path / "code-ran"
    torch.save({"conv1.weight": WritesAFile(marker)}, cached)
    with pytest.raises(PretrainedWeightsError) as info:
        load_resnet("resnet18", pretrained=True)
    assert not marker.exists()
    assert str(cached) in str(info.value) and f"rm {cached}" in str(info.value)


def test_a_crafted_file_with_the_right_hash_is_still_read_as_data(tmp_path, monkeypatch):
    """The hash is checked first; the weights-only load is the second wall (a hash collision)."""
    from msrn_core import model as model_module

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = cached_weights_path(tmp_path / "torch")
    cached.parent.mkdir(parents=True)
    marker = tmp_path / "code-ran"
    torch.save({"conv1.weight": WritesAFile(marker)}, cached)
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
