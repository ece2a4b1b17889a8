"""Heads on a frozen trunk: what the five compared models cost and show when only their heads train.

Notebooks 02 and 05 fine-tune five models end to end (MSRN, plain, ML-GCN, CSRA and the MSRN
variant of ``recipes.ATTENTION_VARIANT``) for the CPU recipe's 2 epochs from one shared backbone.
This study freezes that backbone instead: the trunk's stage outputs are computed once, in eval
mode, for every image (the training split once per epoch, with the augmentation the recipe's
loader draws for seed 0 in that epoch, ``SeededAugmentation``), and shared by all five heads,
which train on them alone with the recipe's batch size, cosine schedule with warm-up and
learning rate. Each head is trained for the recipe's 2 epochs and for 8, with seeds 0-2, and
scored with the lessons study's scorers (``benchmarks/lessons_study.py``: test mAP, pointing game,
normalised entropy, peak-to-mean ratio, label-map correlation) on the test split.

    python benchmarks/frozen_trunk_study.py --threads 1   # run what is missing, print the table

The backbone is ``runs/study/backbone_8ep/best.pt`` (the lessons study's, the main job's backbone).
The trunk's features are cached in ``runs/frozen_trunk/features.pt`` (not committed); each
measured row in ``benchmarks/results/frozen_trunk.json``. ``--views`` augmented views of the
training split are extracted (default 2, the recipe's epochs); a longer schedule cycles through them.
Every seed reads seed 0's views (the features are computed once for all runs), so seeds 1 and 2
change the head's initialisation and the batch order, not the augmentation as a fine-tuning's seed does.

Scoring runs the heads on the cached test features (:class:`CachedTrunk`): the scorers read the
test images in order and each batch is checked against the images the features were computed
from, so the maps are those the full model (frozen trunk + head) gives.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.lessons_study import RUNS, fmt, map_columns, pointing, setup_for  # noqa: E402
from msrn_core.data.dataset import SeededAugmentation  # noqa: E402
from msrn_core.metrics import mean_average_precision  # noqa: E402
from msrn_core.objective import loss_weights, model_objective  # noqa: E402
from msrn_core.running import recipes  # noqa: E402
from msrn_core.running.checkpoints import load_trunk_weights  # noqa: E402
from msrn_core.running.experiment import make_model  # noqa: E402
from msrn_core.running.optimization import make_scheduler, make_sgd  # noqa: E402
from msrn_core.training_step import training_step  # noqa: E402
from msrn_core.utils import atomic_write_json, seed_everything  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "frozen_trunk.json"
BACKBONE = RUNS / "backbone_8ep" / "best.pt"
CACHE = ROOT / "runs" / "frozen_trunk" / "features.pt"
STAGES = (2, 3, 4)  # MSRN's branches; the baselines and CSRA read layer4 only
# the five models notebooks 02 and 05 train, as their run names: the architecture overrides
MODELS = {"msrn": dict(kind="msrn"), "plain": dict(kind="plain"), "mlgcn": dict(kind="mlgcn"),
          "csra": dict(kind="csra"), recipes.attention_variant_name(): dict(kind="msrn", **recipes.ATTENTION_VARIANT)}
# the fine-tuned models' entries in figures/lessons.json (``attention_variants``; ML-GCN: ``test_map``)
LESSONS = ROOT / "figures" / "lessons.json"
LESSONS_KEYS = {"msrn": "msrn", "plain": "plain_cam", "csra": "csra",
                recipes.attention_variant_name(): recipes.attention_variant_name()}


def fine_tuned(name: str) -> tuple[str, str]:
    """The fine-tuned model's test mAP (seed 0, the main job's run; mean over its seeds) and test
    pointing per branch, from figures/lessons.json."""
    lessons = json.loads(LESSONS.read_text())
    entry = lessons["attention_variants"].get(LESSONS_KEYS.get(name), {})
    maps = entry.get("test_map") or lessons["test_map"].get(name)
    test = f"{fmt(maps[0])} ({fmt(np.mean(maps))}, {len(maps)} seeds)" if maps else "–"
    return test, " / ".join(fmt(value) for value in entry.get("pointing", [])) or "–"


class CachedTrunk(nn.Module):
    """Stands in for a model's ``ResNetTrunk``: returns cached stage outputs instead of computing them.

    ``batch`` (a dict stage -> tensor) set before a call is returned as it is (training); without it
    the cached ``features`` of a whole split are replayed in order, batch after batch, and each
    batch of images must equal the cached ``images`` at that position (scoring), else an error."""

    def __init__(self, features: dict | None = None, images: torch.Tensor | None = None):
        super().__init__()
        self.features, self.images, self.position, self.batch = features, images, 0, None

    def forward(self, images: torch.Tensor, stages=(4,)) -> dict:
        if self.batch is not None:
            return {stage: self.batch[stage] for stage in stages}
        if self.position >= len(self.images):
            self.position = 0  # the next pass over the split
        end = self.position + len(images)
        if not torch.equal(images, self.images[self.position:end]):
            raise RuntimeError(f"CachedTrunk: the images at {self.position}:{end} are not those the features "
                               "were computed from (the scorer must read the split in order)")
        out = {stage: self.features[stage][self.position:end] for stage in stages}
        self.position = end
        return out


def trunk_model():
    setup = setup_for(128)
    model = make_model(setup, recipes.CPU.model_config(kind="plain"))  # output stride 16 (the recipe's)
    load_trunk_weights(BACKBONE, model)
    return setup, model.eval()


@torch.no_grad()
def extract(trunk, dataset, batch_size: int = 64, keep_images: bool = False) -> dict:
    """The trunk's layer2-4 outputs (N x C x h x w each) of every item of ``dataset``, its labels,
    and (``keep_images``) the image tensors."""
    chunks: dict = {stage: [] for stage in STAGES}
    images_kept = []
    for start in range(0, len(dataset), batch_size):
        images = torch.stack([dataset[i][0] for i in range(start, min(start + batch_size, len(dataset)))])
        for stage, value in trunk(images, STAGES).items():
            chunks[stage].append(value)
        if keep_images:
            images_kept.append(images)
    out = {"features": {stage: torch.cat(values) for stage, values in chunks.items()},
           "labels": torch.as_tensor(np.asarray(dataset.labels), dtype=torch.float32)}
    if keep_images:
        out["images"] = torch.cat(images_kept)
    return out


def features_cache(views: int) -> dict:
    """Load the cached trunk features, or compute them (and time it): ``train`` (one entry per
    epoch's augmented view), ``val`` and ``test`` (with their images, for :class:`CachedTrunk`)."""
    if CACHE.exists():
        cache = torch.load(CACHE, weights_only=True)
        if len(cache["train"]) >= views:
            return cache
    setup, model = trunk_model()
    cache, seconds = {"train": []}, {}
    augmented = SeededAugmentation(setup.train, 0)  # the recipe's loader, seed 0
    for epoch in range(views):
        augmented.set_epoch(epoch)
        started, cpu = time.perf_counter(), time.process_time()
        cache["train"].append(extract(model.trunk, augmented))
        seconds[f"train_view{epoch}"] = time.perf_counter() - started
        seconds[f"train_view{epoch}_cpu"] = time.process_time() - cpu
        print(f"train view {epoch}: {seconds[f'train_view{epoch}']:.0f} s", flush=True)
    for split in ("val", "test"):
        started, cpu = time.perf_counter(), time.process_time()
        cache[split] = extract(model.trunk, getattr(setup, split), keep_images=True)
        seconds[split] = time.perf_counter() - started
        seconds[f"{split}_cpu"] = time.process_time() - cpu
        print(f"{split}: {seconds[split]:.0f} s", flush=True)
    cache["seconds"] = seconds
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    torch.save(cache, CACHE)
    return cache


def head_model(name: str, seed: int):
    """Model ``name`` as the recipe builds it (seeded as the lessons study builds its candidates),
    its trunk replaced by a :class:`CachedTrunk`."""
    setup = setup_for(128)
    seed_everything(seed)
    model = make_model(setup, recipes.CPU.model_config(**MODELS[name]))
    model.trunk = CachedTrunk()
    return model


@torch.no_grad()
def split_map(model, split: dict, batch_size: int = 128) -> float:
    model.eval()
    logits = []
    n = len(split["labels"])
    for start in range(0, n, batch_size):
        model.trunk.batch = {s: f[start:start + batch_size] for s, f in split["features"].items()}
        logits.append(model(torch.empty(min(batch_size, n - start), 0)).logits.float())
    model.trunk.batch = None
    return float(mean_average_precision(torch.cat(logits).numpy(), split["labels"].numpy()))


def train_head(model, cache: dict, epochs: int, seed: int) -> dict:
    """SGD on the head's parameters over the cached training views (epoch e reads view e mod views),
    the recipe's batch size, lr, momentum, weight decay, clipping and cosine schedule with warm-up;
    the validation mAP after every epoch, the best epoch's weights kept (as ``load_or_train``)."""
    config = recipes.CPU.train_config(seed=seed, epochs=epochs)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_sgd(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    n = len(cache["train"][0]["labels"])
    steps = -(-n // config.batch_size)
    scheduler = make_scheduler(optimizer, config, steps)
    loss = model_objective(model, loss_weights(model, config.compactness_weight, config.group_link_weight))
    generator = torch.Generator().manual_seed(seed)
    best, history = (-1.0, None, 0), []
    started, cpu = time.perf_counter(), time.process_time()
    for epoch in range(epochs):
        view = cache["train"][epoch % len(cache["train"])]
        model.train()
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, config.batch_size):
            index = order[start:start + config.batch_size]
            model.trunk.batch = {s: f[index] for s, f in view["features"].items()}
            training_step(model, torch.empty(len(index), 0), view["labels"][index], loss, optimizer,
                          clip_grad_norm=config.clip_grad_norm)  # the trunk has no parameters left to clip
            scheduler.step()
        val_map = split_map(model, cache["val"])
        history.append(round(val_map, 4))
        if val_map > best[0]:
            best = (val_map, {k: v.clone() for k, v in model.state_dict().items()}, epoch + 1)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    model.load_state_dict(best[1])
    return {"train_seconds": seconds, "train_cpu_seconds": cpu, "best_val_map": best[0], "best_epoch": best[2],
            "val_history": history}


def score(name: str, epochs: int, seed: int, cache: dict) -> dict:
    model = head_model(name, seed)
    row = {"model": name, "epochs": epochs, "seed": seed, **train_head(model, cache, epochs, seed)}
    started = time.perf_counter()
    row["test_map"] = split_map(model, cache["test"])
    kind = MODELS[name]["kind"]
    for split, key in (("test", "pointing"), ("val", "pointing_val")):
        model.trunk = CachedTrunk(cache[split]["features"], cache[split]["images"])
        setup_split = getattr(setup_for(128), split)
        row[key] = pointing(model.eval(), setup_split, kind, **({} if split == "test" else {"resolutions": ("cell",)}))
    model.trunk = CachedTrunk(cache["test"]["features"], cache["test"]["images"])
    row.update(map_columns(model, setup_for(128).test, kind))
    row["score_seconds"] = time.perf_counter() - started
    return row


def load_rows() -> dict:
    return json.loads(RESULTS.read_text())["rows"] if RESULTS.exists() else {}


def table(rows: dict, extraction: dict | None) -> str:
    lines = ["| model | epochs | seeds | head train s (CPU s), seed 0 | val mAP | test mAP (sd) | test pointing (cell) | "
             "centre | normalised entropy | label-map correlation | fine-tuned: test mAP seed 0 (mean) | "
             "fine-tuned: pointing |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in MODELS:
        for epochs in sorted({r["epochs"] for r in rows.values()}):
            runs = [r for r in rows.values() if r["model"] == name and r["epochs"] == epochs]
            if not runs:
                continue
            branches = list(runs[0]["maps"])
            point = " / ".join(fmt(np.mean([r["pointing"][b] for r in runs])) for b in branches)
            ent = " / ".join(fmt(np.mean([r["maps"][b]["normalised_entropy"] for r in runs]), False) for b in branches)
            corr = " / ".join(fmt(np.mean([r["maps"][b]["label_map_correlation"] for r in runs]), False)
                              for b in branches)
            test = [r["test_map"] for r in runs]
            sd = f" ({fmt(np.std(test, ddof=1))})" if len(test) > 1 else ""
            seed0 = [f"{r['train_seconds']:.1f} ({r['train_cpu_seconds']:.1f})" for r in runs if r["seed"] == 0]
            lines.append(f"| {name} | {epochs} | {len(runs)} | {seed0[0] if seed0 else '–'} | "
                         f"{fmt(np.mean([r['best_val_map'] for r in runs]))} | {fmt(np.mean(test))}{sd} | "
                         f"{point} | {fmt(runs[0]['pointing']['centre'])} | {ent} | {corr} | "
                         + " | ".join(fine_tuned(name)) + " |")
    if extraction:
        wall = {k: v for k, v in extraction.items() if not k.endswith("_cpu")}
        total, total_cpu = sum(wall.values()), sum(v for k, v in extraction.items() if k.endswith("_cpu"))
        lines.append(f"\nfeature extraction: {total:.0f} s, CPU {total_cpu:.0f} s "
                     f"({', '.join(f'{k} {v:.0f} s' for k, v in wall.items())})")
        for epochs in sorted({r["epochs"] for r in rows.values()}):
            heads = [r["train_seconds"] for r in rows.values() if r["epochs"] == epochs and r["seed"] == 0]
            if len(heads) == len(MODELS):
                lines.append(f"five heads at {epochs} epochs (seed 0): {sum(heads):.0f} s; with the extraction "
                             f"{total + sum(heads):.0f} s")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--views", type=int, default=2, help="augmented views of the training split (default 2)")
    parser.add_argument("--epochs", type=int, nargs="+", default=[2, 8], help="head schedules (default 2 8)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default 0 1 2)")
    parser.add_argument("--only", action="append", choices=list(MODELS), help="these models only (repeatable)")
    parser.add_argument("--table", action="store_true", help="print the table of the cached rows only")
    args = parser.parse_args(argv)
    if args.table:
        print(table(load_rows(), json.loads(RESULTS.read_text()).get("extraction_seconds")))
        return
    torch.set_num_threads(args.threads)
    cache = features_cache(args.views)
    rows = load_rows()
    for seed in args.seeds:
        for epochs in args.epochs:
            for name in args.only or MODELS:
                key = f"{name}_e{epochs}_s{seed}"
                if key in rows:
                    continue
                print(f"== {key}", flush=True)
                rows[key] = score(name, epochs, seed, cache)
                print(f"   {rows[key]['train_seconds']:.0f} s, val {fmt(rows[key]['best_val_map'])}, "
                      f"test {fmt(rows[key]['test_map'])}", flush=True)
                atomic_write_json(RESULTS, {"command": "nice -n 10 python benchmarks/frozen_trunk_study.py --threads 1",
                                            "extraction_seconds": cache.get("seconds"), "views": len(cache["train"]),
                                            "rows": rows})
    print(table(rows, cache.get("seconds")))


if __name__ == "__main__":
    main()
