"""benchmarks/gpu_check.py: its dry run (the same code on the CPU at tiny sizes) and its report."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_run_measures_every_model_and_writes_its_report(tmp_path):
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    completed = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--dry-run", "--out", str(tmp_path)],
                               cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    from benchmarks.gpu_check import available_kinds

    assert list(report["throughput"]) == available_kinds() and {"msrn", "plain", "mlgcn"} <= set(available_kinds())
    for row in report["throughput"].values():
        assert row["train_img_s"] > 0 and row["inference_img_s"] > 0 and row["peak_memory_GiB"] is None
    epoch = report["epoch"]
    assert set(epoch["models"]) == {"msrn", "plain", "mlgcn"}
    assert epoch["projected_notebook05_seconds"] >= sum(r["epoch_seconds"] for r in epoch["models"].values())
    assert report["device"]["device"] == "cpu" and report["dry_run"] is True
    table = (tmp_path / "gpu_check.md").read_text()
    assert "| msrn |" in table and "notebook 05's training, projected" in table


def test_authors_side_by_side_needs_cuda(tmp_path):
    import torch

    from benchmarks.gpu_check import authors_throughput, dry_run_sizes

    row = authors_throughput(str(tmp_path), dry_run_sizes(), torch.device("cpu"), None, torch.contiguous_format)
    assert "needs a CUDA GPU" in row["skipped"]
