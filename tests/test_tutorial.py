"""The main job (``make tutorial``) end to end in its small mode."""
import json

from msrn_core import tutorial

EXPECTED_FIGURES = {
    "tutorial_samples", "tutorial_cooccurrence_graph", "tutorial_training_curves", "tutorial_per_class_ap",
    "tutorial_diffpool_assignment", "tutorial_diffpool_groups", "tutorial_attention_0",
}


def test_main_job_small_mode_trains_both_models_and_writes_figures(tmp_path, capsys):
    runs, figures = tmp_path / "runs", tmp_path / "figures"
    assert tutorial.main(["--small", "--data-root", str(tmp_path / "data"), "--runs", str(runs),
                          "--figures", str(figures), "--label-features", "onehot", "--workers", "0"]) == 0
    printed = capsys.readouterr().out
    assert "Model" in printed and "msrn" in printed and "plain" in printed
    assert EXPECTED_FIGURES <= {p.stem for p in figures.glob("*.png")}
    summary = json.loads((runs / "summary.json").read_text())
    assert set(summary["metrics"]) == {"msrn", "plain"}
    for kind in ("msrn", "plain"):
        assert (runs / kind / "best.pt").exists()
        assert 0 <= json.loads((runs / kind / "test_metrics.json").read_text())["mAP"] <= 1

    # a second run loads the finished checkpoints instead of training again
    tutorial.main(["--small", "--data-root", str(tmp_path / "data"), "--runs", str(runs),
                   "--figures", str(figures), "--label-features", "onehot", "--workers", "0"])
    assert "loaded the finished run" in capsys.readouterr().out
