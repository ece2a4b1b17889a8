"""The GPU path in one command: speed, memory, one epoch, the notebooks, within about 10 minutes.

    python -m benchmarks.gpu_check                       # on a CUDA GPU (Colab, a workstation)
    python -m benchmarks.gpu_check --authors ../MSRN     # and the authors' MSGDN side by side
    python -m benchmarks.gpu_check --dry-run             # the same code on the CPU at tiny sizes

Nothing is downloaded: the models start from random weights (the speed of a ResNet does not
depend on its weights) and the built-in data uses one-hot label vectors. What it measures:

1. the device and the precision the GPU recipe trains in there (``running.training.autocast_dtype``:
   bf16 where the GPU computes it natively, else fp16 with a gradient scaler);
2. for every compared model kind this checkout has (MSRN, plain, ML-GCN, and CSRA once it exists):
   training and inference images per second and the peak memory
   (``torch.cuda.max_memory_allocated``) at 448 px, batch 8, on synthetic batches, in the GPU
   recipe's precision, channels_last and cudnn.benchmark;
3. one epoch of the GPU recipe on the built-in data for the models notebook 05 trains, and the
   notebook's projected training time (that epoch times the recipe's epochs, per model);
4. notebooks 05 and 06 in small form on this kernel's device (``MSRN_SMALL=1``);
5. with ``--authors PATH`` (a checkout of the authors' code): their ``MSGDN`` (``models.py``),
   trained and run the same way in the same process, beside ours. Their code is imported from
   that folder: run it only on a checkout you trust.

It writes ``gpu_check.json`` and ``gpu_check.md`` under ``benchmarks/results/`` (``--out``). The
dry run (tiny models and images, one short epoch of the smoke-test recipe, no notebooks) writes to
a temporary folder unless ``--out`` is given, and takes well under a minute.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from msrn_core.model import KIND_MODULES, MODEL_CLASSES, model_config, build_model, count_parameters
from msrn_core.running import recipes
from msrn_core.running.training import autocast, autocast_dtype, loss_terms, make_sgd, train_model
from msrn_core.utils import atomic_write_json, project_root

# The kinds compared, in the order of the tables; a kind this checkout lacks is left out.
COMPARED_KINDS = ("msrn", "plain", "mlgcn", "csra")
NOTEBOOK_05_KINDS = ("msrn", "plain", "mlgcn")  # the models notebook 05 trains
RESULTS_DIR = project_root() / "benchmarks" / "results"


@dataclass(frozen=True)
class Sizes:
    """How big the measurements are: the real check, or the dry run's tiny one."""

    device: str
    backbone: str
    embed_dim: int
    fc_hidden: int
    image_size: int
    batch_size: int
    classes: int
    warmup: int
    steps: int
    recipe: recipes.Recipe  # the one-epoch measurement's recipe
    notebooks: tuple[str, ...]


def real_sizes() -> Sizes:
    gpu = recipes.GPU
    return Sizes("cuda", gpu.backbone, gpu.embed_dim, gpu.fc_hidden, gpu.image_size, gpu.batch_size, 20, 5, 20,
                 gpu, ("05", "06"))


def dry_run_sizes() -> Sizes:
    """Tiny widths, one training step per epoch, no loader processes: the code paths, not the speed."""
    tiny = replace(recipes.SMALL, embed_dim=32, fc_hidden=64, batch_size=4, max_steps_per_epoch=1, num_workers=0)
    return Sizes("cpu", "resnet18", 32, 64, 64, 2, 6, 1, 2, tiny, ())


def available_kinds() -> list[str]:
    """The compared kinds this checkout knows (built in or registered by a module of its own)."""
    return [kind for kind in COMPARED_KINDS if kind in MODEL_CLASSES or kind in KIND_MODULES]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def random_label_graph(n: int, width: int = 300, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    features = torch.nn.functional.normalize(torch.randn(n, width, generator=generator), dim=1)
    return features, 0.2 * (torch.rand(n, n, generator=generator) > 0.7).float() + torch.eye(n)


def images_per_second(step, batch, sizes: Sizes, device: torch.device) -> float:
    """``step(batch)`` ``sizes.warmup`` times untimed, then ``sizes.steps`` times timed."""
    for _ in range(sizes.warmup):
        step(batch)
    synchronize(device)
    started = time.perf_counter()
    for _ in range(sizes.steps):
        step(batch)
    synchronize(device)
    return sizes.steps * sizes.batch_size / (time.perf_counter() - started)


def measure_model(model, loss_of, sizes: Sizes, device: torch.device, dtype, memory_format) -> dict:
    """Training and inference images/s and peak memory of ``model``; ``loss_of(model, images, targets)``
    gives the training loss."""
    model = model.to(device, memory_format=memory_format)
    images = torch.randn(sizes.batch_size, 3, sizes.image_size, sizes.image_size, device=device)
    images = images.contiguous(memory_format=memory_format)
    targets = (torch.rand(sizes.batch_size, sizes.classes, device=device) > 0.8).float()
    optimizer = make_sgd(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def train(batch):  # the training loop's step: scaled backward, clipping at 10 after it, SGD
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, dtype):
            loss = loss_of(model, *batch)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        scaler.step(optimizer)
        scaler.update()

    def infer(batch):
        with torch.inference_mode(), autocast(device, dtype):
            loss_of(model, *batch, inference=True)

    model.train()
    train_rate = images_per_second(train, (images, targets), sizes, device)
    model.eval()
    infer_rate = images_per_second(infer, (images, targets), sizes, device)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"parameters_M": count_parameters(model) / 1e6, "train_img_s": train_rate, "inference_img_s": infer_rate,
            "peak_memory_GiB": peak}


def our_loss(model, images, targets, inference: bool = False):
    output = model(images)
    if inference:
        return output.logits
    return loss_terms(output, targets, None, model)[0]


def throughput(sizes: Sizes, device: torch.device, dtype, memory_format) -> dict:
    features, adjacency = random_label_graph(sizes.classes)
    rows = {}
    for kind in available_kinds():
        torch.manual_seed(0)
        widths = {"embed_dim": sizes.embed_dim, "fc_hidden": sizes.fc_hidden} if kind == "msrn" else {}
        model = build_model(model_config(kind, backbone=sizes.backbone, **widths), features, adjacency)
        rows[kind] = measure_model(model, our_loss, sizes, device, dtype, memory_format)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def authors_throughput(path: str, sizes: Sizes, device: torch.device, dtype, memory_format) -> dict:
    """Their MSGDN (models.py) at the same sizes: MultiLabelSoftMarginLoss + their group loss, as
    their engine.py trains it. Their forward reads their VOC graph file and calls ``.cuda()``."""
    if device.type != "cuda":
        return {"skipped": "the authors' MSGDN calls .cuda() in its forward: it needs a CUDA GPU"}
    checkout = Path(path).resolve()
    adjacency_file = checkout / "data" / "voc" / "voc_adj.pkl"
    if not (checkout / "models.py").is_file() or not adjacency_file.is_file():
        return {"skipped": f"{checkout} is not a checkout of the authors' code (models.py, data/voc/voc_adj.pkl)"}
    import numpy as np

    if not hasattr(np, "int"):  # their util.gen_A uses np.int, which NumPy 1.24 removed
        np.int = int
    sys.path.insert(0, str(checkout))
    previous = os.getcwd()
    try:
        os.chdir(checkout)
        from models import MSGDN  # noqa: the authors' module, from the checkout given

        torch.manual_seed(0)
        model = MSGDN(20, 0.2, "resnet101", str(adjacency_file))
        vectors = torch.randn(sizes.batch_size, 20, 300, device=device)
        criterion = torch.nn.MultiLabelSoftMarginLoss()

        def their_loss(network, images, targets, inference: bool = False):
            logits, group_loss = network(images, vectors)
            return logits if inference else criterion(logits, targets) + group_loss

        return measure_model(model, their_loss, replace(sizes, classes=20), device, dtype, memory_format)
    finally:
        os.chdir(previous)
        sys.path.remove(str(checkout))


def one_epoch(sizes: Sizes, device: torch.device, data_root: str, work: Path) -> dict:
    """One epoch of ``sizes.recipe`` on the built-in data per notebook 05 model, and the projection."""
    from msrn_core.running.experiment import make_model, prepare_scenes

    recipe = sizes.recipe
    started = time.perf_counter()
    setup = prepare_scenes(data_root, config=recipe.scene_config(), label_features="onehot")
    result = {"recipe": recipe.name, "data_seconds": time.perf_counter() - started, "models": {}}
    for kind in NOTEBOOK_05_KINDS:
        torch.manual_seed(0)
        model = make_model(setup, recipe.model_config(kind=kind, pretrained=False))
        config = recipe.train_config(epochs=1, device=device.type, progress=False)
        started = time.perf_counter()
        trained = train_model(model, setup.train, setup.val, config, work / f"epoch-{kind}", resume=False)
        seconds = time.perf_counter() - started
        result["models"][kind] = {"epoch_seconds": seconds, "val_mAP": trained.best_val_map}
        del model
    result["projected_notebook05_seconds"] = sum(row["epoch_seconds"] for row in result["models"].values()) * \
        recipe.epochs
    return result


def run_notebooks_small(prefixes: tuple[str, ...], timeout: int) -> dict:
    """Notebooks ``prefixes`` in small form (``MSRN_SMALL=1``, one-hot label vectors), each timed."""
    rows = {}
    for prefix in prefixes:
        environment = {**os.environ, "MSRN_SMALL": "1", "MSRN_LABEL_FEATURES": "onehot"}
        started = time.perf_counter()
        completed = subprocess.run([sys.executable, "-m", "msrn_core.running.run_notebooks", "--small", prefix],
                                   cwd=project_root(), env=environment, capture_output=True, text=True,
                                   timeout=timeout)
        rows[prefix] = {"seconds": time.perf_counter() - started, "ok": completed.returncode == 0,
                        "tail": completed.stdout[-400:] + completed.stderr[-400:]}
    return rows


def device_description(device: torch.device, dtype) -> dict:
    info = {"torch": torch.__version__, "python": platform.python_version(), "device": device.type,
            "autocast": str(dtype).replace("torch.", "") if dtype else "off",
            "grad_scaler": dtype == torch.float16}
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        info.update(name=torch.cuda.get_device_name(device), capability=f"{major}.{minor}",
                    memory_GiB=torch.cuda.get_device_properties(device).total_memory / 2**30)
    else:
        info["name"] = platform.processor() or platform.machine()
    return info


def markdown(report: dict) -> str:
    """The report as markdown: the device, a table of models, the epoch and the notebooks."""
    device, sizes = report["device"], report["sizes"]
    lines = [f"**{device['name']}** ({device['device']}{', capability ' + device['capability'] if 'capability' in device else ''}), "
             f"torch {device['torch']}; autocast {device['autocast']}, gradient scaler {device['grad_scaler']}, "
             f"channels_last {report['channels_last']}, cudnn.benchmark {report['cudnn_benchmark']}; "
             f"{sizes['backbone']} at {sizes['image_size']} px, batch {sizes['batch_size']}"
             f"{' (dry run)' if report['dry_run'] else ''}", "",
             "| model | parameters (M) | train img/s | inference img/s | peak memory (GiB) |", "|---|---:|---:|---:|---:|"]
    for name, row in report["throughput"].items():
        if "skipped" in row:
            lines.append(f"| {name} | skipped: {row['skipped']} | | | |")
            continue
        peak = "-" if row["peak_memory_GiB"] is None else f"{row['peak_memory_GiB']:.2f}"
        lines.append(f"| {name} | {row['parameters_M']:.1f} | {row['train_img_s']:.1f} | "
                     f"{row['inference_img_s']:.1f} | {peak} |")
    epoch = report.get("epoch")
    if epoch:
        lines += ["", f"One epoch of recipe `{epoch['recipe']}` on the built-in data (generated or read in "
                      f"{epoch['data_seconds']:.0f} s), validation included:"]
        lines += [f"- {kind}: {row['epoch_seconds']:.1f} s, validation mAP {row['val_mAP']:.3f}"
                  for kind, row in epoch["models"].items()]
        lines.append(f"- notebook 05's training, projected: {epoch['projected_notebook05_seconds'] / 60:.1f} min")
    for prefix, row in report.get("notebooks", {}).items():
        lines.append(f"- notebook {prefix}, small form: {'ran' if row['ok'] else 'FAILED'} in {row['seconds']:.0f} s")
    lines.append(f"\nTotal {report['seconds']:.0f} s.")
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="the same code on the CPU at tiny sizes")
    parser.add_argument("--authors", metavar="PATH", default=None,
                        help="a checkout of the authors' code: their MSGDN side by side (CUDA only)")
    parser.add_argument("--out", default=None, help="folder for gpu_check.json and gpu_check.md "
                                                    "(default: benchmarks/results; the dry run: a temporary folder)")
    parser.add_argument("--data-root", default=None, help="where the built-in data is generated (default: data; "
                                                          "the dry run: inside its output folder)")
    parser.add_argument("--skip-notebooks", action="store_true", help="leave out notebooks 05 and 06")
    return parser


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    sizes = dry_run_sizes() if args.dry_run else real_sizes()
    if sizes.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU is visible to PyTorch here: run with --dry-run to check the code on the CPU")
    out = Path(args.out) if args.out else (Path(tempfile.mkdtemp(prefix="gpu_check-")) if args.dry_run
                                           else RESULTS_DIR)
    out.mkdir(parents=True, exist_ok=True)
    data_root = args.data_root or (str(out / "data") if args.dry_run else "data")
    started = time.perf_counter()
    device = torch.device(sizes.device)
    recipe = recipes.GPU  # the precision, memory format and cudnn choice measured are the GPU recipe's
    dtype = autocast_dtype(device, recipe.amp)
    memory_format = torch.channels_last if recipe.channels_last else torch.contiguous_format
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    report = {"dry_run": args.dry_run, "device": device_description(device, dtype),
              "sizes": {"backbone": sizes.backbone, "image_size": sizes.image_size, "batch_size": sizes.batch_size,
                        "classes": sizes.classes, "warmup_steps": sizes.warmup, "timed_steps": sizes.steps},
              "channels_last": recipe.channels_last, "cudnn_benchmark": device.type == "cuda"}
    print(f"device: {report['device']}", flush=True)
    report["throughput"] = throughput(sizes, device, dtype, memory_format)
    if args.authors:
        report["throughput"]["authors' MSGDN"] = authors_throughput(args.authors, sizes, device, dtype, memory_format)
    for name, row in report["throughput"].items():
        print(f"{name}: {row}", flush=True)
    with tempfile.TemporaryDirectory() as work:
        report["epoch"] = one_epoch(sizes, device, data_root, Path(work))
    print(f"epoch: {report['epoch']}", flush=True)
    if sizes.notebooks and not args.skip_notebooks:
        report["notebooks"] = run_notebooks_small(sizes.notebooks, timeout=240)
    report["seconds"] = time.perf_counter() - started
    atomic_write_json(out / "gpu_check.json", report)
    (out / "gpu_check.md").write_text(markdown(report))
    print(markdown(report))
    print(f"written: {out / 'gpu_check.json'}, {out / 'gpu_check.md'}")
    return report


if __name__ == "__main__":
    main()
