"""Training and inference throughput of MSRN and the plain baseline on synthetic batches.

Prints images per second (forward+backward+SGD step, and forward only) and the peak GPU
memory, for each model side by side in one run, so the ratios are comparable. The GPU recipe's
switches are all here: autocast (bf16/fp16, with a gradient scaler for fp16), channels_last,
cudnn.benchmark, a DataLoader with pinned memory and workers, and optional torch.compile.

    python benchmarks/throughput.py --device cuda --amp bf16 --channels-last          # 448 px, batch 8
    python benchmarks/throughput.py --device cuda --amp bf16 --channels-last --compile
    python benchmarks/throughput.py --device cuda --amp bf16 --workers 8               # through a DataLoader
    python benchmarks/throughput.py --device cuda --quick                              # a one-minute check
    python benchmarks/throughput.py --device cpu --backbone resnet18 --image-size 128 --batch-size 16
    python benchmarks/throughput.py --device cpu --backbone resnet18 --image-size 128 --batch-size 32 \
        --amp bf16 --channels-last --output-stride 16                                   # the CPU recipe's models
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from msrn_core.model import HEAD_KINDS, MODEL_KINDS, OUTPUT_STRIDES, SGA_FORMS, ModelConfig, build_model, count_parameters
from msrn_core.objective import loss_weights, model_objective
from msrn_core.running.training import AMP_MODES, TrainConfig, autocast, autocast_dtype, make_sgd
from msrn_core.training_step import training_step

TRAINING = TrainConfig()  # the training loop's loss weight, clipping, momentum and weight decay


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def synthetic_graph(n: int, feature_dim: int = 300, seed: int = 0):
    """Random L2-normalised label features (n x feature_dim) and an adjacency with self loops."""
    generator = torch.Generator().manual_seed(seed)
    features = F.normalize(torch.randn(n, feature_dim, generator=generator), dim=1)
    adjacency = 0.2 * (torch.rand(n, n, generator=generator) > 0.7).float() + torch.eye(n)
    return features, adjacency


def train_step(model, optimizer, images, targets, dtype=None, scaler=None) -> torch.Tensor:
    """One optimiser step as the training loop takes it: loss, backward, clipping, SGD.

    ``scaler``: a ``torch.amp.GradScaler`` (enabled for fp16 only; a disabled one passes through).
    """
    loss = model_objective(model, loss_weights(model, TRAINING.compactness_weight, TRAINING.group_link_weight))
    return training_step(model, images, targets, loss, optimizer, scaler, TRAINING.clip_grad_norm, dtype).loss.detach()


class RandomImages(Dataset):
    """uint8 images made on the fly (as a decoder would), normalised to float in the worker."""

    def __init__(self, length: int, image_size: int, num_classes: int):
        self.length, self.image_size, self.num_classes = length, image_size, num_classes

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        generator = torch.Generator().manual_seed(index)
        image = torch.randint(0, 256, (3, self.image_size, self.image_size), dtype=torch.uint8, generator=generator)
        target = (torch.rand(self.num_classes, generator=generator) > 0.8).float()
        return (image.float() / 255 - 0.45) / 0.225, target


def batches(args, device, memory_format, steps: int):
    """``steps`` (images, targets) batches on ``device``: one resident batch, or a DataLoader."""
    if args.workers == 0:
        images = torch.randn(args.batch_size, 3, args.image_size, args.image_size, device=device)
        targets = (torch.rand(args.batch_size, args.classes, device=device) > 0.8).float()
        images = images.contiguous(memory_format=memory_format)
        for _ in range(steps):
            yield images, targets
        return
    loader = DataLoader(RandomImages(steps * args.batch_size, args.image_size, args.classes),
                        batch_size=args.batch_size, num_workers=args.workers,
                        pin_memory=device.type == "cuda", persistent_workers=False, prefetch_factor=4)
    for images, targets in loader:
        yield (images.to(device, non_blocking=True).contiguous(memory_format=memory_format),
               targets.to(device, non_blocking=True))


def measure(model, args, device, dtype, memory_format, train: bool) -> float:
    """Images per second over ``args.steps`` timed iterations after ``args.warmup`` untimed ones."""
    optimizer = make_sgd(model.parameters(), lr=1e-3, momentum=TRAINING.momentum,
                         weight_decay=TRAINING.weight_decay) if train else None
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16) if train else None
    model.train(train)
    started = None
    for step, (images, targets) in enumerate(batches(args, device, memory_format, args.warmup + args.steps)):
        if step == args.warmup:
            synchronize(device)
            started = time.perf_counter()
        if train:
            train_step(model, optimizer, images, targets, dtype, scaler)
        else:
            with torch.inference_mode(), autocast(device, dtype):
                model(images)
    synchronize(device)
    return args.steps * args.batch_size / (time.perf_counter() - started)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--backbone", default="resnet101")
    parser.add_argument("--image-size", type=int, default=448)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--head", default="paper", choices=HEAD_KINDS, help="MSRN's classifier")
    parser.add_argument("--sga", default="lean", choices=list(SGA_FORMS), help="MSRN's SGA implementation")
    parser.add_argument("--amp", default="auto", choices=AMP_MODES,
                        help="autocast on CUDA (auto: bf16 where supported, else fp16 with a gradient scaler)")
    parser.add_argument("--channels-last", action="store_true", help="NHWC images and weights")
    parser.add_argument("--output-stride", type=int, default=32, choices=OUTPUT_STRIDES,
                        help="16: layer4 keeps layer3's resolution (the CPU recipe)")
    parser.add_argument("--no-cudnn-benchmark", action="store_true", help="leave cudnn.benchmark off")
    parser.add_argument("--compile", action="store_true", help="wrap each model in torch.compile")
    parser.add_argument("--workers", type=int, default=0,
                        help="0: one resident synthetic batch; N: a DataLoader with N workers and pinned memory")
    parser.add_argument("--models", nargs="+", default=["msrn", "plain"], choices=MODEL_KINDS)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="3 timed steps after 2 warm-up steps")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.steps, args.warmup = 3, 2
    if args.compile:
        args.warmup = max(args.warmup, 3)  # compilation happens in the first steps
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark
    dtype = autocast_dtype(device, args.amp)
    torch.manual_seed(0)
    features, adjacency = synthetic_graph(args.classes)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{name}, PyTorch {torch.__version__}; {args.backbone} at {args.image_size} px, batch {args.batch_size}, "
          f"n = {args.classes}, autocast {dtype}, channels_last {args.channels_last}, "
          f"cudnn.benchmark {device.type == 'cuda' and not args.no_cudnn_benchmark}, compile {args.compile}, "
          f"workers {args.workers}, MSRN head {args.head}, SGA {args.sga}, output stride {args.output_stride}; "
          f"{args.steps} timed steps after {args.warmup} warm-up steps")
    print(f"{'model':8s} {'params (M)':>10s} {'train img/s':>12s} {'infer img/s':>12s} {'peak GiB':>9s}")
    rates = {}
    for kind in args.models:
        model = build_model(ModelConfig(kind=kind, backbone=args.backbone, head=args.head, sga=args.sga,
                                        output_stride=args.output_stride),
                            features, adjacency)
        model = model.to(device, memory_format=memory_format)
        parameters = count_parameters(model)
        runnable = torch.compile(model) if args.compile else model
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        train_rate = measure(runnable, args, device, dtype, memory_format, train=True)
        infer_rate = measure(runnable, args, device, dtype, memory_format, train=False)
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
        rates[kind] = (train_rate, infer_rate)
        print(f"{kind:8s} {parameters / 1e6:10.1f} {train_rate:12.1f} {infer_rate:12.1f} {peak:9.2f}", flush=True)
        del model, runnable
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if "msrn" in rates and "plain" in rates:
        print(f"step time, MSRN over plain: training {rates['plain'][0] / rates['msrn'][0]:.2f}, "
              f"inference {rates['plain'][1] / rates['msrn'][1]:.2f}")


if __name__ == "__main__":
    main()
