"""Training and inference throughput of MSRN and the plain baseline on synthetic batches.

Prints images per second (forward+backward+SGD step, and forward only) and the peak GPU
memory, for each model side by side in one run, so the ratios are comparable.

    python benchmarks/throughput.py --device cuda --backbone resnet101 --image-size 448 --batch-size 8
    python benchmarks/throughput.py --device cpu --backbone resnet18 --image-size 128 --batch-size 16
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from msrn_core.model import ModelConfig, build_model, count_parameters
from msrn_core.training import autocast_dtype


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(model, images, targets, device, dtype, steps: int, warmup: int, train: bool) -> float:
    """Images per second over ``steps`` timed iterations after ``warmup`` untimed ones."""
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9) if train else None
    model.train(train)
    for step in range(warmup + steps):
        if step == warmup:
            synchronize(device)
            started = time.perf_counter()
        with torch.set_grad_enabled(train), torch.autocast(device.type, dtype=dtype or torch.float32,
                                                           enabled=dtype is not None):
            output = model(images)
        if train:
            loss = F.binary_cross_entropy_with_logits(output.logits.float(), targets) + 1e-3 * output.compactness
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
    synchronize(device)
    return steps * images.shape[0] / (time.perf_counter() - started)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--backbone", default="resnet101")
    parser.add_argument("--image-size", type=int, default=448)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--amp", default="auto", choices=["auto", "bf16", "fp16", "off"])
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    dtype = autocast_dtype(device, args.amp)
    torch.manual_seed(0)
    n = args.classes
    features = F.normalize(torch.randn(n, 300), dim=1)
    adjacency = 0.2 * (torch.rand(n, n) > 0.7).float() + torch.eye(n)
    images = torch.randn(args.batch_size, 3, args.image_size, args.image_size, device=device)
    targets = (torch.rand(args.batch_size, n, device=device) > 0.8).float()
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    images = images.to(memory_format=memory_format)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{name}; {args.backbone} at {args.image_size} px, batch {args.batch_size}, n = {n}, "
          f"autocast {dtype}, channels_last {args.channels_last}")
    print(f"{'model':8s} {'params (M)':>10s} {'train img/s':>12s} {'infer img/s':>12s} {'peak GiB':>9s}")
    rates = {}
    for kind in ("msrn", "plain"):
        model = build_model(ModelConfig(kind=kind, backbone=args.backbone), features, adjacency)
        model = model.to(device, memory_format=memory_format)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        train_rate = measure(model, images, targets, device, dtype, args.steps, args.warmup, train=True)
        infer_rate = measure(model, images, targets, device, dtype, args.steps, args.warmup, train=False)
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
        rates[kind] = (train_rate, infer_rate)
        print(f"{kind:8s} {count_parameters(model) / 1e6:10.1f} {train_rate:12.1f} {infer_rate:12.1f} {peak:9.2f}")
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    print(f"training step time, MSRN over plain: {rates['plain'][0] / rates['msrn'][0]:.2f}; "
          f"inference: {rates['plain'][1] / rates['msrn'][1]:.2f}")


if __name__ == "__main__":
    main()
