"""Multi-GPU training with DistributedDataParallel (DDP), launched by ``torchrun``.

``torchrun --nproc_per_node=N -m msrn_core.running.train ...`` starts N processes; each one finds
``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` in its environment, and :func:`init_from_environment`
joins them into a process group (NCCL on CUDA, one GPU per process; Gloo on the CPU). Without
those variables nothing changes: a plain ``python -m msrn_core.running.train`` run never touches this
module's collectives.

What a distributed run does differently (:func:`msrn_core.running.training.train_model`):

- **Batch size is global**: ``TrainConfig.batch_size`` (CLI ``--batch-size``) is the number
  of images per optimiser step summed over all processes; each process loads
  ``batch_size / N`` of them (:func:`per_process_batch_size`). The paper's batch 8 stays batch
  8 on any number of GPUs, so its learning rate stays right.
- **Same global batches**: :class:`ShardedRandomSampler` draws the permutation a single
  process would draw from the run's generator and deals it out round-robin, so step k of an
  N-process run sees exactly the images of step k of a 1-process run. DDP averages the
  gradients of equal-sized local batches, which is the gradient of the global batch mean.
- **Extra outputs and unused parameters**: the model's output (logits and the compactness
  term of eq. 6) goes through DDP as it is; the compactness term does not depend on the
  images, so every process computes the same one and averaging its gradient changes nothing.
  Parameters the loss never reaches (backbone stages above the last branch, ``--branches 2
  3``) are found by a probe (:func:`parameters_without_gradient`), and only then is DDP asked
  to look for unused parameters, which costs time every step.
- **BatchNorm**: on CUDA the model's BatchNorm layers become ``SyncBatchNorm`` during training
  (statistics over the global batch, as on one GPU); PyTorch has no CPU ``SyncBatchNorm``, so
  on the CPU each process normalises over its own share of the batch.
- **Evaluation** is sharded: each process predicts every N-th image and the predictions are
  gathered (:func:`gather_rows`), padding removed and sorted by image index, so every image
  is counted exactly once and the metrics equal a single-process evaluation.
- A step whose batch is empty on some process (unreadable images) is skipped by all.
- **Rank 0 only** prints, draws progress bars and writes checkpoints and JSON files; the other
  processes wait at a barrier, so a checkpoint is complete before anyone reads it.
- **Augmentation**: each image's random crop and flip come from a generator seeded by (seed,
  epoch, image index) (:class:`~msrn_core.data.SeededAugmentation`), so whichever process
  loads an image augments it as a single process would: the global batch of step k is the
  same tensor in a 1-process and an N-process run. What still differs on the CPU is BatchNorm
  (statistics over each process's share, see above) and the order of floating-point sums.
- **Random streams**: the other random streams (Python, NumPy, PyTorch) are offset by the
  rank; ``last.pt`` keeps every process's random state, so resuming with the same number of
  processes continues exactly.

The run folder must be visible to every process (one machine, or a shared file system).
"""
from __future__ import annotations

import itertools
import math
import os
import random
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import RandomSampler, Sampler

# Seeds of process r are offset by r times this (a prime, so streams of nearby seeds do not meet).
RANK_SEED_STRIDE = 1_000_003
TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


class DistributedSetupError(RuntimeError):
    """The environment does not describe a multi-process run this machine can start."""


@dataclass(frozen=True)
class ProcessContext:
    """Where this process stands in a run: its rank, the number of processes, its local GPU."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """True when several processes train together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True for the process that logs and writes files (rank 0)."""
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True when the environment describes a run of more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def group_initialised() -> bool:
    """True when this process has joined a process group."""
    return dist.is_available() and dist.is_initialized()


def context() -> ProcessContext:
    """This process's :class:`ProcessContext` (a single process when no group is initialised)."""
    if not group_initialised():
        return ProcessContext()
    rank = dist.get_rank()
    return ProcessContext(rank, dist.get_world_size(), int(os.environ.get("LOCAL_RANK", rank)))


def init_from_environment(device: torch.device) -> ProcessContext:
    """Join the process group that ``torchrun`` describes; a no-op for a single process.

    ``device`` is where training will run: CUDA selects the NCCL backend and this process's
    GPU (``LOCAL_RANK``), anything else the Gloo backend.
    """
    if not launched_by_torchrun() or group_initialised():
        return context()
    missing = [name for name in TORCHRUN_VARIABLES if name not in os.environ]
    if missing:
        raise DistributedSetupError(
            f"WORLD_SIZE is {os.environ['WORLD_SIZE']} but {', '.join(missing)} are not set: start "
            "multi-process runs with torchrun (torchrun --nproc_per_node=N -m msrn_core.running.train ...)"
        )
    local_rank = int(os.environ["LOCAL_RANK"])
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise DistributedSetupError(
                f"process {local_rank} of this machine has no GPU: {torch.cuda.device_count()} are "
                "visible. Pass --nproc_per_node at most the number of GPUs."
            )
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return context()


def shutdown() -> None:
    """Leave the process group (at the end of a distributed run)."""
    if group_initialised():
        dist.destroy_process_group()


@contextmanager
def process_group(device: torch.device):
    """Join the torchrun process group for the block (if there is one) and leave it afterwards.

    A group that was already initialised (by the caller) is used and left alone.
    """
    joined = launched_by_torchrun() and not group_initialised()
    processes = init_from_environment(device)
    try:
        yield processes
    except BaseException:
        # leave without the collective goodbye: the other processes may never reach it, and the
        # closed connection is what tells them to stop (msrn_core.cli makes them exit quietly)
        raise
    else:
        if joined:
            shutdown()


@contextmanager
def quiet_unless_main():
    """Silence standard output on every process but rank 0 (warnings and errors still show)."""
    if context().is_main:
        yield
        return
    with open(os.devnull, "w") as sink, redirect_stdout(sink):
        yield


def process_device(device: torch.device) -> torch.device:
    """This process's GPU in a multi-GPU run (``LOCAL_RANK``), else ``device`` unchanged."""
    if context().enabled and device.type == "cuda":
        return torch.device("cuda", torch.cuda.current_device())
    return device


def per_process_batch_size(global_batch_size: int, world_size: int) -> int:
    """Images each process loads per step; the global batch must split evenly."""
    if global_batch_size % world_size:
        raise ValueError(
            f"the batch size {global_batch_size} does not split over {world_size} processes: it is the "
            f"global batch (summed over processes), so pass a multiple of {world_size} (--batch-size)"
        )
    return global_batch_size // world_size


def barrier() -> None:
    """Wait for every process (a no-op for a single process)."""
    if context().enabled:
        dist.barrier()


@contextmanager
def main_process_first():
    """Run the block on rank 0 first (e.g. generating or downloading a dataset), then on the rest."""
    ctx = context()
    if ctx.enabled and not ctx.is_main:
        dist.barrier()
    yield
    if ctx.enabled and ctx.is_main:
        dist.barrier()


def _collective_device() -> torch.device:
    """NCCL moves CUDA tensors only; Gloo CPU tensors."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def sum_over_processes(value: float) -> float:
    """``value`` summed over all processes (``value`` itself for a single process)."""
    if not context().enabled:
        return value
    total = torch.tensor(float(value), dtype=torch.float64, device=_collective_device())
    dist.all_reduce(total)
    return float(total.item())


def mean_over_processes(value: float) -> float:
    """The mean of ``value`` over all processes."""
    return sum_over_processes(value) / context().world_size


def any_process(flag: bool) -> bool:
    """True on every process when ``flag`` is true on at least one."""
    return sum_over_processes(float(flag)) > 0


def gather_rows(local: torch.Tensor) -> torch.Tensor:
    """Concatenate every process's ``local`` rows in rank order (shards may differ in length).

    ``all_gather`` needs equal shapes, so each shard is padded to the longest one and the
    padding is cut off again after gathering: no row is lost or counted twice.
    """
    ctx = context()
    if not ctx.enabled:
        return local
    device = _collective_device()
    count = torch.tensor([local.shape[0]], device=device)
    counts = [torch.zeros_like(count) for _ in range(ctx.world_size)]
    dist.all_gather(counts, count)
    counts = [int(c.item()) for c in counts]
    padded = local.new_zeros((max(counts), *local.shape[1:])).to(device)
    padded[: local.shape[0]] = local.to(device)
    shards = [torch.empty_like(padded) for _ in range(ctx.world_size)]
    dist.all_gather(shards, padded)
    return torch.cat([shard[:n] for shard, n in zip(shards, counts)]).to(local.device)


def gather_objects(value) -> list:
    """Every process's ``value`` (picklable), in rank order."""
    ctx = context()
    if not ctx.enabled:
        return [value]
    values = [None] * ctx.world_size
    dist.all_gather_object(values, value)
    return values


class ShardedRandomSampler(Sampler[int]):
    """This process's share of the permutation :class:`RandomSampler` draws from ``generator``.

    Every process holds a generator in the same state and draws the same permutation, with the
    same calls at the same moments as a single-process run (so the generator in ``last.pt``
    means the same), pads it by repeating its start to a multiple of ``world_size``, and keeps
    positions ``rank, rank + world_size, ...``. With local batches of ``B / world_size``
    images, local batch k of all processes together holds exactly the images of global batch
    k of a single-process run with batch ``B``. The generator advances every epoch, so there
    is no ``set_epoch`` to call (unlike :class:`~torch.utils.data.DistributedSampler`, whose
    permutations would differ from a single-process run's).
    """

    def __init__(self, num_items: int, rank: int, world_size: int, generator: torch.Generator):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside 0..{world_size - 1}")
        self.num_items, self.rank, self.world_size, self.generator = num_items, rank, world_size, generator
        self.num_samples = math.ceil(num_items / world_size)

    def __iter__(self) -> Iterator[int]:
        draws = iter(RandomSampler(range(self.num_items), generator=self.generator))
        order = list(itertools.islice(draws, self.num_items))
        order += order[: self.num_samples * self.world_size - self.num_items]
        yield from order[self.rank::self.world_size]
        # RandomSampler draws once more when it is exhausted; so does a finished epoch here
        # (an epoch cut short by max_steps_per_epoch draws neither here nor there)
        for _ in draws:
            pass

    def __len__(self) -> int:
        return self.num_samples


def shard_indices(num_items: int) -> range:
    """The items this process evaluates: every ``world_size``-th, from its rank (no padding)."""
    ctx = context()
    return range(ctx.rank, num_items, ctx.world_size)


def offset_random_streams(rank: int) -> None:
    """Reseed Python, NumPy and PyTorch with the current seed offset by ``rank`` (no-op for rank 0)."""
    if rank:
        seed = (torch.initial_seed() + RANK_SEED_STRIDE * rank) % 2**63
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)


def seed_worker_for_rank(worker_id: int, rank: int) -> None:
    """``worker_init_fn`` of the training loader: workers of different processes augment differently.

    Loader workers are seeded from the shared sampling generator, identical on every process;
    offsetting by the rank gives each process its own augmentation stream.
    """
    offset_random_streams(rank)


def parameters_without_gradient(model: nn.Module, loss_of_output: Callable, example: torch.Tensor) -> list[str]:
    """Names of trainable parameters that ``loss_of_output(model(example))`` does not reach.

    DDP must be told about such parameters (``find_unused_parameters``), e.g. the stages of the
    backbone above the last branch (``--branches 2 3``). The probe runs in eval mode and leaves
    no trace: no BatchNorm statistics are updated and no ``.grad`` is written.
    """
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    was_training = model.training
    model.eval()
    try:
        loss = loss_of_output(model(example))
        grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
    finally:
        model.train(was_training)
    return [name for (name, _), grad in zip(named, grads) if grad is None]


def wrap_model(model: nn.Module, device: torch.device, find_unused_parameters: bool,
               sync_batchnorm: bool = True) -> nn.Module:
    """``model`` in DistributedDataParallel (``model`` itself for a single process).

    On CUDA, with ``sync_batchnorm``, BatchNorm layers become SyncBatchNorm for the run
    (:func:`unwrap_model` turns them back).
    """
    if not context().enabled:
        return model
    if sync_batchnorm and device.type == "cuda":
        use_sync_batchnorm(model)
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids,
                                               find_unused_parameters=find_unused_parameters)


def unwrap_model(network: nn.Module) -> nn.Module:
    """The model inside a DDP wrapper, its SyncBatchNorm layers turned back into BatchNorm2d."""
    model = getattr(network, "module", network)
    if network is not model:
        use_plain_batchnorm(model)
    return model


def use_sync_batchnorm(model: nn.Module) -> nn.Module:
    """Turn every BatchNorm2d of ``model`` into SyncBatchNorm, in place, sharing parameters and buffers."""
    return _swap_norm_layers(model, nn.BatchNorm2d, nn.SyncBatchNorm)


def use_plain_batchnorm(model: nn.Module) -> nn.Module:
    """Undo :func:`use_sync_batchnorm` (only BatchNorm2d is ever converted, so this is exact)."""
    return _swap_norm_layers(model, nn.SyncBatchNorm, nn.BatchNorm2d)


def _swap_norm_layers(model: nn.Module, old_type: type, new_type: type) -> nn.Module:
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            if type(child) is old_type:
                replacement = new_type(child.num_features, child.eps, child.momentum, child.affine,
                                       child.track_running_stats)
                if child.affine:
                    replacement.weight, replacement.bias = child.weight, child.bias
                replacement.running_mean, replacement.running_var = child.running_mean, child.running_var
                replacement.num_batches_tracked = child.num_batches_tracked
                replacement.train(child.training)
                setattr(parent, name, replacement)
    return model
