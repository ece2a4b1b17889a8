"""Multi-process training (DDP on the CPU, Gloo backend) equals single-process training.

Why the comparison is exact in principle:

- the global batch is the same: 8 images per step in one process, 4 + 4 in two, and
  :class:`ShardedRandomSampler` deals out the permutation a single process draws, so every
  step sees the same 8 images; DDP averages the two local gradients, which is the gradient of
  the 8-image mean loss;
- the initial weights are the same (loaded from one file; DDP also broadcasts rank 0's);
- BatchNorm would normalise over 4 images per process instead of 8 (PyTorch has no CPU
  SyncBatchNorm), so the compared model uses GroupNorm, which has no batch statistics;
- the training images use the evaluation transform in the exact comparison; with random
  augmentation the runs agree too, because each image's crop and flip are drawn from a
  generator seeded by (seed, epoch, image index), whichever process loads it.

What is left is floating-point summation order, hence the small tolerances. Evaluation is
sharded over the processes (47 test images: 24 + 23, so the gather's padding is exercised)
and every image must come back exactly once, in order.
"""
import copy
import itertools
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from msrn_core.running import distributed
from msrn_core.data.dataset import build_transform
from msrn_core.running.experiment import make_model, setup_from_splits
from msrn_core.model import ModelConfig
from msrn_core.data.scenes import SceneConfig, load_scene_splits
from msrn_core.running.training import TrainConfig, evaluate, loss_terms, predict, train_model
from msrn_core.utils import seed_everything

TINY_MODEL = dict(backbone="resnet18", fc_hidden=32, embed_dim=32, gat_hidden=16)
WORLD_SIZE = 2
TEST_IMAGES = 47  # odd: the two shards differ in length
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def batchnorm_to_groupnorm(model: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d by GroupNorm (no batch statistics: per-process batches agree)."""
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                setattr(parent, name, nn.GroupNorm(8, child.num_features))
    return model


def first_images(dataset, count: int):
    part = copy.copy(dataset)
    part.image_paths, part.labels = dataset.image_paths[:count], dataset.labels[:count]
    return part


def build_run(root: str, augment: bool = False):
    """(setup, test split of 47 images, model) of the small built-in dataset (16 validation images)."""
    config = SceneConfig.small()
    eval_transform = build_transform(config.image_size, train=False)
    train_transform = build_transform(config.image_size, train=True) if augment else eval_transform
    train, val, test = load_scene_splits(root, config, train_transform=train_transform,
                                         eval_transform=eval_transform, generate=False)
    setup = setup_from_splits(train, first_images(val, 16), test, label_features="onehot")
    return setup, first_images(test, TEST_IMAGES), batchnorm_to_groupnorm(make_model(setup, ModelConfig(**TINY_MODEL)))


def train_config(epochs: int, progress: bool = False, steps: int = 3) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=8, lr=0.02, backbone_lr_mult=1.0, num_workers=0,
                       max_steps_per_epoch=steps, progress=progress, seed=0, device="cpu")


def model_from(setup, state) -> nn.Module:
    model = batchnorm_to_groupnorm(make_model(setup, ModelConfig(**TINY_MODEL)))
    model.load_state_dict(state)
    return model


def train_and_resume(setup, initial_state, run_dir: Path, progress: bool = False, steps: int = 3):
    """One epoch, then a fresh model resumes from last.pt to two epochs; returns (model, result)."""
    model = model_from(setup, initial_state)
    seed_everything(0)
    train_model(model, setup.train, setup.val, train_config(1, progress, steps), run_dir)
    resumed = model_from(setup, initial_state)  # its weights are replaced by last.pt's
    return resumed, train_model(resumed, setup.train, setup.val, train_config(2, progress, steps), run_dir)


def process_main(rank: int, world_size: int, port: int, root: str, out: str) -> None:
    """One of the processes: train (with a resume), predict and evaluate, rank 0 saves the outcome."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    out = Path(out)
    distributed.init_from_environment(torch.device("cpu"))
    try:
        seed_everything(0)
        setup, test, _ = build_run(root)
        initial_state = torch.load(out / "initial.pt")
        model, result = train_and_resume(setup, initial_state, out / "exact", progress=True)
        logits, targets, indices, _ = predict(model, test, batch_size=5, device="cpu")
        metrics = evaluate(model, test, batch_size=5, device="cpu", json_path=out / "test_metrics.json")

        # with random augmentation: a resumed run continues each process's random stream exactly
        augmented, _, _ = build_run(root, augment=True)
        straight = model_from(augmented, initial_state)
        seed_everything(0)
        train_model(straight, augmented.train, augmented.val, train_config(2, steps=2), out / "augmented-straight")
        resumed, _ = train_and_resume(augmented, initial_state, out / "augmented-resumed", steps=2)
        if rank == 0:
            torch.save({"state": model.state_dict(), "history": result.history, "logits": logits,
                        "targets": targets, "indices": indices, "metrics": metrics,
                        "straight": straight.state_dict(), "resumed": resumed.state_dict()}, out / "outcome.pt")
    finally:
        distributed.shutdown()


def run_processes(function, args, world_size: int, timeout: float = 240.0) -> None:
    """``mp.spawn`` with a deadline: a hung collective fails the test instead of blocking CI."""
    os.environ["OMP_NUM_THREADS"] = "1"
    context = mp.start_processes(function, args=args, nprocs=world_size, join=False, start_method="spawn")
    deadline = time.monotonic() + timeout
    while not context.join(timeout=1.0):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the {world_size} processes did not finish within {timeout:.0f} s")


def drop_seconds(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def test_two_processes_train_resume_and_evaluate_like_one(small_scenes, tmp_path, capfd):
    root = str(small_scenes[0])
    seed_everything(0)
    setup, test, model = build_run(root)
    torch.save(model.state_dict(), tmp_path / "initial.pt")
    run_processes(process_main, (WORLD_SIZE, free_port(), root, str(tmp_path)), WORLD_SIZE)
    printed = capfd.readouterr().out
    outcome = torch.load(tmp_path / "outcome.pt", weights_only=False)

    train_model(model, setup.train, setup.val, train_config(2), tmp_path / "single")
    logits, targets, indices, _ = predict(model, test, batch_size=5, device="cpu")
    metrics = evaluate(model, test, batch_size=5, device="cpu")

    # the same global batches give the same weights, validation mAP and losses
    for name, value in model.state_dict().items():
        torch.testing.assert_close(outcome["state"][name], value, rtol=1e-4, atol=1e-5, msg=name)
    for single, multi in zip(drop_seconds(json.loads((tmp_path / "single" / "history.json").read_text())),
                             drop_seconds(outcome["history"])):
        assert multi == pytest.approx(single, rel=1e-4, abs=1e-5)
    # sharded evaluation: every image exactly once, in order, and the same metrics
    np.testing.assert_array_equal(outcome["indices"], np.arange(TEST_IMAGES))
    np.testing.assert_array_equal(outcome["targets"], test.labels.astype(np.float32))
    # the sharded predictions equal one process's predictions with the same (the 2-process) weights up
    # to float32 summation order (shards end with batches of other sizes);
    # against the 1-process weights, which agree to rtol 1e-4 above, they agree to what that allows
    reference = model_from(setup, outcome["state"])
    same_weights, _, _, _ = predict(reference, test, batch_size=5, device="cpu")
    np.testing.assert_allclose(outcome["logits"], same_weights, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outcome["logits"], logits, rtol=1e-3, atol=1e-5)
    assert outcome["metrics"]["num_images"] == metrics["num_images"] == TEST_IMAGES
    for key in ("mAP", "CP", "CR", "CF1", "OP", "OR", "OF1", "CF1-3", "OF1-3"):
        assert outcome["metrics"][key] == pytest.approx(metrics[key], abs=1e-6), key
    assert json.loads((tmp_path / "test_metrics.json").read_text())["mAP"] == pytest.approx(metrics["mAP"])
    # with augmentation, resuming in two processes continues exactly
    for name, value in outcome["straight"].items():
        torch.testing.assert_close(outcome["resumed"][name], value, rtol=0, atol=0, msg=name)
    # with augmentation, two processes train the weights of one
    augmented, _, _ = build_run(root, augment=True)
    single = model_from(augmented, torch.load(tmp_path / "initial.pt"))
    seed_everything(0)
    train_model(single, augmented.train, augmented.val, train_config(2, steps=2), tmp_path / "augmented-single")
    for name, value in single.state_dict().items():
        torch.testing.assert_close(outcome["straight"][name], value, rtol=1e-4, atol=1e-5, msg=name)
    # rank 0 alone prints (two resumed runs, two processes)
    assert printed.count("resuming from") == 2
    assert printed.count("epoch 2/2: loss") == 1


def test_command_line_runs_under_torchrun(small_scenes, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(WORLD_SIZE),
               "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
               "-m", "msrn_core.running.train", "--small", "--data-root", str(small_scenes[0]), "--out", str(out),
               "--label-features", "onehot", "--workers", "0", "--device", "cpu",
               "--embed-dim", "32", "--fc-hidden", "32"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    finished = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert finished.returncode == 0, finished.stderr[-3000:]
    metrics = json.loads((out / "test_metrics.json").read_text())
    assert metrics["num_images"] == 48  # every test image once, over two shards
    assert finished.stdout.count("best validation mAP") == 1  # printed by rank 0 only
    assert finished.stdout.count("test metrics written to") == 1
    # rank 0 alone writes the run's files and holds the folder's lock (left empty once released)
    assert sorted(p.name for p in out.iterdir()) == [".run.lock", "best.pt", "history.json", "last.pt",
                                                     "test_metrics.json"]
    assert (out / ".run.lock").read_text() == ""
    assert len(torch.load(out / "last.pt", weights_only=False)["rng_by_rank"]) == WORLD_SIZE


def test_sharded_sampler_deals_out_the_single_process_batches():
    num_items, batch, world = 11, 4, 2
    single = list(torch.utils.data.RandomSampler(range(num_items), generator=torch.Generator().manual_seed(3)))
    generators = [torch.Generator().manual_seed(3) for _ in range(world)]
    shards = [list(distributed.ShardedRandomSampler(num_items, rank, world, generators[rank]))
              for rank in range(world)]
    assert [len(shard) for shard in shards] == [6, 6]
    padded = single + single[:1]  # 11 items padded to 12 by repeating the first
    local = batch // world
    for step in range(len(padded) // batch):
        together = sorted(i for shard in shards for i in shard[step * local:(step + 1) * local])
        assert together == sorted(padded[step * batch:(step + 1) * batch])
    with pytest.raises(ValueError, match="rank 2"):
        distributed.ShardedRandomSampler(num_items, 2, world, generators[0])


@pytest.mark.parametrize("finished", [True, False])
def test_sharded_sampler_advances_the_generator_as_one_process_does(finished):
    """A finished epoch draws twice (RandomSampler's last, empty draw); one cut short draws once."""
    num_items, world = 11, 2
    reference = torch.Generator().manual_seed(5)
    list(itertools.islice(torch.utils.data.RandomSampler(range(num_items), generator=reference),
                          None if finished else 5))
    for rank in range(world):
        generator = torch.Generator().manual_seed(5)
        sampler = distributed.ShardedRandomSampler(num_items, rank, world, generator)
        list(itertools.islice(sampler, None if finished else 3))
        assert torch.equal(generator.get_state(), reference.get_state())
    once = torch.Generator().manual_seed(5)
    torch.randperm(num_items, generator=once)
    assert torch.equal(once.get_state(), reference.get_state()) != finished


def test_batch_size_is_global_and_must_split_over_processes():
    assert distributed.per_process_batch_size(8, 2) == 4
    assert distributed.per_process_batch_size(8, 1) == 8
    with pytest.raises(ValueError, match="multiple of 3"):
        distributed.per_process_batch_size(8, 3)


def test_probe_finds_the_backbone_stages_above_the_last_branch(small_scenes):
    _, _, train, val, test = small_scenes
    setup = setup_from_splits(train, val, test, label_features="onehot")
    example = torch.zeros(2, 3, 64, 64)
    targets = torch.zeros(2, len(setup.class_names))
    for stages, expect_unused in (((2, 3, 4), False), ((2, 3), True)):
        model = make_model(setup, ModelConfig(**TINY_MODEL, branch_stages=stages)).train()
        before = {k: v.clone() for k, v in model.state_dict().items()}
        unused = distributed.parameters_without_gradient(
            model, lambda output, m=model: loss_terms(output, targets, 1e-3, m)[0], example)
        if expect_unused:
            assert unused and all(name.startswith("trunk.stages.3.") for name in unused)
            assert len(unused) == len(list(model.trunk.stages[3].parameters()))
        else:
            assert unused == []
        # the probe leaves no trace: training mode, BatchNorm statistics and gradients untouched
        assert model.training and all(p.grad is None for p in model.parameters())
        for key, value in model.state_dict().items():
            torch.testing.assert_close(value, before[key], rtol=0, atol=0)


def test_sync_batchnorm_conversion_is_undone_exactly(small_scenes):
    _, _, train, val, test = small_scenes
    setup = setup_from_splits(train, val, test, label_features="onehot")
    model = make_model(setup, ModelConfig(**TINY_MODEL)).eval()
    images = torch.stack([test[i][0] for i in range(2)])
    with torch.no_grad():
        expected = model(images).logits
    parameters = [id(p) for p in model.parameters()]
    norms = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    distributed.use_sync_batchnorm(model)
    assert sum(isinstance(m, nn.SyncBatchNorm) for m in model.modules()) == norms
    assert [id(p) for p in model.parameters()] == parameters  # the optimiser's tensors stay valid
    distributed.use_plain_batchnorm(model)
    assert sum(type(m) is nn.BatchNorm2d for m in model.modules()) == norms
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in model.modules())
    with torch.no_grad():
        torch.testing.assert_close(model(images).logits, expected, rtol=0, atol=0)


def test_single_process_context_needs_no_process_group():
    context = distributed.context()
    assert (context.rank, context.world_size, context.enabled, context.is_main) == (0, 1, False, True)
    assert distributed.sum_over_processes(2.5) == 2.5 and distributed.any_process(False) is False
    rows = torch.arange(6).reshape(3, 2)
    assert distributed.gather_rows(rows) is rows
