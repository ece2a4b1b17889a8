"""The CPU training-recipe study: which recipe trains models well enough to look inside.

Each candidate below is a named configuration: a model kind and its architecture switches, a
schedule, and optionally a shared backbone (another candidate, a plain ResNet trained once) that
it is fine-tuned from, as the paper fine-tunes ImageNet weights (section 4.1). A candidate's run
folder is ``runs/study/<name>/`` (checkpoints; an interrupted run resumes), and its measured row
is cached in ``benchmarks/results/lessons_study.json``. Selection uses the validation split only;
the test split is only reported.

    python benchmarks/lessons_study.py              # run what is missing, print the table
    python benchmarks/lessons_study.py --only NAME  # run (or load) one candidate
    python benchmarks/lessons_study.py --rescore    # score the finished runs again (new scorers)
    python benchmarks/lessons_study.py --list       # the candidates and what they change

Columns: training wall seconds (this machine, 2 cores, shared with other work while measured)
and the training process's CPU seconds (all its threads; over 2 cores about twice the wall
time the run would take alone),
best validation mAP, test mAP, pointing-game hit rates of MSRN's label attention per branch or
of the plain/ML-GCN model's class activation map (CAM), the centre and random-point baselines
and the best any map on that grid could do (its ceiling), the same hit rates on the validation
split (what a choice between candidates may look at), the ARI of MSRN's Diffpool groups against
the dataset's themes, and the mean |E_l| of the label embeddings. The rows that ask why eq. 8
comes out flat add, per branch on the test split (``attention.map_statistics``), the maps'
normalised entropy (1 = flat), peak-to-mean ratio (1 = flat) and label-map correlation (the mean
Pearson correlation between two present labels' maps of one image; 1 = one map for every label),
and the seed. (Where label context helps, per class, is measured by notebook 06, section 3, on the
main job's runs.)

    python benchmarks/lessons_study.py --threads 1 --rerun --only NAME  # train NAME here even if a row is cached
"""
from __future__ import annotations

import argparse
import fcntl
import inspect
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from msrn_core import attention  # noqa: E402
from msrn_core.csra import csra_logits, csra_on_plain  # noqa: E402
from msrn_core.metrics import mean_average_precision  # noqa: E402
from msrn_core.data.scenes import THEME_NAMES, SceneConfig  # noqa: E402
from msrn_core.groups import score_groups  # noqa: E402
from msrn_core.running import recipes  # noqa: E402
from msrn_core.running.checkpoints import load_trunk_weights  # noqa: E402
from msrn_core.running.experiment import make_model, prepare_scenes  # noqa: E402
from msrn_core.running.training import evaluate, load_or_train  # noqa: E402
from msrn_core.utils import atomic_write_json, seed_everything  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "lessons_study.json"
RUNS = ROOT / "runs" / "study"

# What every candidate shares unless it says otherwise: the CPU recipe's narrowed MSRN head
# (d = 256, fc1 512) on ResNet-18 at 128 px, batch 32, bf16 autocast and channels_last.
FAST = dict(amp="bf16", channels_last=True, batch_size=32, group_link_weight=0.0)  # no link term unless asked
# Fine-tuning from a shared backbone: cosine after a short warm-up, backbone at 0.1 x lr (paper 4.1).
FINE_TUNE = dict(FAST, epochs=2, lr=0.03, backbone_lr_mult=0.1, schedule="cosine", warmup_epochs=0.3)
PRETRAIN = dict(FAST, lr=0.1, backbone_lr_mult=1.0, schedule="cosine", warmup_epochs=0.3)


def fine_tuned(backbone: str, kind: str, note: str, model: dict | None = None, **train) -> dict:
    return dict(kind=kind, model=model or {}, backbone=backbone, train=dict(FINE_TUNE, **train),
                note=f"{note}, {train.get('epochs', FINE_TUNE['epochs'])} epochs from {backbone}")


MEAN, PAPER, AUTHORS = (dict(compactness_form=form) for form in ("paper_mean", "paper", "authors"))
OS16 = dict(output_stride=16)
CANDIDATES: dict[str, dict] = {
    # the shared backbones: a plain ResNet-18 trained from scratch
    "backbone_6ep": dict(kind="plain", train=dict(PRETRAIN, epochs=6),
                         note="plain ResNet-18 from scratch, 6 epochs, cosine lr 0.1, bf16"),
    "backbone_4ep": dict(kind="plain", train=dict(PRETRAIN, epochs=4),
                         note="plain ResNet-18 from scratch, 4 epochs, cosine lr 0.1, bf16"),
    # the heads fine-tuned from a backbone, the same budget each
    "ft4_msrn_paper_mean": fine_tuned("backbone_4ep", "msrn", "MSRN, eq. 6 / n (lambda 1e-3)", MEAN),
    "ft6_msrn_link": fine_tuned("backbone_6ep", "msrn", "MSRN, eq. 6 / n + Diffpool link prediction (weight 1)",
                                MEAN, group_link_weight=1.0),
    "ft6_plain": fine_tuned("backbone_6ep", "plain", "plain head"),
    "ft6_msrn_link_lr0.1": fine_tuned("backbone_6ep", "msrn", "MSRN, eq. 6 / n + link prediction, lr 0.1",
                                      MEAN, group_link_weight=1.0, lr=0.1),
    # the compactness forms and the link term at the adopted recipe (lr 0.1): one change each
    "ft6_msrn_nolink_lr0.1": fine_tuned("backbone_6ep", "msrn", "MSRN, eq. 6 / n without link prediction, lr 0.1",
                                        MEAN, lr=0.1),
    "ft6_msrn_paper_lr0.1": fine_tuned("backbone_6ep", "msrn", "MSRN, paper eq. 6 + link prediction, lr 0.1",
                                       PAPER, group_link_weight=1.0, lr=0.1),
    "ft6_msrn_authors_lr0.1": fine_tuned("backbone_6ep", "msrn", "MSRN, authors' form + link prediction, lr 0.1",
                                         AUTHORS, group_link_weight=1.0, lr=0.1),
    "ft6_msrn_lambda0_lr0.1": fine_tuned("backbone_6ep", "msrn", "MSRN, link prediction only (lambda 0), lr 0.1",
                                         MEAN, group_link_weight=1.0, lr=0.1, compactness_weight=0.0),
    # output stride 16 (layer4 keeps layer3's 8 x 8 map at 128 px instead of 4 x 4): fine-tuned
    # from the stride-32 backbone, or with the backbone pre-trained at stride 16 as well
    "ft6_plain_lr0.1": fine_tuned("backbone_6ep", "plain", "plain head, lr 0.1", lr=0.1),
    "ft6_plain_os16": fine_tuned("backbone_6ep", "plain", "plain head, output stride 16, lr 0.1", OS16, lr=0.1),
    "ft6_msrn_os16": fine_tuned("backbone_6ep", "msrn", "MSRN, eq. 6 / n + link prediction, output stride 16, lr 0.1",
                                dict(MEAN, **OS16), group_link_weight=1.0, lr=0.1),
    "backbone_6ep_os16": dict(kind="plain", model=OS16, train=dict(PRETRAIN, epochs=6),
                              note="plain ResNet-18 from scratch at output stride 16, 6 epochs, cosine lr 0.1, bf16"),
    "ft6os16_plain_os16": fine_tuned("backbone_6ep_os16", "plain", "plain head, output stride 16, lr 0.1", OS16, lr=0.1),
    # two more pre-training epochs (the budget allows about one minute more)
    "backbone_8ep": dict(kind="plain", train=dict(PRETRAIN, epochs=8),
                         note="plain ResNet-18 from scratch, 8 epochs, cosine lr 0.1, bf16"),
    "ft8_plain_os16": fine_tuned("backbone_8ep", "plain", "plain head, output stride 16, lr 0.1", OS16, lr=0.1),
    "ft8_msrn_os16": fine_tuned("backbone_8ep", "msrn", "MSRN, eq. 6 / n + link prediction, output stride 16, lr 0.1",
                                dict(MEAN, **OS16), group_link_weight=1.0, lr=0.1),
    # why eq. 8 comes out flat: the adopted MSRN (ft8_msrn_os16) with one switch of eq. 8 each
    # (ModelConfig.attention_scale / attention_temperature / attention_axis). The trained scores
    # f * e are small (mean |E_l| about 0.1), so eq. 8's softmax sees near-constant scores: a
    # temperature well below 1 sharpens it; sqrt(d) (16 at d = 256) flattens it further.
    "ft8_msrn_os16_T0.1": fine_tuned("backbone_8ep", "msrn", "MSRN as ft8_msrn_os16, eq. 8 scores / 0.1",
                                     dict(MEAN, **OS16, attention_scale="fixed", attention_temperature=0.1),
                                     group_link_weight=1.0, lr=0.1),
    "ft8_msrn_os16_sqrtd": fine_tuned("backbone_8ep", "msrn", "MSRN as ft8_msrn_os16, eq. 8 scores / sqrt(d)",
                                      dict(MEAN, **OS16, attention_scale="sqrt_d"), group_link_weight=1.0, lr=0.1),
    "ft8_msrn_os16_learnedT": fine_tuned("backbone_8ep", "msrn", "MSRN as ft8_msrn_os16, a learned temperature per "
                                         "branch (from 1)", dict(MEAN, **OS16, attention_scale="learned"),
                                         group_link_weight=1.0, lr=0.1),
    # the softmax per label over positions of dot-product scores <f_p, e_c> (one map per label)
    "ft8_msrn_os16_label_sqrtd": fine_tuned("backbone_8ep", "msrn", "MSRN as ft8_msrn_os16, label axis, scores / "
                                            "sqrt(d)", dict(MEAN, **OS16, attention_axis="label", attention_scale="sqrt_d"),
                                            group_link_weight=1.0, lr=0.1),
    "ft8_msrn_os16_label": fine_tuned("backbone_8ep", "msrn", "MSRN as ft8_msrn_os16, label axis, scores unscaled",
                                      dict(MEAN, **OS16, attention_axis="label"), group_link_weight=1.0, lr=0.1),
    # ... and the per-label head (ModelConfig.head): label c's logit reads its own row O_c (and its
    # groups'), so its map has to find label c's evidence; the paper's head mixes every row into fc1
    "ft8_msrn_os16_label_sqrtd_perlabel": fine_tuned("backbone_8ep", "msrn", "MSRN as ft8_msrn_os16, label axis, "
                                                     "scores / sqrt(d), per-label head",
                                                     dict(MEAN, **OS16, attention_axis="label", attention_scale="sqrt_d",
                                                          head="per_label"), group_link_weight=1.0, lr=0.1),
    "ft8_msrn_os16_label_perlabel": fine_tuned("backbone_8ep", "msrn", "MSRN as ft8_msrn_os16, label axis, scores "
                                               "unscaled, per-label head",
                                               dict(MEAN, **OS16, attention_axis="label", head="per_label"),
                                               group_link_weight=1.0, lr=0.1),
    # CSRA (msrn_core.csra) with the plain head's schedule: T = 1, lambda = 0.1 as the paper's one head
    "ft8_csra_os16": fine_tuned("backbone_8ep", "csra", "CSRA (T 1, lambda 0.1), output stride 16, lr 0.1", OS16, lr=0.1),
    # progressive resizing of the backbone (the main job's largest phase): epochs 1-3 at 64 px, 4-5 at 96,
    # 6-8 at 128 (a training step at 64 / 96 px is 2.8 / 1.8 x as fast as at 128 on a 2-core CPU in fp32),
    # then the plain model and CSRA fine-tuned from it exactly as from backbone_8ep
    "backbone_8ep_progressive": dict(kind="plain", train=dict(PRETRAIN, epochs=8,
                                                              epoch_image_sizes=(64, 64, 64, 96, 96, 128, 128, 128)),
                                     note="plain ResNet-18 pre-trained 8 epochs, progressive resizing 64/96/128 px"),
    "ft8p_plain_os16": fine_tuned("backbone_8ep_progressive", "plain", "plain head, output stride 16, lr 0.1", OS16,
                                  lr=0.1),
    "ft8p_csra_os16": fine_tuned("backbone_8ep_progressive", "csra", "CSRA (T 1, lambda 0.1), output stride 16, lr 0.1",
                                 OS16, lr=0.1),
    # the old recipe's from-scratch MSRN with the new speed levers, for scale
    "scratch_msrn_3ep": dict(kind="msrn", model=MEAN,
                             train=dict(FAST, epochs=3, lr=0.03, backbone_lr_mult=1.0, schedule="cosine",
                                        warmup_epochs=0.3),
                             note="MSRN from scratch, 3 epochs (the former budget), cosine lr 0.03, bf16"),
}


def with_seed(name: str, seed: int) -> str:
    """Add candidate ``<name>_s<seed>``: ``name`` trained again with another seed (head init, data order)."""
    spec = CANDIDATES[name]
    CANDIDATES[f"{name}_s{seed}"] = dict(spec, seed=seed, note=f"{spec['note']}, seed {seed}")
    return f"{name}_s{seed}"


# more seeds (1 and 2) of the baselines, the eq. 8 variants and CSRA
SEEDED = ("ft8_plain_os16", "ft8_msrn_os16", "ft8_msrn_os16_T0.1", "ft8_msrn_os16_sqrtd", "ft8_msrn_os16_learnedT",
          "ft8_msrn_os16_label_sqrtd", "ft8_msrn_os16_label", "ft8_msrn_os16_label_sqrtd_perlabel", "ft8_csra_os16")
for _name in SEEDED:
    for _seed in (1, 2):
        with_seed(_name, _seed)
# the training-free CSRA on a trained plain model: T and lambda chosen on validation (a row of its own)
TRAINING_FREE = {"csra_free_on_ft8_plain_os16": "ft8_plain_os16"}
TRAINING_FREE_GRID = dict(temperature=(1.0, 2.0, 5.0), lam=(0.1, 0.3, 1.0), normalise=(False, True))


def setup_for(image_size: int, cache: dict = {}):  # noqa: B006 - one setup per size per process
    if image_size not in cache:
        cache[image_size] = prepare_scenes(ROOT / "data", SceneConfig(image_size=image_size))
    return cache[image_size]


def build(name: str):
    spec = CANDIDATES[name]
    setup = setup_for(spec.get("image_size", 128))
    seed_everything(spec.get("seed", 0))
    # each candidate names its own architecture: output stride 32 unless it says 16, whatever the
    # CPU recipe has adopted since
    model = make_model(setup, recipes.CPU.model_config(kind=spec["kind"], **{"output_stride": 32, **spec.get("model", {})}))
    return spec, setup, model


def train(name: str):
    """Train (or load the finished run of) candidate ``name``; its backbone candidate first."""
    spec, setup, model = build(name)
    if spec.get("backbone"):
        train(spec["backbone"])  # loads it when finished
        load_trunk_weights(RUNS / spec["backbone"] / "best.pt", model)
    config = recipes.CPU.train_config(**{"num_workers": 1, "seed": spec.get("seed", 0), **spec["train"]})
    started, cpu_started = time.perf_counter(), time.process_time()
    result = load_or_train(model, setup.train, setup.val, config, RUNS / name)
    loaded = result.extra.get("loaded")
    seconds = None if loaded else (time.perf_counter() - started, time.process_time() - cpu_started)
    return model.eval(), result, seconds, setup


def pointing(model, dataset, kind: str, resolutions=("cell", "image")) -> dict:
    """Hit rates: MSRN's attention per branch, or the CAM of the plain / ML-GCN model when the
    scorer offers it (``source="cam"``); both at the arg-max cell and, where offered, after
    upsampling the map to the image (``resolution="image"``)."""
    parameters = inspect.signature(attention.pointing_game_score).parameters
    source = "attention" if kind == "msrn" else "cam"
    if source == "cam" and "source" not in parameters:
        return {}
    rates = {}
    for resolution in (resolutions if "resolution" in parameters else ("cell",)):
        options = {"source": source} if "source" in parameters else {}
        if "resolution" in parameters:
            options["resolution"] = resolution
        score = attention.pointing_game_score(model, dataset, **options)
        suffix = "" if resolution == "cell" else "@image"
        rates.update({f"{branch}{suffix}": value for branch, value in score["hit_rate"].items()})
        if resolution == "cell":  # the best any map on that grid could do
            rates.update({f"{branch}@ceiling": value for branch, value in score.get("ceiling", {}).items()})
        rates["centre"], rates["random"] = score["center_baseline"], score["random_baseline"]
    return rates


@torch.no_grad()
def groups_and_embeddings(model, setup) -> dict:
    if getattr(model, "config", None) is None or model.config.kind != "msrn" or not model.uses_groups:
        return {}
    lge = model.label_group_embeddings()
    score = score_groups(lge["assignment"].argmax(-1), setup.test.class_themes, THEME_NAMES)
    return {"ari": score["ari"], "ari_single_theme": score["ari_single_theme"],
            "mean_abs_el": float(lge["label_embeddings"].abs().mean())}


def map_columns(model, dataset, kind: str) -> dict:
    """Normalised entropy, peak-to-mean ratio and label-map correlation per branch (``attention.map_statistics``):
    MSRN's label attention as it is; a CAM as the softmax over its positions at T = 1, CSRA's score
    map at its own T (the weights its residual attention gives the positions)."""
    source = "attention" if kind == "msrn" else "cam"
    temperature = model.config.csra_temperature if kind == "csra" else 1.0
    return {"maps": attention.map_statistics(model, dataset, source, temperature=temperature)}


def score(name: str, previous: dict) -> dict:
    if name in TRAINING_FREE:
        return score_training_free(name)
    model, result, seconds, setup = train(name)
    if seconds is not None:
        wall, cpu = seconds
    else:  # a finished run, loaded: its own training time (its history), the CPU time only if the row is of that run
        wall = result.history[-1].get("seconds") if result.history else previous.get("train_seconds")
        before = previous.get("train_seconds")
        same_run = before is not None and wall is not None and abs(before - wall) < max(2.0, 0.05 * wall)
        cpu = previous.get("cpu_seconds") if same_run else None
    spec = CANDIDATES[name]
    test_map = float(evaluate(model, setup.test)["mAP"])
    row = {"candidate": name, "note": spec.get("note", ""), "kind": spec["kind"], "backbone": spec.get("backbone"),
           "train_seconds": wall, "cpu_seconds": cpu, "best_val_map": float(result.best_val_map), "best_epoch": result.best_epoch,
           "test_map": test_map if test_map <= 1 else test_map / 100}
    row["pointing"] = pointing(model, setup.test, spec["kind"])
    # the same on the validation split: what a choice between candidates may look at
    row["pointing_val"] = pointing(model, setup.val, spec["kind"], resolutions=("cell",))
    row.update(groups_and_embeddings(model, setup))
    row.update(map_columns(model, setup.test, spec["kind"]))
    row["seed"] = spec.get("seed", 0)
    if spec["kind"] == "msrn" and model.config.attention_scale == "learned":
        row["learned_temperatures"] = [float(t) for t in model.attention_temperatures()]
    return row


@torch.no_grad()
def last_stage_features(model, dataset, batch_size: int = 64) -> tuple[torch.Tensor, np.ndarray]:
    """The trunk's layer4 map of every image of ``dataset`` (N x C x h x w) and the label matrix."""
    chunks = []
    for start in range(0, len(dataset), batch_size):
        images = torch.stack([dataset[i][0] for i in range(start, min(start + batch_size, len(dataset)))])
        chunks.append(model.trunk(images, (4,))[4])
    return torch.cat(chunks), np.asarray(dataset.labels)


@torch.no_grad()
def score_training_free(name: str) -> dict:
    """The training-free CSRA (``csra_on_plain``) on a trained plain model: T, lambda and the
    normalisation chosen on the validation split over :data:`TRAINING_FREE_GRID`; test reported."""
    plain_name = TRAINING_FREE[name]
    plain, _, _, setup = train(plain_name)
    started = time.perf_counter()
    weight, bias = plain.classifier.weight, plain.classifier.bias
    split_features = {split: last_stage_features(plain, getattr(setup, split)) for split in ("val", "test")}

    def split_map(split, **options):
        features, labels = split_features[split]
        return float(mean_average_precision(csra_logits(features, weight, bias, **options)[0].numpy(), labels))

    grid = [dict(temperature=t, lam=lam, normalise=norm) for t in TRAINING_FREE_GRID["temperature"]
            for lam in TRAINING_FREE_GRID["lam"] for norm in TRAINING_FREE_GRID["normalise"]]
    val = [split_map("val", **options) for options in grid]
    best = grid[int(np.argmax(val))]
    model = csra_on_plain(plain, **best).eval()
    row = {"candidate": name, "note": f"CSRA without training on {plain_name}'s weights, T / lambda / "
           f"normalisation chosen on validation: {best}", "kind": "csra", "backbone": CANDIDATES[plain_name].get("backbone"),
           "train_seconds": None, "cpu_seconds": None, "best_val_map": max(val), "best_epoch": None,
           "test_map": split_map("test", **best), "plain_val_map": split_map("val", lam=0.0, normalise=False),
           "plain_test_map": split_map("test", lam=0.0, normalise=False), "chosen": best,
           "grid_val_map": [dict(options, val_map=v) for options, v in zip(grid, val)]}
    row["pointing"] = pointing(model, setup.test, "csra")
    row["pointing_val"] = pointing(model, setup.val, "csra", resolutions=("cell",))
    row.update(map_columns(model, setup.test, "csra"))
    row["score_seconds"] = time.perf_counter() - started
    return row


def load_rows() -> dict:
    return json.loads(RESULTS.read_text())["rows"] if RESULTS.exists() else {}


def save_rows(rows: dict) -> None:
    atomic_write_json(RESULTS, {"command": "python benchmarks/lessons_study.py", "rows": rows})


def save_row(name: str, row: dict) -> dict:
    """Add one row to the cached rows as they are on disk now (several study processes may run at once)."""
    RUNS.mkdir(parents=True, exist_ok=True)
    with open(RUNS / "lessons_study.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = load_rows()
        rows[name] = row
        save_rows(rows)
    return rows


def fmt(value, percent=True) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return f"{100 * value:.1f}" if percent else f"{value:.3f}"


def val_pointing(row: dict) -> str:
    v = row.get("pointing_val")
    if not v:
        return "–"
    return " / ".join(fmt(v[k]) for k in ("layer2", "layer3", "layer4", "cam") if k in v) + f"; {fmt(v.get('centre'))}"


def maps_table(rows: dict) -> str:
    """The eq. 8 study's columns: seed, mAP, pointing per branch, entropy, peak ratio, label-map correlation."""
    lines = ["| candidate | seed | train s | val mAP | test mAP | val pointing | test pointing | normalised entropy | "
             "peak / mean | label-map correlation |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, row in rows.items():
        maps = row.get("maps")
        if not maps:
            continue
        branches = list(maps)
        per = {key: " / ".join(fmt(maps[b][key], False) for b in branches)
               for key in ("normalised_entropy", "peak_ratio", "label_map_correlation")}
        test = " / ".join(fmt(row["pointing"].get(b)) for b in branches)
        val = " / ".join(fmt(row.get("pointing_val", {}).get(b)) for b in branches)
        seconds = row.get("train_seconds")
        lines.append(f"| {name} | {row.get('seed', 0)} | {f'{seconds:.0f}' if seconds else '–'} | {fmt(row['best_val_map'])} | "
                     f"{fmt(row['test_map'])} | {val} | {test} | {per['normalised_entropy']} | {per['peak_ratio']} | "
                     f"{per['label_map_correlation']} |")
    return "\n".join(lines)


def seed_summary(rows: dict) -> str:
    """Mean (and standard deviation over seeds) of each seeded candidate's test mAP and pointing per branch."""
    lines = ["| candidate | seeds | val mAP | test mAP (sd) | test pointing | label-map correlation |", "|---|---|---|---|---|---|"]
    for name in SEEDED:
        runs = [rows[n] for n in (name, f"{name}_s1", f"{name}_s2") if n in rows]
        if len(runs) < 2:
            continue
        branches = list(runs[0].get("maps", {})) or ["cam"]
        mean = {b: np.mean([r["pointing"][b] for r in runs]) for b in branches}
        corr = {b: np.mean([r["maps"][b]["label_map_correlation"] for r in runs if "maps" in r]) for b in branches}
        test = [r["test_map"] for r in runs]
        lines.append(f"| {name} | {len(runs)} | {fmt(np.mean([r['best_val_map'] for r in runs]))} | {fmt(np.mean(test))} "
                     f"({fmt(np.std(test, ddof=1))}) | {' / '.join(fmt(mean[b]) for b in branches)} | "
                     f"{' / '.join(fmt(corr[b], False) for b in branches)} |")
    return "\n".join(lines)


def table(rows: dict) -> str:
    lines = ["| candidate | train s (CPU s) | val mAP | test mAP | pointing: layer2 / layer3 / layer4 or CAM "
             "(cell; image) | centre / random | val pointing (cell; centre) | ARI | mean abs E_l |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, row in rows.items():
        p = row.get("pointing", {})
        cell = " / ".join(fmt(p[k]) for k in ("layer2", "layer3", "layer4", "cam") if k in p) or "–"
        image = " / ".join(fmt(p[k]) for k in ("layer2@image", "layer3@image", "layer4@image", "cam@image") if k in p)
        seconds, cpu = row.get("train_seconds"), row.get("cpu_seconds")
        lines.append(f"| {name} | {seconds:.0f}" + (f" ({cpu:.0f})" if cpu else "") + " | " if seconds else f"| {name} | – | ")
        lines[-1] += (f"{fmt(row['best_val_map'])} | {fmt(row['test_map'])} | {cell}" + (f"; {image}" if image else "")
                      + f" | {fmt(p.get('centre'))} / {fmt(p.get('random'))} | {val_pointing(row)} | {fmt(row.get('ari'), False)} | "
                      f"{fmt(row.get('mean_abs_el'), False)} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", help="run (or load) this candidate only (repeatable)")
    parser.add_argument("--rescore", action="store_true", help="score the finished runs again")
    parser.add_argument("--list", action="store_true", help="list the candidates")
    parser.add_argument("--rerun", action="store_true",
                        help="with --only: train (or load) and score the named candidates even when a row is cached")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (1 trains faster than 2 on 2 cores shared with other work)")
    args = parser.parse_args(argv)
    if args.list:
        for name, spec in CANDIDATES.items():
            print(f"{name}: {spec.get('note', '')}")
        for name, plain in TRAINING_FREE.items():
            print(f"{name}: CSRA without training on {plain}'s weights")
        return
    torch.set_num_threads(max(1, args.threads or torch.get_num_threads()))
    rows = load_rows()
    unknown = [name for name in args.only or [] if name not in CANDIDATES and name not in TRAINING_FREE]
    if unknown:
        raise SystemExit(f"unknown candidate(s) {unknown}; see --list")
    for name in args.only or [*CANDIDATES, *TRAINING_FREE]:
        if name in rows and not args.rescore and not (args.rerun and args.only):
            continue
        finished = (RUNS / name / "last.pt").exists() or name in TRAINING_FREE
        if args.rescore and not finished:
            continue
        print(f"== {name}: {CANDIDATES.get(name, {}).get('note', 'training-free CSRA')}", flush=True)
        rows = save_row(name, score(name, rows.get(name, {})))
    known = {name: rows[name] for name in [*CANDIDATES, *TRAINING_FREE] if name in rows}
    print(table(known))
    print(maps_table(known))
    print(seed_summary(known))
    ceilings = {key: value for row in rows.values() for key, value in row.get("pointing", {}).items()
                if key.endswith("@ceiling")}
    print("the best any map on each grid could do (share of trials with a cell centre in a box):",
          {key: round(100 * value, 1) for key, value in ceilings.items()})


if __name__ == "__main__":
    main()
