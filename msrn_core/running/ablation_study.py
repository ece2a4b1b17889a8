"""The paper's ablations (Tables 5 and 6) trained to the main MSRN's budget, over several seeds.

    python -m msrn_core.running.ablation_study            # the CPU recipe; resumes, skips finished runs
    python -m msrn_core.running.ablation_study --small    # the smoke-test recipe (seconds, meaningless numbers)

Every setting starts from the recipe's shared backbone (:func:`msrn_core.running.shared_runs.shared_backbone`)
and is fine-tuned exactly as the main job's MSRN (the same epochs, schedule and learning rates):

- Table 5, the embeddings: ``none`` (no LGE: max-pooled branches), ``label`` (E_l only),
  ``group`` (E_g only), ``full`` (both: the main MSRN);
- Table 6, the branches: ``last1`` (layer4), ``last2`` (layer3-4), ``last3`` (layer2-4: the main
  MSRN, so the same runs as ``full``), ``all4`` (layer1-4);
- the baselines ``plain`` (ResNet + linear classifier) and ``mlgcn``.

Seed 0 of ``full``, ``plain`` and ``mlgcn`` is the main job's own run (``runs/notebooks/<recipe>/
msrn``, ``plain``, ``mlgcn``): trained once, used by both. Selection is on the validation split;
the test split is only evaluated. The results go to ``figures/ablation_study.json`` after every
run, and notebook 05 loads them.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

from . import recipes
from .checkpoints import load_trunk_weights
from .precision import autocast_dtype
from .experiment import make_model
from .shared_runs import check_recipe_folder, run_folder, shared_backbone, tutorial_data
from .training import evaluate, load_or_train
from ..utils import atomic_write_json, display_path, get_device, project_root, seed_everything

# setting -> model overrides of the main MSRN
SETTINGS: dict[str, dict] = {
    "none": dict(embeddings="none"),
    "label": dict(embeddings="label"),
    "group": dict(embeddings="group"),
    "full": {},
    "last1": dict(branch_stages=(4,)),
    "last2": dict(branch_stages=(3, 4)),
    "all4": dict(branch_stages=(1, 2, 3, 4)),
    "plain": dict(kind="plain"),
    "mlgcn": dict(kind="mlgcn"),
}
SAME_RUNS = {"last3": "full"}  # settings that are another setting's runs
SEEDS = {"full": (0, 1, 2), "plain": (0, 1, 2)}  # every other setting: DEFAULT_SEEDS
DEFAULT_SEEDS = (0, 1)
MAIN_JOB_RUNS = {"full": "msrn", "plain": "plain", "mlgcn": "mlgcn"}  # their seed-0 run names
COMMAND = "python -m msrn_core.running.ablation_study"


def run_name(setting: str, seed: int) -> str:
    if seed == 0 and setting in MAIN_JOB_RUNS:
        return MAIN_JOB_RUNS[setting]
    return f"ablation-{setting}-s{seed}"


def train_setting(setup, recipe: recipes.Recipe, setting: str, seed: int) -> dict:
    """Fine-tune (or load) one setting with one seed; returns its row."""
    config = recipe.train_config(num_workers=1, seed=seed)
    folder = run_folder(run_name(setting, seed), recipe=recipe)
    check_recipe_folder(folder.parent, recipe)
    backbone = shared_backbone(setup, recipe) if recipe.pretrain_epochs > 0 and not recipe.pretrained else None
    seed_everything(seed)  # as shared_runs.trained_model does for seed 0
    model = make_model(setup, recipe.model_config(**SETTINGS[setting]))
    if backbone is not None:
        load_trunk_weights(backbone, model)
    started = time.perf_counter()
    result = load_or_train(model, setup.train, setup.val, config, folder)
    seconds = time.perf_counter() - started if not result.extra.get("loaded") else result.history[-1]["seconds"]
    test_map = float(evaluate(model, setup.test)["mAP"])
    return {"setting": setting, "seed": seed, "val_map": float(result.best_val_map), "test_map": test_map,
            "best_epoch": int(result.best_epoch), "seconds": float(seconds), "run": folder.name}


def computed_precision(recipe: recipes.Recipe) -> str:
    """What this machine trains ``recipe`` in: ``"bfloat16"``, ``"float16"`` or ``"float32"``.

    The recipe's ``amp="bf16"`` autocasts only on CPUs with native bf16, so the same recipe gives
    different numbers on two machines; the study records which one its rows come from."""
    config = recipe.train_config()
    dtype = autocast_dtype(get_device(config.device), config.amp)
    return str(dtype or "torch.float32").removeprefix("torch.")


def planned_runs(settings=None, seeds=None) -> list[tuple[str, int]]:
    settings = list(settings or SETTINGS)
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; choose from {list(SETTINGS)} "
                         f"({', '.join(f'{a} = {b}' for a, b in SAME_RUNS.items())})")
    runs = [(setting, seed) for setting in settings for seed in (seeds or SEEDS.get(setting, DEFAULT_SEEDS))]
    # seed by seed, the main comparison first: a study stopped early still covers every setting
    order = ["full", "plain", "mlgcn", "none", "label", "group", "last1", "last2", "all4"]
    return sorted(runs, key=lambda run: (run[1], order.index(run[0])))


def run_study(recipe: recipes.Recipe, output: Path, settings=None, seeds=None, setup=None) -> dict:
    """Train what is missing, writing ``output`` after every run; returns the study's dict.

    Rows already in ``output`` for the same recipe, computed in the same precision, are kept (the
    study resumes where it stopped); rows of another recipe or precision are trained again.
    """
    import json

    output = Path(output)
    recipe_fields = asdict(recipe)
    precision = computed_precision(recipe)
    previous = json.loads(output.read_text()) if output.exists() else {}
    same = previous.get("recipe") == recipe_fields and previous.get("precision") == precision
    if previous.get("runs") and not same:
        print(f"{display_path(output)} holds runs of another recipe or precision "
              f"({previous.get('precision', 'precision not recorded')}; this machine trains in {precision}): "
              f"the study starts again", flush=True)
    rows = [r for r in previous.get("runs", []) if same and r["setting"] not in SAME_RUNS]
    done = {(r["setting"], r["seed"]) for r in rows}
    setup = setup or tutorial_data(recipe=recipe)
    study = {"command": COMMAND + (" --small" if recipe.name == "small" else ""), "recipe": recipe_fields,
             "precision": precision, "same_runs": SAME_RUNS,
             "seconds": float(previous.get("seconds", 0.0)) if rows else 0.0, "runs": rows}
    for setting, seed in planned_runs(settings, seeds):
        if (setting, seed) in done:
            continue
        print(f"== {setting}, seed {seed}", flush=True)
        started = time.perf_counter()
        rows.append(train_setting(setup, recipe, setting, seed))
        study["seconds"] += time.perf_counter() - started
        study["runs"] = rows + _copies(rows)
        atomic_write_json(output, study)
        study["runs"] = rows
    study["runs"] = rows + _copies(rows)
    atomic_write_json(output, study)
    return study


def _copies(rows: list[dict]) -> list[dict]:
    """Rows of the settings that share another setting's runs (``last3`` = ``full``)."""
    return [{**row, "setting": alias} for alias, source in SAME_RUNS.items() for row in rows
            if row["setting"] == source]


def setting_percents(study: dict, setting: str, key: str = "test_map"):
    """One setting's ``key`` (``"test_map"`` or ``"val_map"``) over its seeds, in percent (a NumPy array)."""
    import numpy as np

    return 100 * np.array([r[key] for r in study["runs"] if r["setting"] == setting], dtype=float)


def summary(study: dict) -> str:
    lines = [f"{'setting':8s} seeds  test mAP mean ± std (min-max)   val mAP mean"]
    for setting in list(SETTINGS)[:4] + ["last1", "last2", "last3", "all4", "plain", "mlgcn"]:
        test, val = setting_percents(study, setting), setting_percents(study, setting, "val_map")
        if not len(test):
            continue
        lines.append(f"{setting:8s} {len(test):5d}  {test.mean():5.1f} ± {test.std(ddof=1) if len(test) > 1 else 0:4.1f} "
                     f"({test.min():.1f}-{test.max():.1f})   {val.mean():5.1f}")
    return "\n".join(lines)


DESCRIPTIONS = {"none": "no LGE", "label": "label-E only", "group": "group-E only", "full": "full MSRN",
                "last1": "last 1", "last2": "last 2", "last3": "last 3", "all4": "all 4",
                "plain": "the plain ResNet", "mlgcn": "ML-GCN"}


def findings(study: dict) -> list[str]:
    """What the study measured, in sentences: the comparison, Table 5, Table 6 and the verdict on
    MSRN against the plain ResNet, every number computed here from the study's rows (test split, %;
    mean ± sample standard deviation over seeds). Settings without rows are left out."""
    def values(setting: str, key: str = "test_map"):
        return setting_percents(study, setting, key)

    def sd(setting: str) -> float:
        test = values(setting)
        return float(test.std(ddof=1)) if len(test) > 1 else 0.0

    def signed(points: float) -> str:
        return f"{points + 0.0:+.1f}".replace("-0.0", "+0.0")

    def mean_sd(setting: str) -> str:
        return f"{DESCRIPTIONS[setting]} {values(setting).mean():.1f} ± {sd(setting):.1f}"

    have = [s for s in SETTINGS if len(values(s))]
    seeds = sorted({len(values(s)) for s in have})
    lines = []
    compared = [s for s in ("full", "plain", "mlgcn") if s in have]
    if compared:
        counts = f"{seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else f"{seeds[0]}"
        lines.append(f"Over {counts} seeds each (test mAP, mean ± sd): " + ", ".join(mean_sd(s) for s in compared) + ".")
    if "full" in have:
        full = values("full").mean()
        table5 = [s for s in ("none", "group", "label") if s in have]
        if table5:
            lines.append(f"Table 5 (embeddings), each against the full model's {full:.1f}: " + ", ".join(
                f"{DESCRIPTIONS[s]} {values(s).mean():.1f} ({signed(values(s).mean() - full)})" for s in table5) + ".")
    table6 = [s for s in ("last1", "last2", "last3", "all4") if s in have or (s == "last3" and "full" in have)]
    if len(table6) > 1:
        means = [values("full" if s == "last3" else s).mean() for s in table6]
        spread = max(sd("full" if s == "last3" else s) for s in table6)
        lines.append(f"Table 6 (branches): {' / '.join(DESCRIPTIONS[s] for s in table6)}: "
                     f"{' / '.join(f'{m:.1f}' for m in means)}, a range of {max(means) - min(means):.1f} points "
                     f"(the seeds' sd up to {spread:.1f}).")
    if "full" in have and "plain" in have:
        gap = values("full").mean() - values("plain").mean()
        spread = max(sd("full"), sd("plain"))
        validation = f"validation {values('full', 'val_map').mean():.1f} against {values('plain', 'val_map').mean():.1f}"
        if abs(gap) <= spread:
            verdict = (f"MSRN and the plain ResNet are level: the test gap ({signed(gap)} points) is within one seed "
                       f"sd ({spread:.1f}); {validation}. MSRN is not ahead on this budget.")
        else:
            side = "ahead of" if gap > 0 else "behind"
            verdict = (f"MSRN is {side} the plain ResNet by {abs(gap):.1f} points, more than one seed sd "
                       f"({spread:.1f}); {validation}.")
        lines.append(verdict)
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="the smoke-test recipe (default: the CPU recipe)")
    parser.add_argument("--settings", nargs="+", help=f"only these settings (of {list(SETTINGS)})")
    parser.add_argument("--seeds", nargs="+", type=int, help="only these seeds")
    parser.add_argument("--output", type=Path, help="the JSON file (default figures/ablation_study.json; "
                        "figures/ablation_study_small.json with --small)")
    args = parser.parse_args(argv)
    recipe = recipes.SMALL if args.small else recipes.CPU
    output = args.output or project_root() / "figures" / ("ablation_study_small.json" if args.small
                                                          else "ablation_study.json")
    study = run_study(recipe, output, args.settings, args.seeds)
    print(summary(study))
    print("\n".join(findings(study)))
    print(f"{len(study['runs'])} rows in {output}; {study['seconds']:.0f} s of training and evaluation")


if __name__ == "__main__":
    main()
