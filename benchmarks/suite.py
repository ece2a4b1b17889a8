"""MSRN's performance targets (ratios measured side by side in one run), one subcommand each.

    python benchmarks/suite.py forward   # 1: MSRN forward / its own trunk forward (ResNet-101, 448 px, batch 2, n = 20)
    python benchmarks/suite.py train     # 2: training step of MSRN / of the plain baseline (same settings)
    python benchmarks/suite.py sga       # 3: SGA at COCO size (n = 80, m = 4, 448 px, batch 8), lean vs naive
    python benchmarks/suite.py data      # 4: data loading vs training images/s, the CPU recipe
    python benchmarks/suite.py scaling   # 5: the head's parameters, forward time, peak memory vs n and image size
    python benchmarks/suite.py chunks    # the lean SGA's time against its chunk size (layers.SGA_CHUNK_ELEMENTS)
    python benchmarks/suite.py all

Every subcommand takes ``--device`` (cpu or cuda), ``--repeats`` (timed repetitions; the
median is reported, the minimum beside it) and ``--threads`` (CPU threads; on a shared machine
``--threads 1`` gives the steadiest ratios). Models have random weights. Peak memory on the CPU
is the growth of the resident set of a fresh process running the measured code once (its peak
is reset just before, through ``/proc/self/clear_refs``); on CUDA it is
``torch.cuda.max_memory_allocated`` above what was allocated before. GPU throughput of the
whole models (autocast, channels_last, compile): ``benchmarks/throughput.py``.
"""
from __future__ import annotations

import argparse
import gc
import multiprocessing
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from msrn_core.model import ModelConfig, build_model, count_parameters
from msrn_core.running.training import make_sgd
from throughput import synchronize, synthetic_graph, train_step

COCO = dict(labels=80, groups=4, batch=8, d=512, positions=(28 * 28, 14 * 14, 7 * 7))  # 448 px, branches 1-3
SCALING_LABELS = (20, 80, 256, 1006)
SCALING_SIZES = (224, 448, 576)


# ---------------------------------------------------------------- measuring helpers
def interleaved_times(calls: dict, device: torch.device, repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per call of every function in ``calls``, taking turns so that load hits all alike."""
    for _ in range(warmup):
        for call in calls.values():
            call()
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            synchronize(device)
            started = time.perf_counter()
            call()
            synchronize(device)
            times[name].append(time.perf_counter() - started)
    return times


def print_table(headers: list[str], rows: list[list]) -> None:
    cells = [[f"{value:.3f}" if isinstance(value, float) else str(value) for value in row] for row in rows]
    widths = [max(len(str(h)), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    for row in [headers, *cells]:
        print("  ".join([str(row[0]).ljust(widths[0])] + [str(c).rjust(w) for c, w in zip(row[1:], widths[1:])]))


def _resident_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} missing from /proc/self/status")


def _probe(job, job_args: tuple, device_name: str, repeats: int, threads: int | None) -> dict:
    """Run in a fresh process: build with ``job(*job_args)``, then time and measure the call it returns."""
    if threads:
        torch.set_num_threads(threads)
    device = torch.device(device_name)
    call = job(*job_args, device)
    gc.collect()
    if device.type == "cuda":
        synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    else:
        before = _resident_bytes("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the peak resident set
    times = interleaved_times({"call": call}, device, repeats=1, warmup=0)["call"]
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) - before
    else:
        peak = _resident_bytes("VmHWM") - before
    times += interleaved_times({"call": call}, device, repeats=max(0, repeats - 1), warmup=0)["call"]
    return {"peak_bytes": peak, "median_s": statistics.median(times), "min_s": min(times)}


def probe_in_fresh_process(job, job_args: tuple, args) -> dict:
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(_probe, (job, job_args, args.device, args.repeats, args.threads))


def msrn_and_inputs(args, n: int, image_size: int, batch: int, **config):
    features, adjacency = synthetic_graph(n)
    model = build_model(ModelConfig(backbone=args.backbone, **config), features, adjacency).to(args.device)
    images = torch.randn(batch, 3, image_size, image_size, device=args.device)
    return model, images


def ratio_rows(times: dict[str, list[float]], reference: str) -> list[list]:
    base = statistics.median(times[reference])
    return [[name, statistics.median(t), min(t), statistics.median(t) / base] for name, t in times.items()]


# ---------------------------------------------------------------- target 1
def forward_target(args) -> None:
    device = torch.device(args.device)
    model, images = msrn_and_inputs(args, args.classes, args.image_size, args.batch_size)  # lean SGA, the default
    naive = build_model(replace(model.config, sga="naive"), model.label_features, model.adjacency).to(device)
    naive.load_state_dict(model.state_dict())  # the same weights, eq. 7-9 in the naive form
    model.eval()
    naive.eval()

    with torch.inference_mode():
        times = interleaved_times({"trunk (stem..layer4)": lambda: model.trunk(images, (4,)),
                                   "MSRN, lean SGA": lambda: model(images), "MSRN, naive SGA": lambda: naive(images)},
                                  device, args.repeats)
        # where the rest goes: the head's parts on the trunk's real outputs
        features = model.trunk(images, model.branch_stages)
        head_times = interleaved_times({"head (all after the trunk)": lambda: model.after_trunk(features),
                                        "label-group embeddings": model.label_group_embeddings,
                                        "branch convs (buffer, pool, projection)":
                                            lambda: model.branch_maps(features)},
                                       device, args.repeats)
    print(f"\n[1] forward, {args.backbone} at {args.image_size} px, batch {args.batch_size}, n = {args.classes}, "
          f"{device.type} fp32, {torch.get_num_threads()} threads, median of {args.repeats}")
    print_table(["", "median s", "min s", "/ trunk"], ratio_rows(times, "trunk (stem..layer4)"))
    trunk = statistics.median(times["trunk (stem..layer4)"])
    print_table(["head part", "median s", "min s", "/ trunk"],
                [[name, statistics.median(t), min(t), statistics.median(t) / trunk] for name, t in head_times.items()])


# ---------------------------------------------------------------- target 2
def train_target(args) -> None:
    device = torch.device(args.device)
    targets = (torch.rand(args.batch_size, args.classes, device=device) > 0.8).float()
    calls = {}
    for name, kind, form in (("plain baseline", "plain", None), ("MSRN, lean SGA", "msrn", "lean"),
                             ("MSRN, naive SGA", "msrn", "naive")):
        model, images = msrn_and_inputs(args, args.classes, args.image_size, args.batch_size, kind=kind,
                                        **({"sga": form} if form else {}))
        optimizer = make_sgd(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=1e-4)  # as train_model
        calls[name] = (lambda m=model, o=optimizer, x=images: train_step(m.train(), o, x, targets))
    times = interleaved_times(calls, device, args.repeats)
    print(f"\n[2] training step (forward, backward, clipping, SGD), {args.backbone} at {args.image_size} px, "
          f"batch {args.batch_size}, n = {args.classes}, {device.type} fp32, {torch.get_num_threads()} threads, "
          f"median of {args.repeats}")
    print_table(["", "median s", "min s", "/ plain"], ratio_rows(times, "plain baseline"))


# ---------------------------------------------------------------- target 3
def sga_inputs(labels: int, batch: int, d: int, positions, device, generator: torch.Generator):
    """Random SGA inputs: embeddings (labels x d) and one B x HW x d feature map per branch."""
    embeddings = (0.1 * torch.randn(labels, d, generator=generator)).to(device)
    branches = [torch.randn(batch, hw, d, generator=generator).to(device) for hw in positions]
    return embeddings, branches


def sga_job(form: str, labels: int, batch: int, d: int, positions: tuple, device):
    """Forward and backward of SGA over all branches, at the given sizes."""
    from msrn_core.model import sga_function

    generator = torch.Generator().manual_seed(0)
    embeddings, branches = sga_inputs(labels, batch, d, positions, device, generator)
    embeddings.requires_grad_()
    for f in branches:
        f.requires_grad_()
    weights = [torch.randn(batch, labels, d, generator=generator).to(device) for _ in positions]

    def call():
        loss = sum((sga_function(form)(f, embeddings) * w).sum() for f, w in zip(branches, weights))
        loss.backward()
        embeddings.grad = None
        for f in branches:
            f.grad = None
    return call


def sga_target(args) -> None:
    sizes = (COCO["labels"] + COCO["groups"], args.coco_batch, COCO["d"], COCO["positions"])
    results = {form: probe_in_fresh_process(sga_job, (form, *sizes), args) for form in ("naive", "lean")}
    naive = results["naive"]
    print(f"\n[3] SGA forward + backward at COCO size: B = {args.coco_batch}, n + m = {sizes[0]}, d = {COCO['d']}, "
          f"HW = {COCO['positions']} (448 px), {args.device}, median of {args.repeats}")
    print_table(["form", "peak MiB", "/ naive", "median s", "min s", "time / naive"],
                [[form, r["peak_bytes"] / 2**20, r["peak_bytes"] / naive["peak_bytes"], r["median_s"], r["min_s"],
                  r["median_s"] / naive["median_s"]] for form, r in results.items()])


# ---------------------------------------------------------------- target 4
def data_target(args) -> None:
    from msrn_core.data.dataset import SeededAugmentation
    from msrn_core.running.experiment import make_model, prepare_scenes
    from msrn_core.running.recipes import CPU
    from msrn_core.running.training import make_loader

    device = torch.device(args.device)
    setup = prepare_scenes(args.data_root, CPU.scene_config(), label_features="onehot")
    train_config = CPU.train_config()
    # as the training loop loads: each image's augmentation seeded by (seed, epoch, index)
    loader = make_loader(SeededAugmentation(setup.train, 0), train_config.batch_size, True, train_config.num_workers, device,
                         torch.Generator().manual_seed(0))
    images_seen, started = 0, time.perf_counter()
    for index, batch in enumerate(loader):
        images_seen += batch.images.shape[0]
        if index + 1 == args.data_batches:
            break
    loading_rate = images_seen / (time.perf_counter() - started)  # worker start-up included

    model = make_model(setup, CPU.model_config()).to(device)
    optimizer = make_sgd(model.parameters(), lr=1e-3, momentum=train_config.momentum,
                         weight_decay=train_config.weight_decay)
    images = torch.randn(train_config.batch_size, 3, CPU.image_size, CPU.image_size, device=device)
    targets = (torch.rand(train_config.batch_size, len(setup.class_names), device=device) > 0.8).float()
    steps = interleaved_times({"step": lambda: train_step(model.train(), optimizer, images, targets)}, device,
                              args.repeats)["step"]
    training_rate = train_config.batch_size / statistics.median(steps)
    print(f"\n[4] the CPU recipe ({CPU.backbone}, {CPU.image_size} px, batch {train_config.batch_size}): "
          f"data loading with {train_config.num_workers} workers (its own, over {images_seen} images) vs MSRN "
          f"training steps ({torch.get_num_threads()} threads, median of {args.repeats})")
    print_table(["", "images/s"], [["data loading", loading_rate], ["training step", training_rate],
                                   ["loading / training", loading_rate / training_rate]])


# ---------------------------------------------------------------- target 5
def head_parameters(backbone: str, n: int, head: str) -> tuple[int, int]:
    """(head parameters, all parameters) of MSRN at the paper's widths, counted on the meta device."""
    features, adjacency = synthetic_graph(n)
    with torch.device("meta"):
        model = build_model(ModelConfig(backbone=backbone, head=head), features, adjacency)
    total = count_parameters(model)
    return total - count_parameters(model.trunk), total


def head_job(backbone: str, head: str, n: int, image_size: int, batch: int, device):
    """Forward of everything after the trunk, on trunk-shaped random features."""
    features, adjacency = synthetic_graph(n)
    model = build_model(ModelConfig(backbone=backbone, head=head), features, adjacency).to(device).eval()
    stages = {s: torch.randn(batch, model.trunk.channels[s], image_size // 2 ** (s + 1), image_size // 2 ** (s + 1),
                             device=device) for s in model.branch_stages}

    def call():
        with torch.inference_mode():
            model.after_trunk(stages)
    return call


def scaling_target(args) -> None:
    grid = [(n, 448) for n in SCALING_LABELS] + [(20, size) for size in SCALING_SIZES if size != 448]
    rows = []
    for head in ("paper", "per_label"):
        for n, size in grid:
            head_count, total = head_parameters(args.backbone, n, head)
            if total > args.max_parameters:
                rows.append([head, n, size, head_count / 1e6, total / 1e6, "not built", "-", "-"])
                continue
            r = probe_in_fresh_process(head_job, (args.backbone, head, n, size, args.batch_size), args)
            rows.append([head, n, size, head_count / 1e6, total / 1e6, r["median_s"], r["min_s"], r["peak_bytes"] / 2**20])
            print(f"  measured {head} head, n = {n}, {size} px", flush=True)
    print(f"\n[5] MSRN's head (everything after the trunk) at the paper's widths (d = 512, fc1 -> 2048), "
          f"{args.backbone} feature maps, batch {args.batch_size}, inference, {args.device}, median of {args.repeats}; "
          f"models over {args.max_parameters / 1e9:g} G parameters are counted, not built")
    print_table(["head", "n", "px", "head params (M)", "all params (M)", "forward s", "min s", "peak MiB"], rows)


# ---------------------------------------------------------------- the lean SGA's chunk size
CHUNK_SIZES = tuple(1 << p for p in range(15, 27))


def chunks_target(args) -> None:
    """Lean SGA time over MSRN's three branches against its chunk size (layers.SGA_CHUNK_ELEMENTS)."""
    from msrn_core.variants.lean_sga import semantic_guided_attention_lean, sga_chunk_elements

    device = torch.device(args.device)
    labels, d = args.classes + 4, 512
    positions = [(args.image_size // 2 ** (s + 2)) ** 2 for s in (2, 3, 4)]  # after the branches' 2x2 pooling
    embeddings, branches = sga_inputs(labels, args.batch_size, d, positions, device, torch.Generator().manual_seed(0))
    largest = max(args.batch_size * d * hw * labels for hw in positions)
    sizes = [size for size in CHUNK_SIZES if size // 2 < largest]

    def forward(size):
        def call():
            with torch.inference_mode():
                for f in branches:
                    semantic_guided_attention_lean(f, embeddings, chunk_elements=size)
        return call

    def forward_backward(size):
        leaves = [f.clone().requires_grad_() for f in branches]
        e = embeddings.clone().requires_grad_()

        def call():
            sum(semantic_guided_attention_lean(f, e, chunk_elements=size).sum() for f in leaves).backward()
        return call

    inference = interleaved_times({size: forward(size) for size in sizes}, device, args.repeats)
    training = interleaved_times({size: forward_backward(size) for size in sizes}, device, args.repeats)
    default = sga_chunk_elements(device)
    print(f"\n[chunks] lean SGA over the three branches (HW = {positions}, {args.image_size} px), batch "
          f"{args.batch_size}, n + m = {labels}, d = {d}, {device.type}, {torch.get_num_threads()} threads, "
          f"median of {args.repeats}; the default on {device.type} is 2^{default.bit_length() - 1}")
    print_table(["chunk", "forward ms", "forward + backward ms"],
                [[f"2^{size.bit_length() - 1}" + (" (default)" if size == default else ""),
                  1e3 * statistics.median(inference[size]), 1e3 * statistics.median(training[size])]
                 for size in sizes])


TARGETS = {"forward": forward_target, "train": train_target, "sga": sga_target, "data": data_target,
           "scaling": scaling_target, "chunks": chunks_target}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", choices=[*TARGETS, "all"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--backbone", default="resnet101")
    parser.add_argument("--image-size", type=int, default=448)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--coco-batch", type=int, default=COCO["batch"], help="batch of the SGA test")
    parser.add_argument("--data-root", default="data", help="where the built-in dataset is (or is generated)")
    parser.add_argument("--data-batches", type=int, default=40, help="batches the data-loading test reads")
    parser.add_argument("--max-parameters", type=float, default=1.5e9,
                        help="the scaling table counts, but does not build, models larger than this")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for name in (TARGETS if args.target == "all" else [args.target]):
        TARGETS[name](args)


if __name__ == "__main__":
    main()
