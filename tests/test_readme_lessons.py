"""The lessons as README.md and benchmarks/README.md tell them are the committed measurements.

The notebooks read every number from ``figures/lessons.json`` and ``figures/ablation_study.json``;
the two READMEs are written by hand, so this test reads the same files and looks for each number
where the README states it. A study re-run without the README updated fails here.
"""
import json
from pathlib import Path

import numpy as np
import pytest

from msrn_core.running import ablation_study

ROOT = Path(__file__).resolve().parents[1]
LESSONS = json.loads((ROOT / "figures" / "lessons.json").read_text())
STUDY = json.loads((ROOT / "figures" / "ablation_study.json").read_text())
README = (ROOT / "README.md").read_text()
BENCHMARKS = (ROOT / "benchmarks" / "README.md").read_text()


def mean(values) -> str:
    return f"{100 * np.mean(values):.1f}"


def mean_std(values) -> str:
    return f"{mean(values)} ± {100 * np.std(values, ddof=1):.1f}"


def study_values(setting: str, key: str) -> list[float]:
    return [row[key] for row in STUDY["runs"] if row["setting"] == setting]


def readme_lessons() -> list[str]:
    test_map, ablations, pointing = LESSONS["test_map"], LESSONS["ablations"], LESSONS["pointing_game"]
    return [
        f"test mAP {mean_std(test_map['msrn'])} against {mean_std(test_map['plain'])} "
        f"(ML-GCN {mean_std(test_map['mlgcn'])}, {len(test_map['mlgcn'])} seeds); validation "
        f"{mean(study_values('full', 'val_map'))} against {mean(study_values('plain', 'val_map'))}",
        f"no LGE {mean(ablations['none'])}, label-E only {mean(ablations['label'])}, "
        f"group-E only {mean(ablations['group'])}, full {mean(ablations['full'])}",
        " / ".join(mean(ablations[key]) for key in ("last1", "last2", "last3", "all4")) + " |",
        f"ARI **{LESSONS['groups_ari']:.3f}**",
        " / ".join(f"{100 * pointing[key]:.1f}" for key in ("layer2", "layer3", "layer4")) + " % |",
        f"**{100 * pointing['plain_cam']:.1f}**, ",
        f"{100 * pointing['centre']:.1f}, {100 * pointing['random']:.1f} % |",
    ]


@pytest.mark.parametrize("fragment", readme_lessons())
def test_the_readme_lessons_table_states_lessons_json(fragment):
    assert fragment in README, f"README.md should say {fragment!r} (figures/lessons.json)"


def benchmarks_rows() -> list[str]:
    rows = []
    for setting in ablation_study.SETTINGS:
        test = study_values(setting, "test_map")
        if len(test) > 1:
            rows.append(f"| {len(test)} | {mean_std(test)} ({100 * min(test):.1f}-{100 * max(test):.1f}) | "
                        f"{mean(study_values(setting, 'val_map'))} |")
    return rows


@pytest.mark.parametrize("row", benchmarks_rows())
def test_the_benchmarks_ablation_table_states_the_study(row):
    assert row in BENCHMARKS, f"benchmarks/README.md's ablation table should hold {row!r} (figures/ablation_study.json)"


def test_the_study_behind_the_lessons_was_trained_in_the_precision_it_records():
    assert STUDY.get("precision") in {"float32", "bfloat16"}
    assert LESSONS["test_map"]["msrn"][0] == pytest.approx(study_values("full", "test_map")[0])


def printed_table(notebook: str, header_start: str) -> list[list[str]]:
    """The rows (cells split at runs of 2+ spaces) of the first printed table of a committed notebook
    whose header starts so."""
    import re

    import nbformat

    cells = nbformat.read(ROOT / "notebooks" / notebook, as_version=4).cells
    for cell in cells:
        for output in cell.get("outputs", []):
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            lines = text.splitlines()
            if lines and lines[0].split() and " ".join(lines[0].split()).startswith(header_start):
                return [parts for parts in (re.split(r"\s{2,}", line.strip()) for line in lines[1:]) if len(parts) > 1]
    raise AssertionError(f"{notebook} prints no table headed {header_start!r}")


def test_the_readme_states_notebook_07s_and_08s_committed_results():
    metrics = {row[0]: row[1:] for row in printed_table("07_semantic_dictionary_learning.ipynb", "mAP CP CR CF1 OP OR OF1")}
    dsdl, mlgcn, msrn = metrics["DSDL"], metrics["ML-GCN"], metrics["MSRN"]
    assert (f"DSDL reaches **{dsdl[0]}** test\nmAP (CF1 {dsdl[3]}, OF1 {dsdl[6]}), between ML-GCN ({mlgcn[0]}) "
            f"and MSRN ({msrn[0]})") in README
    zero_shot = printed_table("08_zero_shot_with_sdl.ipynb", "mAP P@3 R@3")
    sdl = next(i for i, row in enumerate(zero_shot) if row[0] == "SDL (zero-shot)")
    plain = next(i for i, row in enumerate(zero_shot) if row[0].startswith("plain ResNet (saw all tags)"))
    plain_zsl = zero_shot[plain][1 if zero_shot[plain][0].endswith("ZSL") else 2]  # its name runs into "ZSL"
    assert zero_shot[sdl][1] == "ZSL" and zero_shot[sdl + 1][0] == "GZSL" and zero_shot[plain + 1][0] == "GZSL"
    assert f"ZSL mAP **{float(zero_shot[sdl][2]):.1f}** (GZSL {float(zero_shot[sdl + 1][1]):.1f})" in README
    assert (f"plain ResNet that saw all tags reaches {float(plain_zsl):.1f} ({float(zero_shot[plain + 1][1]):.1f})"
            in README)
