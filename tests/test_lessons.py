"""Tests for msrn_core.lessons: the one writer of lessons.json, and the ablation study it reads."""
from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from msrn_core import lessons
from msrn_core.running.run_notebooks import record_main_job_seconds

POINTING = {"layer2": 0.2, "layer3": 0.19, "layer4": 0.1, "centre": 0.23, "random": 0.09, "plain_cam": 0.36}


@dataclass
class Recipe:
    name: str = "cpu"
    image_size: int = 128
    branch_stages: tuple = (2, 3, 4)


def test_record_writes_values_and_sources_in_a_fixed_order(tmp_path):
    lessons.record("groups_ari", 0.8, lessons.main_job("03"), tmp_path)
    lessons.record("recipe", Recipe(), lessons.main_job(5), tmp_path)
    lessons.record("pointing_game", POINTING, lessons.main_job("06"), tmp_path)
    lessons.record("test_map", {"msrn": [0.7, 0.72, 0.71], "plain": [0.69, 0.7, 0.7], "mlgcn": [0.65, 0.66]},
                   lessons.ABLATION_STUDY_SOURCE, tmp_path)
    stored = json.loads((tmp_path / "lessons.json").read_text())
    assert list(stored) == ["recipe", "pointing_game", "groups_ari", "test_map", "sources"]
    assert stored["recipe"] == {"name": "cpu", "image_size": 128, "branch_stages": [2, 3, 4]}
    assert stored["pointing_game"] == POINTING and stored["groups_ari"] == 0.8
    assert stored["sources"] == {"recipe": "main job: notebook 05", "pointing_game": "main job: notebook 06",
                                 "groups_ari": "main job: notebook 03",
                                 "test_map": "ablation study: figures/ablation_study.json"}
    lessons.record("groups_ari", 0.85, lessons.main_job("03"), tmp_path)  # a rerun replaces the value
    assert lessons.read(tmp_path)["groups_ari"] == 0.85
    assert lessons.discard("groups_ari", tmp_path) == lessons.read(tmp_path)
    assert "groups_ari" not in lessons.read(tmp_path) and "groups_ari" not in lessons.read(tmp_path)["sources"]


@pytest.mark.parametrize("key, value, message", [
    ("pointing_game", {**POINTING, "layer2": 20.0}, "fraction"),  # a percentage
    ("pointing_game", {k: v for k, v in POINTING.items() if k != "plain_cam"}, "exactly the keys"),
    ("test_map", {"msrn": 0.7, "plain": [0.7], "mlgcn": [0.6]}, "one value per seed"),
    ("test_map", {"msrn": [], "plain": [0.7], "mlgcn": [0.6]}, "at least one"),
    ("ablations", {"full": [0.7, float("nan")]}, "fraction"),
    ("main_job_seconds", -3, "positive"),
    ("groups_ari", "0.8", "Rand"),
    ("recipe", {}, "fields"),
    ("accuracy", 0.5, "unknown lessons key"),
])
def test_bad_values_are_refused_with_the_reason(tmp_path, key, value, message):
    with pytest.raises(ValueError, match=message):
        lessons.record(key, value, lessons.main_job(6), tmp_path)
    assert not (tmp_path / "lessons.json").exists()


def test_sources_must_name_the_main_job_or_the_study(tmp_path):
    for source in ("hand edit", "main job: notebook 5", "ablation study"):
        with pytest.raises(ValueError, match="unknown source"):
            lessons.record("groups_ari", 0.5, source, tmp_path)
    lessons.record("main_job_seconds", 812.5, "main job: run_notebooks", tmp_path)


def test_lessons_follow_the_figures_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MSRN_FIGURES_DIR", str(tmp_path / "small"))
    assert lessons.lessons_path() == tmp_path / "small" / "lessons.json"
    lessons.record("groups_ari", 0.3, lessons.main_job(3))
    assert (tmp_path / "small" / "lessons.json").exists()


def test_main_job_seconds_only_for_a_full_run_of_01_to_06(tmp_path):
    timings = {f"0{i}_notebook.ipynb": 100.0 + i for i in range(1, 7)}
    assert record_main_job_seconds(timings, small=True, directory=tmp_path) is None
    partial = {k: v for k, v in timings.items() if not k.startswith("04")}
    assert record_main_job_seconds(partial, small=False, directory=tmp_path) is None
    assert not (tmp_path / "lessons.json").exists()
    with_dsdl = {**timings, "07_semantic_dictionary_learning.ipynb": 500.0}
    assert record_main_job_seconds(with_dsdl, small=False, directory=tmp_path) == pytest.approx(621.0)
    assert lessons.read(tmp_path)["main_job_seconds"] == pytest.approx(621.0)  # 07 is not the main job
    assert lessons.read(tmp_path)["sources"]["main_job_seconds"] == "main job: run_notebooks"


def test_main_job_seconds_kept_when_the_runs_were_loaded(tmp_path):
    timings = {f"0{i}_notebook.ipynb": 100.0 + i for i in range(1, 7)}
    assert record_main_job_seconds(timings, small=False, directory=tmp_path) == pytest.approx(621.0)
    loading = {name: 10.0 for name in timings}  # a second run: every model loaded, not trained
    assert record_main_job_seconds(loading, small=False, directory=tmp_path, trained_before=["backbone", "msrn"]) is None
    assert lessons.read(tmp_path)["main_job_seconds"] == pytest.approx(621.0)


def test_study_test_maps_orders_seeds(tmp_path):
    study = {"command": "python -m msrn_core.running.ablation_study", "recipe": {}, "seconds": 1.0, "runs": [
        {"setting": "full", "seed": 1, "val_map": 0.7, "test_map": 0.72, "best_epoch": 2, "seconds": 5.0},
        {"setting": "full", "seed": 0, "val_map": 0.7, "test_map": 0.70, "best_epoch": 2, "seconds": 5.0},
        {"setting": "plain", "seed": 0, "val_map": 0.6, "test_map": 0.66, "best_epoch": 1, "seconds": 4.0},
    ]}
    path = tmp_path / "ablation_study.json"
    path.write_text(json.dumps(study))
    assert lessons.study_test_maps(lessons.load_ablation_study(path)) == {"full": [0.70, 0.72], "plain": [0.66]}
    assert lessons.load_ablation_study(tmp_path / "missing.json") is None
    path.write_text(json.dumps({"command": "x"}))
    with pytest.raises(ValueError, match="runs"):
        lessons.load_ablation_study(path)


def test_a_study_of_another_recipe_is_told_apart_by_its_differing_fields(tmp_path):
    from msrn_core.running import recipes

    path = tmp_path / "ablation_study.json"
    path.write_text(json.dumps({"recipe": Recipe().__dict__, "runs": []}))  # tuples become lists on disk
    study = lessons.load_ablation_study(path)
    assert lessons.recipe_differences(study, Recipe()) == []
    assert lessons.recipe_differences(study, Recipe(image_size=160)) == ["image_size"]
    older = {k: v for k, v in Recipe().__dict__.items() if k != "branch_stages"}  # a field added since
    assert lessons.recipe_differences({"recipe": older}, Recipe()) == ["branch_stages"]
    committed = lessons.load_ablation_study()  # the repository's own study is the current CPU recipe's
    if committed is not None:
        assert lessons.recipe_differences(committed, recipes.CPU) == []


def attention_entry(branches: int = 1, **changes) -> dict:
    entry = {"pointing": [0.4] * branches, "normalised_entropy": 0.8, "label_map_correlation": 0.1,
             "test_map": [0.76, 0.75, 0.75]}
    return {**entry, **changes}


ATTENTION = {"plain_cam": attention_entry(), "msrn": attention_entry(3, normalised_entropy=[1.0, 1.0, 0.99]),
             "csra": attention_entry(), "msrn_label_sqrt_d": attention_entry(3)}


def test_attention_variants_are_stored_with_every_source_named(tmp_path):
    source = lessons.joined_sources(lessons.main_job("06"), lessons.LESSONS_STUDY_SOURCE,
                                    lessons.ABLATION_STUDY_SOURCE, lessons.main_job(6))
    assert source == ("main job: notebook 06 + lessons study: benchmarks/results/lessons_study.json"
                      " + ablation study: figures/ablation_study.json")  # each source once
    stored = lessons.record("attention_variants", ATTENTION, source, tmp_path)
    assert stored["attention_variants"] == ATTENTION
    assert stored["sources"]["attention_variants"] == source
    assert list(stored) == ["attention_variants", "sources"]


@pytest.mark.parametrize("value, message", [
    ({k: v for k, v in ATTENTION.items() if k != "csra"}, "at least the entries"),
    ({**ATTENTION, "MSRN label": attention_entry()}, "lowercase name"),
    ({**ATTENTION, "csra": {**attention_entry(), "peak_ratio": 5.0}}, "exactly the keys"),
    ({**ATTENTION, "csra": attention_entry(pointing=0.4)}, "list of hit rates"),
    ({**ATTENTION, "csra": attention_entry(pointing=[46.5])}, "fraction"),  # a percentage
    ({**ATTENTION, "msrn": attention_entry(3, label_map_correlation=[0.1, 0.2])}, "one value per branch"),
    ({**ATTENTION, "csra": attention_entry(normalised_entropy=1.2)}, r"in \[0, 1\]"),
    ({**ATTENTION, "csra": attention_entry(label_map_correlation=-1.5)}, r"in \[-1, 1\]"),
    ({**ATTENTION, "csra": attention_entry(test_map=0.77)}, "one value per seed"),
    ({**ATTENTION, "csra": attention_entry(test_map=[])}, "at least one"),
])
def test_bad_attention_variants_are_refused_with_the_reason(tmp_path, value, message):
    with pytest.raises(ValueError, match=message):
        lessons.record("attention_variants", value, lessons.main_job(6), tmp_path)
    assert not (tmp_path / "lessons.json").exists()


def test_joined_sources_must_each_be_known(tmp_path):
    with pytest.raises(ValueError, match="unknown source"):
        lessons.record("attention_variants", ATTENTION, lessons.main_job(6) + " + hand edit", tmp_path)
    with pytest.raises(ValueError, match="unknown source"):
        lessons.record("attention_variants", ATTENTION, lessons.main_job(6) + " and a study", tmp_path)


def test_study_rows_are_grouped_by_seed(tmp_path):
    rows = {"ft8_csra": {"test_map": 0.77}, "ft8_csra_s2": {"test_map": 0.75}, "ft8_csra-s1": {"test_map": 0.76},
            "ft8_csra_t3": {"test_map": 0.5}, "ft8_msrn": {"test_map": 0.74, "seed": 4}}
    path = tmp_path / "lessons_study.json"
    path.write_text(json.dumps({"command": "python benchmarks/lessons_study.py", "rows": rows}))
    study = lessons.load_lessons_study(path)
    by_seed = lessons.study_rows_by_seed(study, "ft8_csra")
    assert list(by_seed) == [0, 1, 2] and [r["test_map"] for r in by_seed.values()] == [0.77, 0.76, 0.75]
    assert list(lessons.study_rows_by_seed(study, "ft8_msrn")) == [4]
    assert lessons.study_rows_by_seed(study, "ft8_plain") == {}
    assert lessons.load_lessons_study(tmp_path / "missing.json") is None
    path.write_text(json.dumps({"command": "x"}))
    with pytest.raises(ValueError, match="rows"):
        lessons.load_lessons_study(path)


def test_an_attention_entry_is_read_from_the_study_rows_of_every_seed(tmp_path):
    def row(test_map, seed=None, **extra):
        maps = {b: {"normalised_entropy": 0.9, "label_map_correlation": 0.2, "peak_ratio": 2.0} for b in ("layer2", "layer3")}
        return {"test_map": test_map, "pointing": {"layer2": 0.3, "layer3": 0.4, "layer2@image": 0.1, "centre": 0.23,
                                                   "random": 0.09, "layer2@ceiling": 0.9}, "maps": maps,
                **({"seed": seed} if seed is not None else {}), **extra}

    cam = {"test_map": 0.77, "pointing": {"cam": 0.46, "cam@ceiling": 0.95, "centre": 0.23},
           "maps": {"cam": {"normalised_entropy": 0.8, "label_map_correlation": 0.1}}}
    study = {"rows": {"ft8_msrn_label": row(0.75), "ft8_msrn_label_s1": row(0.74, seed=1),
                      "ft8_msrn_label_s2": row(0.76, seed=2), "ft8_csra": cam, "broken": {"test_map": 0.5}}}
    entry = lessons.study_attention_entry(study, "ft8_msrn_label")
    assert entry == {"pointing": [0.3, 0.4], "normalised_entropy": [0.9, 0.9], "label_map_correlation": [0.2, 0.2],
                     "test_map": [0.75, 0.74, 0.76]}
    assert lessons.study_attention_entry(study, "ft8_csra") == {
        "pointing": [0.46], "normalised_entropy": 0.8, "label_map_correlation": 0.1, "test_map": [0.77]}
    assert lessons.study_attention_entry(study, "missing") is None
    with pytest.raises(ValueError, match="rescore"):
        lessons.study_attention_entry(study, "broken")
    value = {"plain_cam": lessons.study_attention_entry(study, "ft8_csra"), "msrn": entry,
             "csra": lessons.study_attention_entry(study, "ft8_csra"), "msrn_label_none": entry}
    lessons.record("attention_variants", value, lessons.LESSONS_STUDY_SOURCE, tmp_path)  # passes the validation


def ablation_runs(*runs):
    """A fake ablation study: (setting, seed, test mAP) per run."""
    return {"runs": [{"setting": setting, "seed": seed, "val_map": 0.5, "test_map": value, "best_epoch": 1,
                      "seconds": 1.0} for setting, seed, value in runs]}


def test_seed_0_of_test_map_is_the_main_jobs_run_and_the_study_adds_the_others(tmp_path):
    # the study's seed 0 (0.750, 0.766) is an older run of the main job's models: replaced by the main job's
    study = ablation_runs(("full", 2, 0.740), ("full", 0, 0.750), ("full", 1, 0.752), ("plain", 0, 0.766),
                          ("plain", 1, 0.747), ("plain", 2, 0.748), ("mlgcn", 0, 0.710), ("mlgcn", 1, 0.694),
                          ("label", 1, 0.70))
    main = {"msrn": 0.749, "plain": 0.760, "mlgcn": 0.705}
    maps = lessons.main_job_test_maps(main, study)
    assert maps == {"msrn": [0.749, 0.752, 0.740], "plain": [0.760, 0.747, 0.748], "mlgcn": [0.705, 0.694]}
    assert lessons.main_job_test_maps(main, None) == {"msrn": [0.749], "plain": [0.760], "mlgcn": [0.705]}
    source = lessons.joined_sources(lessons.main_job("06"), lessons.ABLATION_STUDY_SOURCE)
    stored = lessons.record("test_map", maps, source, tmp_path)
    assert stored["test_map"]["msrn"][0] == 0.749 and stored["sources"]["test_map"] == (
        "main job: notebook 06 + ablation study: figures/ablation_study.json")


def test_other_seeds_come_from_the_recipe_study_else_from_the_ablation_study():
    recipe_study = {"rows": {"ft8_csra": {"test_map": 0.77}, "ft8_csra_s1": {"test_map": 0.76},
                             "ft8_csra_s2": {"test_map": 0.75}, "ft8_msrn": {"test_map": 0.74}}}
    ablation = ablation_runs(("full", 0, 0.750), ("full", 1, 0.752), ("full", 2, 0.740), ("plain", 0, 0.766),
                             ("plain", 2, 0.748))
    assert lessons.other_seeds("csra", recipe_study, "ft8_csra", ablation) == (
        {1: 0.76, 2: 0.75}, lessons.LESSONS_STUDY_SOURCE)
    # the recipe study holds only seed 0 of MSRN: seeds 1 and 2 of the same model from the ablation study
    assert lessons.other_seeds("msrn", recipe_study, "ft8_msrn", ablation) == (
        {1: 0.752, 2: 0.740}, lessons.ABLATION_STUDY_SOURCE)
    assert lessons.other_seeds("plain_cam", None, "ft8_plain", ablation) == ({2: 0.748}, lessons.ABLATION_STUDY_SOURCE)
    assert lessons.other_seeds("msrn_label_none", recipe_study, "ft8_msrn_label", ablation) == ({}, None)
    assert lessons.other_seeds("msrn", None, None, None) == ({}, None)
    # the main job's value stays seed 0 whatever the study's own seed 0 says
    seeds, _ = lessons.other_seeds("msrn", recipe_study, "ft8_msrn", ablation)
    assert lessons.with_main_job_seed(0.749, {0: 0.750, **seeds}) == [0.749, 0.752, 0.740]
