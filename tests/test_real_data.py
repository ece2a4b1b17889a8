"""The notebooks' real-photo path: what it announces, and notebooks 05 and 06 on a VOC fixture tree."""
from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
import torch

from msrn_core.running.real_data import SCHEDULES, RealDataRun
from photo_fixtures import make_voc_tree


def test_scenes_skips_the_section_and_says_how_to_switch():
    run = RealDataRun("scenes", device=torch.device("cpu"))
    assert not run.active and "DATASET = 'voc2007'" in run.describe()


def test_unknown_dataset_or_schedule_is_named():
    with pytest.raises(ValueError, match="DATASET must be one of 'scenes', 'voc2007', 'coco2014', 'folder'"):
        RealDataRun("imagenet")
    with pytest.raises(ValueError, match="SCHEDULE must be 'auto' or one of 'short', 'paper', 'cpu'"):
        RealDataRun("voc2007", schedule="long")


def test_voc_on_a_gpu_announces_downloads_and_time():
    with mock.patch("torch.cuda.get_device_name", return_value="NVIDIA H100 80GB HBM3"):
        run = RealDataRun("voc2007", "data", device=torch.device("cuda"))
        text = run.describe()
    assert run.schedule == "short" and run.recipe.epochs == 6 and run.recipe.image_size == 448
    assert "VOCtrainval_06-Nov-2007.tar: 460 MB" in text and "VOCtest_06-Nov-2007.tar: 451 MB" in text
    assert "ImageNet weights of resnet101" in text
    # 4510 training images at 110 images/s (+ 501 validation images at 3 x that rate): 42 s per epoch
    assert "about 1 min per epoch (110 images/s, measured)" in text
    assert SCHEDULES["paper"].epochs == 90


def test_cpu_and_unknown_gpu_estimates():
    assert "12 images/s, estimate for 2 cores" in RealDataRun("voc2007", device=torch.device("cpu")).describe()
    with mock.patch("torch.cuda.get_device_name", return_value="Some Future GPU"):
        text = RealDataRun("coco2014", device=torch.device("cuda")).describe()
    assert "no figure for this device" in text and "train2014.zip: 13.5 GB" in text


def test_small_mode_announces_no_dataset_download(tmp_path):
    text = RealDataRun("voc2007", tmp_path, small=True, device=torch.device("cpu")).describe()
    assert "downloads: none" in text and "smoke-test" in text


def test_notebooks_05_and_06_run_on_a_voc_fixture_in_small_mode(tmp_path, monkeypatch):
    from msrn_core.running.run_notebooks import NOTEBOOK_DIR, execute_notebook

    make_voc_tree(tmp_path / "data", num_trainval=60, num_test=16)
    monkeypatch.setenv("MSRN_DATASET", "voc2007")
    monkeypatch.setenv("MSRN_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("MSRN_FIGURES_DIR", str(tmp_path / "figures"))
    texts = {}
    for name in ("05_train_msrn", "06_evaluate_per_class_ap_and_attention"):
        executed = execute_notebook(NOTEBOOK_DIR / f"{name}.ipynb", small=True, timeout=3600, write=False)
        outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs]
        errors = [o for o in outputs if o.output_type == "error"]
        assert not errors, errors[0]["evalue"] if errors else ""
        texts[name] = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "dataset voc2007 in" in texts["05_train_msrn"] and "MSRN on voc2007" in texts["05_train_msrn"]
    assert "pointing game on" in texts["06_evaluate_per_class_ap_and_attention"]
    assert "MSRN on voc2007" in texts["06_evaluate_per_class_ap_and_attention"]
    figures = {path.name for path in Path(tmp_path / "figures").glob("*.png")}
    assert {"06_real_attention_voc2007.png", "06_predict_example.png"} <= figures
