"""The precision a CUDA run picks, on faked devices: bf16 only where the GPU computes it natively."""
from __future__ import annotations

import pytest
import torch

from msrn_core.running import recipes, training

CUDA = torch.device("cuda")


@pytest.fixture
def fake_gpu(monkeypatch):
    """A CUDA device of the given compute capability that says it supports bf16 (as a T4 does, through
    emulation); returns a function that sets the capability."""
    capability = {"value": (8, 0)}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability["value"])

    def set_capability(major: int, minor: int) -> None:
        capability["value"] = (major, minor)

    return set_capability


def test_a_t4_trains_in_fp16_with_an_enabled_gradient_scaler(fake_gpu):
    fake_gpu(7, 5)  # Tesla T4, the free Colab GPU
    dtype = training.autocast_dtype(CUDA, "auto")
    assert dtype == torch.float16
    assert training.gradient_scaler(dtype).is_enabled()
    assert training.autocast_dtype(CUDA, "bf16") == torch.float16  # never emulated, as on the CPU
    fake_gpu(7, 0)  # V100
    assert training.autocast_dtype(CUDA, "auto") == torch.float16


@pytest.mark.parametrize("capability", [(8, 0), (8, 6), (9, 0)])
def test_ampere_and_later_train_in_bf16_without_a_scaler(fake_gpu, capability):
    fake_gpu(*capability)
    dtype = training.autocast_dtype(CUDA, "auto")
    assert dtype == torch.bfloat16
    assert not training.gradient_scaler(dtype).is_enabled()


def test_explicit_choices_are_kept(fake_gpu):
    fake_gpu(9, 0)
    assert training.autocast_dtype(CUDA, "fp16") == torch.float16
    assert training.autocast_dtype(CUDA, "off") is None
    assert training.gradient_scaler(training.autocast_dtype(CUDA, "fp16")).is_enabled()


def test_gpu_recipes_use_channels_last_and_cudnn_benchmark():
    for recipe in (recipes.GPU, recipes.PAPER, recipes.AUTHORS_VOC):
        config = recipe.train_config()
        assert config.channels_last and config.cudnn_benchmark
    assert recipes.GPU.amp == "auto" and recipes.AUTHORS_VOC.amp == "fp16"
