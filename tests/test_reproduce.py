"""The reproduction recipe: each table resolves to the paper's configuration, results files
are written in their format and collected into markdown, and bad files are named."""
import json

import numpy as np
import pytest

from msrn_core.running import reproduce, train
from msrn_core.data.real.voc import VOC_CLASSES
from msrn_core.extras.dsdl import authors_config
from msrn_core.metrics import compute_all_metrics

EXPECTED = {  # (table, setting) -> (dataset, embeddings, branches)
    ("1", "full"): ("voc2007", "full", [2, 3, 4]),
    ("2", "full"): ("coco2014", "full", [2, 3, 4]),
    ("5", "none"): ("voc2007", "none", [2, 3, 4]),
    ("5", "label"): ("voc2007", "label", [2, 3, 4]),
    ("5", "group"): ("voc2007", "group", [2, 3, 4]),
    ("5", "full"): ("voc2007", "full", [2, 3, 4]),
    ("6", "last1"): ("voc2007", "full", [4]),
    ("6", "last2"): ("voc2007", "full", [3, 4]),
    ("6", "last3"): ("voc2007", "full", [2, 3, 4]),
    ("6", "all4"): ("voc2007", "full", [1, 2, 3, 4]),
}


def resolved(argv):
    """The train CLI's options after parsing, with the recipe applied as main() applies it."""
    return train.resolve_options(train.build_parser().parse_args(argv))


def test_every_table_setting_resolves_to_the_papers_configuration():
    settings = {(number, s.key): s for number, table in reproduce.TABLES.items() for s in table.settings
                if s.recipe == "paper"}
    assert set(settings) == set(EXPECTED)
    for key, setting in settings.items():
        args = resolved(reproduce.train_arguments(setting, runs_dir="runs/r"))
        dataset, embeddings, branches = EXPECTED[key]
        assert (args.dataset, args.embeddings, args.branches, args.model) == (dataset, embeddings, branches, "msrn")
        # paper section 4.1
        assert (args.backbone, args.pretrained, args.image_size, args.embed_dim, args.fc_hidden) == (
            "resnet101", True, 448, 512, 2048)
        assert (args.batch_size, args.epochs, args.lr, args.backbone_lr_mult, args.lr_step) == (8, 90, 0.01, 0.1, 30)
        assert (args.compactness_weight, args.groups, args.label_features, args.t, args.p) == (
            1e-3, 4, "glove", 0.4, 0.25)
        assert args.data_root == reproduce.DATA_ROOTS[dataset]
        assert args.out == f"runs/r/{dataset}-{embeddings}-b{''.join(map(str, branches))}"
    # one configuration, one run: Table 1, Table 5's full model and Table 6's last three branches
    shared = {settings[k].run_name for k in (("1", "full"), ("5", "full"), ("6", "last3"))}
    assert len(shared) == 1
    assert len({s.run_name for s in settings.values()}) == 8


@pytest.mark.parametrize("dataset", ["voc2007", "coco2014"])
def test_the_dsdl_tables_resolve_to_the_authors_recipe(dataset):
    setting = reproduce.find_setting(f"dsdl-{dataset}", "full")
    args = resolved(reproduce.train_arguments(setting, runs_dir="runs/r"))
    # their demo_*.py defaults and run scripts: ResNet-101, ImageNet weights, 448 px, batch 32, SGD 0.01,
    # backbone x0.1, GloVe vectors; lambda and beta per dataset
    assert (args.dataset, args.model, args.backbone, args.pretrained, args.image_size, args.label_features) == (
        dataset, "dsdl", "resnet101", True, 448, "glove")
    assert (args.batch_size, args.lr, args.backbone_lr_mult, args.lr_step) == (32, 0.01, 0.1, 40)
    expected = {"voc2007": (10.0, 1e-4), "coco2014": (0.1, 1e-6)}[dataset]
    assert (args.dsdl_loss, args.dsdl_lambda, args.dsdl_beta) == ("authors", *expected)
    assert train.cli_model_config(args) == authors_config(dataset)
    assert args.out == f"runs/r/{dataset}-dsdl-authors"


def test_dsdl_options_need_the_dsdl_model():
    args = train.build_parser().parse_args(["--dsdl-beta", "1e-4"])
    with pytest.raises(SystemExit, match="go with --model dsdl"):
        train.cli_model_config(args)


def test_the_dsdl_voc_figures_average_to_the_published_map():
    figures = reproduce.TABLES["dsdl-voc2007"].paper["full"]
    assert np.mean([figures[f"AP {name}"] for name in VOC_CLASSES]) == pytest.approx(figures["mAP"], abs=0.1)


def test_table_one_lists_the_papers_voc_classes():
    table = reproduce.TABLES["1"]
    assert [m[3:] for m in table.metrics[1:]] == list(VOC_CLASSES)
    # the transcribed per-class figures average to the paper's mAP (all are rounded to 0.1)
    assert np.mean([table.paper["full"][m] for m in table.metrics[1:]]) == pytest.approx(94.9, abs=0.1)


def fake_run(run_dir, class_names, seed=0):
    """A finished run's files: test metrics of random scores, and a two-epoch history."""
    rng = np.random.default_rng(seed)
    targets = rng.random((30, len(class_names))) < 0.3
    targets[0] = True  # every class has a positive
    metrics = compute_all_metrics(rng.normal(size=targets.shape) + 2 * targets, targets,
                                  class_names=class_names, from_logits=True)
    run_dir.mkdir(parents=True)
    (run_dir / "test_metrics.json").write_text(json.dumps(metrics))
    (run_dir / "history.json").write_text(json.dumps([{"epoch": 1, "val_mAP": 0.5}, {"epoch": 2, "val_mAP": 0.4}]))
    return metrics


def test_run_writes_a_results_file_per_setting_and_collect_fills_only_those(tmp_path, monkeypatch, capsys):
    calls = []

    def stand_in_for_training(argv):
        args = resolved(argv)
        calls.append(args)
        fake_run(tmp_path / "runs" / args.out.split("/")[-1], list(VOC_CLASSES), seed=len(calls))
        return 0

    monkeypatch.setattr(reproduce, "train_main", stand_in_for_training)
    runs, results = tmp_path / "runs", tmp_path / "results"
    assert reproduce.main(["run", "--table", "5", "--setting", "label", "--setting", "none", "--data-root",
                           str(tmp_path / "voc"), "--runs", str(runs), "--results", str(results),
                           "--", "--workers", "8"]) == 0
    assert [(a.embeddings, a.workers, a.data_root) for a in calls] == [
        ("label", 8, str(tmp_path / "voc")), ("none", 8, str(tmp_path / "voc"))]
    assert sorted(p.name for p in results.iterdir()) == ["table5-label.json", "table5-none.json"]

    record = json.loads((results / "table5-label.json").read_text())
    assert set(record) >= set(reproduce.REQUIRED_KEYS)
    assert (record["format"], record["table"], record["setting"], record["dataset"]) == (
        reproduce.RESULT_FORMAT, "5", "label", "voc2007")
    assert record["config"]["embeddings"] == "label" and record["config"]["image_size"] == 448
    assert record["extra_train_options"] == ["--workers", "8"]
    assert record["selection"] == {"best_epoch": 1, "val_mAP": 0.5, "epochs_trained": 2}
    assert record["command"].startswith("python -m msrn_core.running.train --dataset voc2007")
    assert record["hardware"]["processes"] == 1 and "torch" in record["hardware"]
    assert set(record["commit"]) == {"hash", "dirty"} and "T" in record["date"]

    capsys.readouterr()
    assert reproduce.main(["collect", "--results", str(results), "--out", str(tmp_path / "t.md")]) == 0
    markdown = capsys.readouterr().out
    assert (tmp_path / "t.md").read_text() == markdown
    table5 = markdown[markdown.index("**Table 5"):markdown.index("**Table 6")].splitlines()
    assert table5[2] == "| | no LGE | label-E | group-E | MSRN |"
    assert table5[4] == "| paper | 91.75 | 94.42 | 94.20 | 94.85 |"
    none = json.loads((results / "table5-none.json").read_text())["metrics"]["mAP"]
    # measured cells from the results files; settings not run stay empty
    assert table5[5] == f"| this repository, recipe paper | {100 * none:.2f} | {100 * record['metrics']['mAP']:.2f} |  |  |"
    table1 = markdown[:markdown.index("**Table 2")].splitlines()
    assert table1[2].startswith("| | mAP | aeroplane | bicycle |") and table1[4].startswith("| paper | 94.9 | 100.0 |")
    assert table1[5] == "| this repository, recipe paper |" + "  |" * 21
    assert "- label-E: commit" in markdown and "extra options --workers 8" in markdown


def test_metric_lookup_reads_per_class_ap_and_leaves_undefined_empty():
    metrics = {"mAP": 0.5, "per_class_ap": {"cat": 0.25, "dog": None}, "OF1": float("nan")}
    assert reproduce.metric_percent(metrics, "mAP") == 50.0
    assert reproduce.metric_percent(metrics, "AP cat") == 25.0
    assert reproduce.metric_percent(metrics, "AP dog") is None
    assert reproduce.metric_percent(metrics, "OF1") is None


def test_collect_names_a_bad_results_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no results folder"):
        reproduce.collect(tmp_path / "missing")
    (tmp_path / "table5-none.json").write_text("{not json")
    with pytest.raises(reproduce.ResultsFileError, match="table5-none.json is not readable JSON"):
        reproduce.collect(tmp_path)
    (tmp_path / "table5-none.json").write_text(json.dumps({"format": reproduce.RESULT_FORMAT, "table": "5"}))
    with pytest.raises(reproduce.ResultsFileError, match="missing: setting, dataset"):
        reproduce.collect(tmp_path)
    record = {key: {} for key in reproduce.REQUIRED_KEYS}
    record.update(format=reproduce.RESULT_FORMAT, table="5", setting="last1")
    (tmp_path / "table5-none.json").write_text(json.dumps(record))
    with pytest.raises(reproduce.ResultsFileError, match="table 5 has no setting 'last1'"):
        reproduce.collect(tmp_path)


def test_list_prints_a_train_command_per_setting(capsys):
    assert reproduce.main(["list", "--table", "6"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and all("python -m msrn_core.running.train --dataset voc2007" in line for line in lines)
    assert "--branches 1 2 3 4" in lines[-1]
    with pytest.raises(ValueError, match="reproducible tables are"):
        reproduce.find_setting("3", "full")


def test_options_the_paper_recipe_fixes_are_refused(tmp_path):
    with pytest.raises(SystemExit, match="--batch-size, --epochs cannot change a paper run"):
        reproduce.main(["run", "--table", "5", "--runs", str(tmp_path), "--", "--epochs", "2", "--batch-size=4"])
    assert not any(tmp_path.iterdir())
    reproduce.check_extra_options(["--workers", "8", "--amp", "bf16"])  # allowed


def test_the_authors_table_resolves_to_the_authors_recipe():
    from msrn_core.running.recipes import AUTHORS_VOC

    setting = reproduce.find_setting("authors-voc2007", "full")
    args = resolved(reproduce.train_arguments(setting, runs_dir="runs/r"))
    assert (args.authors, args.model, args.dataset, args.label_features) == (True, "msrn", "voc2007", "glove")
    assert (args.backbone, args.pretrained, args.image_size, args.batch_size, args.epochs, args.lr,
            args.backbone_lr_mult, args.lr_step, args.amp, args.compactness_weight) == (
        "resnet101", True, 448, 16, 60, 0.1, 0.1, 30, "fp16", 1e-4)
    assert train.cli_model_config(args) == AUTHORS_VOC.model_config(branch_stages=(2, 3, 4))
    assert train.cli_model_config(args).label_projection == 256
    assert args.out == "runs/r/voc2007-msrn-authors"
    markdown = reproduce.table_markdown(reproduce.TABLES["authors-voc2007"], {})
    assert "| this repository, recipe authors-voc |" in markdown
    assert "recipe dsdl-authors" in reproduce.table_markdown(reproduce.TABLES["dsdl-voc2007"], {})
