"""How much the metric conventions of msrn_core.metrics move the numbers against ML-GCN's code.

MSRN's authors evaluate with ML-GCN's ``util.AveragePrecisionMeter``; ``msrn_core.metrics`` differs
from it in three degenerate cases, and this script measures each on synthetic VOC-sized scores
(4,952 images, 20 classes, about 7 % positives per class, seeded):

1. tied scores: ours ranks a block of equal scores as one threshold (as scikit-learn does), ML-GCN
   walks ``torch.sort``'s order, so tied images are ranked by their position in the test set;
2. a class without a positive in the test split: ours leaves it out of the CP and CR means,
   ML-GCN counts it in the CP mean as 0 and makes CR 0/0 (nan);
3. ties at the top-3 boundary: ours keeps the lower class index, ML-GCN whatever ``torch.topk``
   returns.

Ties need quantised scores: continuous float32 logits have none; bf16 logits (a bf16-autocast
evaluation) have some; logits rounded to 0.5 many.

4. MSRN's own ``util.py`` (``AveragePrecisionMeter.evaluation``) does not predict at logit 0 as
   ML-GCN's does: it keeps the best of 20 logit thresholds by CF1 + OF1, chosen on the test split
   (``msrn_core.metrics.authors_threshold_metrics``). Measured on the synthetic scores and, with
   ``--run RUN_FOLDER``, on the test split of the built-in dataset for a trained run's ``best.pt``.

Run: ``python benchmarks/metric_conventions.py [--run runs/notebooks/cpu/msrn --data-root data]``.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch


from msrn_core.metrics import compute_all_metrics, per_class_ap, precision_recall_f1, sigmoid


# ---------------------------------------------------------------- ML-GCN's util.py, verbatim logic
def mlgcn_average_precision(output: torch.Tensor, target: torch.Tensor) -> float:
    """ML-GCN's ``average_precision`` (no difficult items): the precision at every positive, walked
    in ``torch.sort``'s order (its Python loop, vectorised)."""
    _, indices = torch.sort(output, dim=0, descending=True)
    positive = (target[indices] == 1).double()
    precision_at_positives = positive.cumsum(0) / torch.arange(1, len(positive) + 1, dtype=torch.float64)
    return float((precision_at_positives * positive).sum() / positive.sum())


def mlgcn_evaluation(scores_: np.ndarray, targets_: np.ndarray) -> dict:
    """ML-GCN's ``evaluation``: ``scores_ >= 0`` is a prediction (logits, or +-1 for top-k)."""
    n, n_class = scores_.shape
    Nc, Np, Ng = np.zeros(n_class), np.zeros(n_class), np.zeros(n_class)
    for k in range(n_class):
        scores, targets = scores_[:, k], targets_[:, k].copy()
        Ng[k] = np.sum(targets == 1)
        Np[k] = np.sum(scores >= 0)
        Nc[k] = np.sum(targets * (scores >= 0))
    Np[Np == 0] = 1
    OP, OR = np.sum(Nc) / np.sum(Np), np.sum(Nc) / np.sum(Ng)
    with np.errstate(invalid="ignore", divide="ignore"):
        CP, CR = np.sum(Nc / Np) / n_class, np.sum(Nc / Ng) / n_class
    return {"CP": CP, "CR": CR, "CF1": 2 * CP * CR / (CP + CR), "OP": OP, "OR": OR, "OF1": 2 * OP * OR / (OP + OR)}


def mlgcn_topk_scores(logits: torch.Tensor, k: int = 3) -> np.ndarray:
    """ML-GCN's ``overall_topk``: +1 for a top-k logit >= 0, else -1."""
    scores = np.zeros(tuple(logits.shape)) - 1
    index = logits.topk(k, 1, True, True)[1].numpy()
    tmp = logits.numpy()
    for i in range(logits.shape[0]):
        for ind in index[i]:
            scores[i, ind] = 1 if tmp[i, ind] >= 0 else -1
    return scores


# ---------------------------------------------------------------- synthetic scores
def synthetic(images: int = 4952, classes: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    targets = (rng.random((images, classes)) < rng.uniform(0.03, 0.12, classes)).astype(np.int64)
    logits = np.where(targets == 1, 1.0, -2.5) + 1.6 * rng.standard_normal((images, classes))
    return logits.astype(np.float32), targets


QUANTISATIONS = {
    "float32 logits": lambda x: x,
    "bf16 logits": lambda x: torch.from_numpy(x).to(torch.bfloat16).float().numpy(),
    "logits rounded to 0.5": lambda x: (np.round(x * 2) / 2).astype(np.float32),
}


def tied_fraction(logits: np.ndarray) -> float:
    """Share of scores that equal another score of the same class."""
    tied = 0
    for column in logits.T:
        _, counts = np.unique(column, return_counts=True)
        tied += counts[counts > 1].sum()
    return tied / logits.size


def main() -> None:
    base_logits, targets = synthetic()
    print("1. tied scores: per-class AP, ours (ties as one block) vs ML-GCN (torch.sort order)")
    print(f"{'scores':24s} {'tied':>6s} {'max |dAP|':>10s} {'dmAP':>8s} {'ML-GCN mAP over 10 image orders':>34s}")
    rng = np.random.default_rng(1)
    for name, quantise in QUANTISATIONS.items():
        logits = quantise(base_logits)
        ours = per_class_ap(logits, targets)
        theirs = np.array([mlgcn_average_precision(torch.from_numpy(logits[:, c]), torch.from_numpy(targets[:, c]))
                           for c in range(targets.shape[1])])
        shuffled = []
        for _ in range(10):
            order = rng.permutation(len(targets))
            shuffled.append(np.mean([mlgcn_average_precision(torch.from_numpy(logits[order, c]),
                                                             torch.from_numpy(targets[order, c]))
                                     for c in range(targets.shape[1])]))
        print(f"{name:24s} {tied_fraction(logits):6.1%} {np.abs(ours - theirs).max():10.4f} "
              f"{ours.mean() - theirs.mean():+8.4f} {min(shuffled):>16.4f} .. {max(shuffled):.4f} "
              f"(ours {ours.mean():.4f})")

    print("\n2. a class without a positive in the test split (class 0's positives removed, its scores kept)")
    empty = targets.copy()
    empty[:, 0] = 0
    ours = precision_recall_f1(sigmoid(base_logits), empty)
    theirs = mlgcn_evaluation(base_logits, empty)
    full = precision_recall_f1(sigmoid(base_logits), targets)
    counted = precision_recall_f1(sigmoid(base_logits[:, 1:]), empty[:, 1:])
    cr_as_zero = counted["CR"] * 19 / 20
    print(f"   ours: CP {ours['CP']:.4f} CR {ours['CR']:.4f} (over the 19 classes with positives)")
    print(f"   ML-GCN: CP {theirs['CP']:.4f} (the empty class counted as 0) CR {theirs['CR']} (0/0)")
    print(f"   a reference that counts the empty class as 0 in both: CP {theirs['CP']:.4f} CR {cr_as_zero:.4f}")
    print(f"   OP/OR/OF1 agree: ours {ours['OP']:.4f}/{ours['OR']:.4f}/{ours['OF1']:.4f}, "
          f"ML-GCN {theirs['OP']:.4f}/{theirs['OR']:.4f}/{theirs['OF1']:.4f}; "
          f"with class 0's positives: CP {full['CP']:.4f} CR {full['CR']:.4f}")

    print("\n3. ties at the top-3 boundary: ours (lower class index) vs ML-GCN (torch.topk)")
    for name, quantise in QUANTISATIONS.items():
        logits = quantise(base_logits)
        ours = precision_recall_f1(sigmoid(logits.astype(np.float64)), targets, top_k=3)
        topk = mlgcn_topk_scores(torch.from_numpy(logits))
        theirs = mlgcn_evaluation(topk, targets)
        ours_top = np.argsort(-logits, axis=1, kind="stable")[:, :3]
        their_top = torch.from_numpy(logits).topk(3, 1, True, True)[1].numpy()
        differ = np.mean([set(a) != set(b) for a, b in zip(ours_top, their_top)])
        print(f"   {name:24s} images whose top-3 sets differ {differ:6.2%}; "
              f"CF1-3 {ours['CF1']:.4f} vs {theirs['CF1']:.4f}, OF1-3 {ours['OF1']:.4f} vs {theirs['OF1']:.4f}")


SWEPT_KEYS = ("CF1", "OF1", "CF1-3", "OF1-3")


def sweep_gain(logits: np.ndarray, targets: np.ndarray, difficult=None) -> dict:
    """CF1, OF1 and their top-3 forms at probability 0.5 (logit 0) and with the authors' sweep."""
    fixed = compute_all_metrics(logits, targets, difficult=difficult, from_logits=True)
    swept = compute_all_metrics(logits, targets, difficult=difficult, from_logits=True, thresholds="authors")
    return {"fixed": {k: fixed[k] for k in SWEPT_KEYS},
            "authors": {k: swept[k] for k in (*SWEPT_KEYS, "threshold", "threshold-3")}}


def print_sweep_gain(name: str, gain: dict) -> None:
    cells = "  ".join(f"{k} {gain['fixed'][k]:.4f} -> {gain['authors'][k]:.4f} "
                      f"({gain['authors'][k] - gain['fixed'][k]:+.4f})" for k in SWEPT_KEYS)
    print(f"   {name}: {cells}; thresholds {gain['authors']['threshold']:+.1f} (full), "
          f"{gain['authors']['threshold-3']:+.1f} (top-3)")


def run_test_logits(run_dir: str, data_root: str):
    """Test-split logits of ``run_dir/best.pt`` on the built-in dataset (float32, on the CPU)."""
    from msrn_core.data.dataset import build_transform
    from msrn_core.data.scenes import SceneConfig, load_scene_splits
    from msrn_core.running.checkpoints import model_from_checkpoint
    from msrn_core.running.training import predict

    model, class_names, _ = model_from_checkpoint(f"{run_dir}/best.pt")
    size = SceneConfig().image_size
    _, _, test = load_scene_splits(data_root, SceneConfig(), eval_transform=build_transform(size, train=False),
                                   generate=False)
    if list(test.class_names) != class_names:
        raise SystemExit(f"{run_dir} was trained on another label set than the built-in dataset in {data_root}")
    logits, targets, _, _ = predict(model, test, batch_size=50, device="cpu", amp="off")
    return logits, targets


def sweep_section(run_dir: str | None, data_root: str) -> None:
    print("\n4. the authors' threshold sweep (best of 20 logit thresholds by CF1 + OF1, on the test split) "
          "against logit 0")
    base_logits, targets = synthetic()
    print_sweep_gain("synthetic VOC-sized scores", sweep_gain(base_logits, targets))
    if run_dir:
        logits, run_targets = run_test_logits(run_dir, data_root)
        print_sweep_gain(f"{run_dir}, built-in test split ({len(logits)} images)", sweep_gain(logits, run_targets))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", default=None, help="a run folder with best.pt trained on the built-in dataset")
    parser.add_argument("--data-root", default="data", help="where the built-in dataset was generated")
    arguments = parser.parse_args()
    torch.manual_seed(0)
    main()
    sweep_section(arguments.run, arguments.data_root)
