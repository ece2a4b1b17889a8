"""The trained ablation study: rows per setting and seed, the shared runs, resuming, bad input."""
import json
from dataclasses import asdict, replace

import pytest

from msrn_core.running import shared_runs
from msrn_core.running import ablation_study
from msrn_core.running import recipes
from msrn_core.running.experiment import setup_from_splits


def test_the_study_writes_one_row_per_run_shares_full_with_last3_and_resumes(small_scenes, tmp_path, monkeypatch):
    monkeypatch.setattr(shared_runs, "project_root", lambda: tmp_path)
    _, _, train, val, test = small_scenes
    setup = setup_from_splits(train, val, test, label_features="onehot")
    recipe = replace(recipes.SMALL, name="tiny", max_steps_per_epoch=1, embed_dim=32, fc_hidden=32)
    output = tmp_path / "ablation.json"
    study = ablation_study.run_study(recipe, output, settings=["label", "full"], seeds=[0], setup=setup)

    saved = json.loads(output.read_text())
    assert saved["recipe"] == asdict(recipe) and saved["command"].startswith("python -m msrn_core.running.ablation_study")
    runs = {(r["setting"], r["seed"]): r for r in saved["runs"]}
    assert set(runs) == {("label", 0), ("full", 0), ("last3", 0)}
    assert {k: v for k, v in runs["last3", 0].items() if k != "setting"} == \
        {k: v for k, v in runs["full", 0].items() if k != "setting"}
    for row in saved["runs"]:
        assert 0 <= row["val_map"] <= 1 and 0 <= row["test_map"] <= 1 and row["best_epoch"] == 1
    # seed 0 of the full model is the main job's MSRN run, trained once for both
    assert runs["full", 0]["run"] == "msrn" and (tmp_path / "runs" / "notebooks" / "tiny" / "msrn" / "best.pt").exists()
    assert study["seconds"] > 0

    def must_not_train(*args):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(ablation_study, "train_setting", must_not_train)
    again = ablation_study.run_study(recipe, output, settings=["label", "full"], seeds=[0], setup=setup)
    assert len(again["runs"]) == 3


def test_the_study_plans_the_papers_settings_and_refuses_an_unknown_one():
    planned = ablation_study.planned_runs()
    assert planned[:3] == [("full", 0), ("plain", 0), ("mlgcn", 0)]
    assert sorted(seed for setting, seed in planned if setting == "full") == [0, 1, 2]
    assert sorted(seed for setting, seed in planned if setting == "all4") == [0, 1]
    assert {setting for setting, _ in planned} == set(ablation_study.SETTINGS)
    with pytest.raises(ValueError, match="unknown setting"):
        ablation_study.planned_runs(["last3x"])


def test_the_study_records_its_precision_and_trains_again_rows_of_another(small_scenes, tmp_path, monkeypatch,
                                                                           capsys):
    from msrn_core.running import precision

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert ablation_study.computed_precision(replace(recipes.CPU, amp="bf16")) == "bfloat16"
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert ablation_study.computed_precision(replace(recipes.CPU, amp="bf16")) == "float32"

    monkeypatch.setattr(shared_runs, "project_root", lambda: tmp_path)
    _, _, train, val, test = small_scenes
    setup = setup_from_splits(train, val, test, label_features="onehot")
    recipe = replace(recipes.SMALL, name="tiny", max_steps_per_epoch=1, embed_dim=32, fc_hidden=32, amp="bf16")
    output = tmp_path / "ablation.json"
    other = {"setting": "label", "seed": 0, "val_map": 0.5, "test_map": 0.5, "best_epoch": 1, "seconds": 1.0,
             "run": "ablation-label-s0"}
    output.write_text(json.dumps({"recipe": asdict(recipe), "precision": "bfloat16", "runs": [other]}))
    trained = []
    monkeypatch.setattr(ablation_study, "train_setting",
                        lambda setup, recipe, setting, seed: trained.append((setting, seed)) or {**other, "test_map": 0.7})
    study = ablation_study.run_study(recipe, output, settings=["label"], seeds=[0], setup=setup)
    assert "(bfloat16; this machine trains in float32): the study starts again" in capsys.readouterr().out
    assert trained == [("label", 0)]
    assert json.loads(output.read_text())["precision"] == "float32" and study["runs"][0]["test_map"] == 0.7


def test_the_findings_state_the_rows_means_spreads_and_verdict():
    def rows(setting, tests, vals=None):
        return [{"setting": setting, "seed": seed, "test_map": t, "val_map": (vals or tests)[seed]}
                for seed, t in enumerate(tests)]

    study = {"runs": rows("full", [0.74, 0.76, 0.75]) + rows("plain", [0.77, 0.79, 0.78], [0.80, 0.80, 0.80])
             + rows("none", [0.70, 0.70]) + rows("last1", [0.73, 0.74])}
    lines = ablation_study.findings(study)
    assert lines[0] == "Over 2-3 seeds each (test mAP, mean ± sd): full MSRN 75.0 ± 1.0, the plain ResNet 78.0 ± 1.0."
    assert lines[1] == "Table 5 (embeddings), each against the full model's 75.0: no LGE 70.0 (-5.0)."
    assert lines[2].startswith("Table 6 (branches): last 1 / last 3: 73.5 / 75.0, a range of 1.5 points")
    assert lines[3] == ("MSRN is behind the plain ResNet by 3.0 points, more than one seed sd (1.0); "
                        "validation 75.0 against 80.0.")
    study["runs"] = rows("full", [0.74, 0.76]) + rows("plain", [0.745, 0.765])
    assert ablation_study.findings(study)[-1].startswith("MSRN and the plain ResNet are level: the test gap (-0.5 points)")
