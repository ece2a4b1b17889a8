"""``figures/lessons.json``: what the tutorial measured, each value written by the run that measured it.

The main job's notebooks (and ``run_notebooks``) call :func:`record` with a value and where it
came from; nothing else writes the file, and no value is typed in by hand. The file lives in the
figures folder of the mode (``mode.figures_dir()``), so a smoke-test run never touches the
committed one.

Keys (and what each value is):

- ``recipe``: the main job's recipe, its fields (``dataclasses.asdict(recipes.CPU)``, ...);
- ``main_job_seconds``: the wall time of ``python -m msrn_core.running.run_notebooks`` over notebooks
  01-06, from a run that trained the main job's runs (a run that loads them leaves it as it was);
- ``pointing_game``: hit rates in [0, 1] of MSRN's attention per branch (``layer2``, ``layer3``,
  ``layer4``), the image-centre and random-point baselines (``centre``, ``random``) and the plain
  ResNet's class activation map (``plain_cam``);
- ``groups_ari``: the adjusted Rand index of the trained MSRN's Diffpool groups against the themes;
- ``test_map``: ``msrn``, ``plain``, ``mlgcn`` -> one test mAP (a fraction) per seed: seed 0 the main
  job's own run (the model the notebooks show), seeds 1, 2, ... the ablation study's;
- ``ablations``: setting (``none``, ``label``, ...) -> one test mAP per seed;
- ``attention_variants``: one entry per scored attention, keyed ``plain_cam`` (the plain ResNet's
  class activation map), ``msrn`` (eq. 7-8 as printed), ``csra`` (class-specific residual attention)
  and one key per MSRN variant (e.g. ``msrn_label_sqrt_d``); each entry holds ``pointing`` (a list of
  hit rates: one per branch, or one value), ``normalised_entropy`` and ``label_map_correlation``
  (a number, or a list with one value per branch) and ``test_map`` (a list over seeds: seed 0 the
  main job's run for a model the notebooks train, the studies' runs for the other seeds and variants);
- ``sources``: key -> ``"main job: notebook NN"``, ``"main job: run_notebooks"``,
  ``"ablation study: figures/ablation_study.json"`` or ``"lessons study:
  benchmarks/results/lessons_study.json"``; a key whose values come from several of them names
  each, joined by ``" + "`` (:func:`joined_sources`).

- :func:`record`, :func:`discard`, :func:`read`  write one key, drop a stale one, read the file
- :func:`main_job`, :data:`ABLATION_STUDY_SOURCE`, :data:`LESSONS_STUDY_SOURCE`, :func:`joined_sources`
  the source strings
- :func:`load_ablation_study`, :func:`study_test_maps`  the committed study's results, per setting and seed
- :func:`main_job_test_maps`, :func:`with_main_job_seed`, :func:`other_seeds`  seed 0 of a model the
  main job trained is the main job's own run; the studies add seeds 1, 2, ...
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any, Mapping

from .mode import figures_dir
from .utils import atomic_write_json, dataclass_changes, project_root

LESSONS_FILE = "lessons.json"
ABLATION_STUDY_FILE = "ablation_study.json"
KEYS = ("recipe", "main_job_seconds", "pointing_game", "groups_ari", "test_map", "ablations", "attention_variants")
POINTING_KEYS = ("layer2", "layer3", "layer4", "centre", "random", "plain_cam")
TEST_MAP_KEYS = ("msrn", "plain", "mlgcn")
ABLATION_STUDY_SOURCE = f"ablation study: figures/{ABLATION_STUDY_FILE}"
LESSONS_STUDY_SOURCE = "lessons study: benchmarks/results/lessons_study.json"
_ONE_SOURCE = (r"(main job: (notebook \d\d|run_notebooks)|" + re.escape(ABLATION_STUDY_SOURCE) + "|"
               + re.escape(LESSONS_STUDY_SOURCE) + ")")
_SOURCE = re.compile(_ONE_SOURCE + r"( \+ " + _ONE_SOURCE + ")*")
# attention_variants: the entries every file holds, and the fields of each entry
ATTENTION_REQUIRED = ("plain_cam", "msrn", "csra")
ATTENTION_FIELDS = ("pointing", "normalised_entropy", "label_map_correlation", "test_map")
_ATTENTION_NAME = re.compile(r"[a-z][a-z0-9_]*")
# the study's settings that stand for the three models of the comparison
STUDY_MODELS = {"msrn": "full", "plain": "plain", "mlgcn": "mlgcn"}
# attention_variants key -> the test_map key of the same trained model (its ablation-study seeds)
ATTENTION_STUDY_MODELS = {"msrn": "msrn", "plain_cam": "plain"}


def main_job(notebook: str | int) -> str:
    """The source string of a value measured by notebook ``notebook`` (``"05"`` or 5) of the main job."""
    return f"main job: notebook {int(notebook):02d}"


def joined_sources(*sources: str) -> str:
    """One source string for a value measured in several places: each named once, in order."""
    return " + ".join(dict.fromkeys(sources))


def lessons_path(directory: str | Path | None = None) -> Path:
    """``<figures folder of this mode>/lessons.json`` (``mode.figures_dir()``, read at call time)."""
    if directory is None:
        directory = figures_dir()
    return Path(directory) / LESSONS_FILE


def read(directory: str | Path | None = None) -> dict:
    """The lessons recorded so far (``{"sources": {}}`` when there is no file yet)."""
    path = lessons_path(directory)
    if not path.exists():
        return {"sources": {}}
    lessons = json.loads(path.read_text())
    lessons.setdefault("sources", {})
    return lessons


def _number(value, low: float, high: float, message: str) -> float:
    """``value`` as a float when it is a finite number in [low, high], else ``ValueError(message)``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        raise ValueError(f"{message}, got {value!r}")
    return float(value)


def _fraction(value, what: str) -> float:
    return _number(value, 0.0, 1.0, f"{what} must be a fraction in [0, 1] (not a percentage)")


def _fractions(values, what: str) -> list[float]:
    if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__iter__"):
        raise ValueError(f"{what} must be a list with one value per seed, got {values!r}")
    values = [_fraction(v, what) for v in values]
    if not values:
        raise ValueError(f"{what} must hold at least one seed's value")
    return values


def _per_branch(value, low: float, high: float, what: str, branches: int) -> float | list[float]:
    """A number in [low, high], or a list of them with one value per branch (``branches``)."""
    if isinstance(value, (list, tuple)):
        if len(value) != branches:
            raise ValueError(f"{what} needs one value per branch ({branches}, as 'pointing'), got {len(value)}")
        return [_number(v, low, high, f"{what} must be in [{low:g}, {high:g}]") for v in value]
    return _number(value, low, high, f"{what} must be in [{low:g}, {high:g}]")


def _attention_variants(value) -> dict:
    """``attention_variants`` checked: the required entries, lowercase names, four fields each."""
    if not isinstance(value, Mapping) or not set(ATTENTION_REQUIRED) <= set(value):
        got = sorted(value) if isinstance(value, Mapping) else type(value).__name__
        raise ValueError(f"lessons 'attention_variants' needs at least the entries {list(ATTENTION_REQUIRED)} "
                         f"(plus one per MSRN variant), got {got}")
    checked = {}
    for name, entry in value.items():
        if not isinstance(name, str) or not _ATTENTION_NAME.fullmatch(name):
            raise ValueError(f"attention_variants entry {name!r} must be a lowercase name such as 'msrn_label'")
        entry = _exact_keys(entry, ATTENTION_FIELDS, f"attention_variants['{name}']")
        pointing = entry["pointing"]
        if not isinstance(pointing, (list, tuple)) or not pointing:
            raise ValueError(f"attention_variants['{name}']['pointing'] must be a list of hit rates "
                             f"(one per branch, or one value), got {pointing!r}")
        pointing = [_fraction(v, f"attention_variants['{name}']['pointing']") for v in pointing]
        checked[name] = {
            "pointing": pointing,
            "normalised_entropy": _per_branch(entry["normalised_entropy"], 0.0, 1.0,
                                              f"attention_variants['{name}']['normalised_entropy']", len(pointing)),
            "label_map_correlation": _per_branch(entry["label_map_correlation"], -1.0, 1.0,
                                                 f"attention_variants['{name}']['label_map_correlation']",
                                                 len(pointing)),
            "test_map": _fractions(entry["test_map"], f"attention_variants['{name}']['test_map']"),
        }
    return checked


def _exact_keys(value, wanted: tuple[str, ...], key: str) -> Mapping:
    if not isinstance(value, Mapping) or set(value) != set(wanted):
        got = sorted(value) if isinstance(value, Mapping) else type(value).__name__
        raise ValueError(f"lessons '{key}' needs exactly the keys {list(wanted)}, got {got}")
    return value


def _checked(key: str, value: Any) -> Any:
    """``value`` in the form the file stores for ``key``, or a ValueError naming what is wrong."""
    if key == "recipe":
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = dataclasses.asdict(value)
        if not isinstance(value, Mapping) or not value:
            raise ValueError("lessons 'recipe' needs the recipe's fields: a dataclass or a non-empty dict")
        return json.loads(json.dumps(dict(value), default=str))  # tuples -> lists, as the file keeps them
    if key == "main_job_seconds":
        return _number(value, 1e-9, math.inf, "lessons 'main_job_seconds' must be a positive number of seconds")
    if key == "pointing_game":
        value = _exact_keys(value, POINTING_KEYS, key)
        return {k: _fraction(value[k], f"pointing_game['{k}']") for k in POINTING_KEYS}
    if key == "groups_ari":
        return _number(value, -1.0, 1.0, "lessons 'groups_ari' must be an adjusted Rand index in [-1, 1]")
    if key == "test_map":
        value = _exact_keys(value, TEST_MAP_KEYS, key)
        return {k: _fractions(value[k], f"test_map['{k}']") for k in TEST_MAP_KEYS}
    if key == "ablations":
        if not isinstance(value, Mapping) or not value:
            raise ValueError("lessons 'ablations' needs a dict: setting -> list of test mAPs, one per seed")
        return {str(k): _fractions(v, f"ablations['{k}']") for k, v in value.items()}
    if key == "attention_variants":
        return _attention_variants(value)
    raise ValueError(f"unknown lessons key {key!r}; choose one of {list(KEYS)}")


def record(key: str, value: Any, source: str, directory: str | Path | None = None) -> dict:
    """Store ``value`` under ``key`` with its ``source`` (see the module docstring) and return all lessons.

    The file is rewritten atomically, keys in a fixed order, ``sources`` last.
    """
    checked = _checked(key, value)
    if not isinstance(source, str) or not _SOURCE.fullmatch(source):
        raise ValueError(f"unknown source {source!r} for lessons '{key}': use lessons.main_job('NN') "
                         f"(a notebook of the main job), 'main job: run_notebooks', "
                         f"lessons.ABLATION_STUDY_SOURCE or lessons.LESSONS_STUDY_SOURCE, several joined "
                         f"by lessons.joined_sources")
    lessons = read(directory)
    lessons[key] = checked
    lessons["sources"][key] = source
    return _write(lessons, directory)


def discard(key: str, directory: str | Path | None = None) -> dict:
    """Drop ``key`` (a value whose run no longer exists must not outlive it); return all lessons."""
    if key not in KEYS:
        raise ValueError(f"unknown lessons key {key!r}; choose one of {list(KEYS)}")
    lessons = read(directory)
    lessons.pop(key, None)
    lessons["sources"].pop(key, None)
    return _write(lessons, directory)


def _write(lessons: dict, directory) -> dict:
    ordered = {k: lessons[k] for k in KEYS if k in lessons}
    ordered["sources"] = {k: lessons["sources"][k] for k in KEYS if k in lessons["sources"]}
    atomic_write_json(lessons_path(directory), ordered)
    return ordered


# --------------------------------------------------------------------------- the committed ablation study
def ablation_study_path() -> Path:
    """The committed study: ``figures/ablation_study.json`` of the checkout (an input, in every mode)."""
    return project_root() / "figures" / ABLATION_STUDY_FILE


def load_ablation_study(path: str | Path | None = None) -> dict | None:
    """The study written by ``python -m msrn_core.running.ablation_study``, or None when it has not been run."""
    path = Path(path) if path is not None else ablation_study_path()
    if not path.exists():
        return None
    study = json.loads(path.read_text())
    if not isinstance(study.get("runs"), list):
        raise ValueError(f"{path} holds no 'runs' list: rerun `python -m msrn_core.running.ablation_study`")
    return study


def recipe_differences(study: Mapping, recipe) -> list[str]:
    """The fields of ``recipe`` (a dataclass) on which the study's recorded recipe differs: a study
    trained with another recipe (an older CPU recipe) must not stand for this one's ablations."""
    return list(dataclass_changes(study.get("recipe") or {}, recipe))


def study_test_maps_by_seed(study: Mapping) -> dict[str, dict[int, float]]:
    """Setting -> seed -> test mAP (a fraction), seeds in order, from a study's runs."""
    by_setting: dict[str, dict[int, float]] = {}
    for run in study["runs"]:
        by_setting.setdefault(str(run["setting"]), {})[int(run["seed"])] = float(run["test_map"])
    return {setting: dict(sorted(runs.items())) for setting, runs in by_setting.items()}


def study_test_maps(study: Mapping) -> dict[str, list[float]]:
    """Setting -> test mAPs (fractions), ordered by seed, from a study's runs."""
    return {setting: list(runs.values()) for setting, runs in study_test_maps_by_seed(study).items()}


def with_main_job_seed(main_job_value: float, study_by_seed: Mapping[int, float]) -> list[float]:
    """One test mAP per seed of a model the main job trained: seed 0 is the main job's own run
    (``main_job_value``, the model the notebooks show), seeds 1, 2, ... the study's runs of the same
    setting. The study's own seed 0 is left out: it is an earlier training of the main job's model
    (another machine or precision can move it by a few tenths)."""
    return [float(main_job_value), *(float(v) for seed, v in sorted(study_by_seed.items()) if seed != 0)]


def main_job_test_maps(main_job_maps: Mapping[str, float], ablation_study: Mapping | None) -> dict[str, list[float]]:
    """``test_map``: for ``msrn``, ``plain`` and ``mlgcn``, seed 0 from the main job's run
    (``main_job_maps``: key -> test mAP) and seeds 1, 2, ... from the ablation study's runs of the
    same model (:data:`STUDY_MODELS`; none when ``ablation_study`` is None)."""
    by_seed = study_test_maps_by_seed(ablation_study) if ablation_study is not None else {}
    return {key: with_main_job_seed(main_job_maps[key], by_seed.get(setting, {}))
            for key, setting in STUDY_MODELS.items()}


def other_seeds(key: str, lessons_study: Mapping | None, candidate: str | None,
                ablation_study: Mapping | None) -> tuple[dict[int, float], str | None]:
    """Seed -> test mAP of the other seeds (not 0) of the model behind ``attention_variants[key]``,
    and the source they come from: the lessons study's rows of ``candidate`` when they hold any,
    else the ablation study's runs of the same model (:data:`ATTENTION_STUDY_MODELS`), else
    ``({}, None)``."""
    if lessons_study is not None and candidate is not None:
        rows = study_rows_by_seed(lessons_study, candidate)
        found = {seed: float(row["test_map"]) for seed, row in rows.items() if seed != 0}
        if found:
            return found, LESSONS_STUDY_SOURCE
    setting = STUDY_MODELS.get(ATTENTION_STUDY_MODELS.get(key, ""))
    if ablation_study is not None and setting is not None:
        found = {seed: v for seed, v in study_test_maps_by_seed(ablation_study).get(setting, {}).items() if seed != 0}
        if found:
            return found, ABLATION_STUDY_SOURCE
    return {}, None


# --------------------------------------------------------------------------- the committed lessons study
LESSONS_STUDY_PATH = Path("benchmarks") / "results" / "lessons_study.json"
_SEED_SUFFIX = re.compile(r"(?P<name>.+?)[_-]s(?P<seed>\d+)")


def load_lessons_study(path: str | Path | None = None) -> dict | None:
    """The rows of ``python benchmarks/lessons_study.py`` (``benchmarks/results/lessons_study.json``
    of the checkout), or None when it has not been run."""
    path = Path(path) if path is not None else project_root() / LESSONS_STUDY_PATH
    if not path.exists():
        return None
    study = json.loads(path.read_text())
    if not isinstance(study.get("rows"), Mapping):
        raise ValueError(f"{path} holds no 'rows' table: rerun `python benchmarks/lessons_study.py`")
    return study


def study_rows_by_seed(study: Mapping, candidate: str) -> dict[int, dict]:
    """Seed -> row of the study's runs of ``candidate``: the row named so (its ``seed``, else 0)
    and the rows named ``<candidate>_s<k>`` or ``<candidate>-s<k>`` (or whose ``seed`` field says k)."""
    found: dict[int, dict] = {}
    for name, row in study["rows"].items():
        match = _SEED_SUFFIX.fullmatch(name)
        if name == candidate:
            seed = int(row.get("seed", 0))
        elif match and match["name"] == candidate:
            seed = int(row.get("seed", match["seed"]))
        else:
            continue
        found[seed] = row
    return dict(sorted(found.items()))


def study_attention_entry(study: Mapping, candidate: str) -> dict | None:
    """An ``attention_variants`` entry from the lessons study's rows of ``candidate`` (None when it has
    no row): ``pointing`` per branch (or the CAM's one value) and the maps' ``normalised_entropy`` and
    ``label_map_correlation`` of its seed-0 row (cell resolution, test split), and ``test_map`` over
    every seed the study trained."""
    by_seed = study_rows_by_seed(study, candidate)
    if not by_seed:
        return None
    first = next(iter(by_seed.values()))
    branches = [name for name in first.get("pointing", {}) if "@" not in name and name not in ("centre", "random")]
    maps = first.get("maps", {})
    if not branches or set(branches) - set(maps):
        raise ValueError(f"the study's row {candidate!r} has no pointing or map statistics per branch: rescore it "
                         "with `python benchmarks/lessons_study.py --rescore`")
    single = len(branches) == 1
    per_branch = {field: [maps[b][field] for b in branches] for field in ("normalised_entropy", "label_map_correlation")}
    return {"pointing": [first["pointing"][b] for b in branches],
            **{field: values[0] if single else values for field, values in per_branch.items()},
            "test_map": [row["test_map"] for row in by_seed.values()]}
