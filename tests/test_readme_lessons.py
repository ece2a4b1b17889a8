"""The lessons as README.md and benchmarks/README.md tell them are the committed measurements.

The notebooks read every number from ``figures/lessons.json`` and ``figures/ablation_study.json``;
the two READMEs are written by hand, so this test reads the same files and looks for each number
where the README states it. A study re-run without the README updated fails here.
"""
import json
import re
from pathlib import Path

import nbformat
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


def printed_texts(notebook: str):
    """The text of every output of a committed notebook, in order: what it printed, or a value's repr."""
    for cell in nbformat.read(ROOT / "notebooks" / notebook, as_version=4).cells:
        for output in cell.get("outputs", []):
            yield output.get("text") or output.get("data", {}).get("text/plain", "")


def cells_of(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def printed_table(notebook: str, header_start: str) -> list[list[str]]:
    """The rows (cells split at runs of 2+ spaces) of the first printed table of a committed notebook
    whose header starts so."""
    for text in printed_texts(notebook):
        lines = text.splitlines()
        if lines and lines[0].split() and " ".join(lines[0].split()).startswith(header_start):
            return [parts for parts in map(cells_of, lines[1:]) if len(parts) > 1]
    raise AssertionError(f"{notebook} prints no table headed {header_start!r}")


def test_the_readme_states_notebook_07s_and_08s_committed_results():
    table = printed_table("07_semantic_dictionary_learning.ipynb", "mAP CP CR CF1 OP OR OF1")
    metrics = {row[0]: row[1:] for row in table}
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


def printed_block(notebook: str, header_piece: str) -> dict[str, list[str]]:
    """Row name -> cells of the block of a committed notebook's printed DataFrame whose header line
    holds ``header_piece`` (pandas prints a wide frame in blocks of columns, separated by blank lines)."""
    for text in printed_texts(notebook):
        for block in text.split("\n\n"):
            lines = block.splitlines()
            if lines and header_piece in lines[0]:
                return {parts[0]: parts[1:] for parts in map(cells_of, lines[1:])}
    raise AssertionError(f"{notebook} prints no table with a column {header_piece!r}")


def printed_line(notebook: str, pattern: str) -> re.Match:
    for text in printed_texts(notebook):
        found = re.search(pattern, text)
        if found:
            return found
    raise AssertionError(f"{notebook} prints no line matching {pattern!r}")


NOTEBOOK_06 = "06_evaluate_per_class_ap_and_attention.ipynb"


def test_the_readme_states_notebook_06s_map_statistics():
    focus = printed_block(NOTEBOOK_06, "peak ratio (1 = flat)")
    msrn = [values for name, values in focus.items() if name.startswith("MSRN layer")]
    entropies = sorted(float(entropy) for entropy, _ in msrn)
    peaks = sorted(float(peak) for _, peak in msrn)
    cam_entropy, cam_peak = (float(v) for v in focus["plain ResNet CAM"])
    entropy = f"{entropies[0]:.3f}" + (f"-{entropies[-1]:.3f}" if entropies[-1] != entropies[0] else "")
    assert (f"normalised entropy {entropy}, peak ratio {peaks[0]:.3f}-{peaks[-1]:.3f} "
            f"(CAM: {cam_entropy:.3f}, {cam_peak:.2f})") in README
    alike = printed_line(NOTEBOOK_06, r"correlation between labels' maps ([\d.]+), plain ResNet CAM ([\d.]+)")
    assert f"(correlation {alike[1]} against {alike[2]} for the CAM, on the" in README


def test_the_readme_states_notebook_05s_gradient_norms():
    bce = printed_block("05_train_msrn.ipynb", "BCE gradient norm, step 0")
    compactness = printed_block("05_train_msrn.ipynb", "lambda x compactness gradient norm, step 0")
    clipping = printed_block("05_train_msrn.ipynb", "factor clipping")
    paper = next(name for name in bce if name.startswith("'paper' form"))
    adopted = next(name for name in bce if name.endswith("(adopted)"))
    assert (f"{float(compactness[paper][0]):.0f} / {float(compactness[adopted][0]):.1f} against the BCE's "
            f"{float(bce[paper][0]):.2f} (clipping leaves {float(clipping[paper][0]):.2f} / "
            f"{float(clipping[adopted][0]):.2f} of each step") in README


def test_the_readme_states_the_attention_variants_of_lessons_json():
    variants = LESSONS["attention_variants"]
    centre = LESSONS["pointing_game"]["centre"]
    csra, cam, msrn = variants["csra"], variants["plain_cam"], variants["msrn"]
    assert (f"pointing **{100 * csra['pointing'][0]:.1f} %** ({csra['pointing'][0] / centre:.1f} x the centre), "
            f"label-map correlation {csra['label_map_correlation']:.2f} (CAM {cam['label_map_correlation']:.2f}, "
            f"MSRN {min(msrn['label_map_correlation']):.2f}-{max(msrn['label_map_correlation']):.2f}); "
            f"test mAP {100 * csra['test_map'][0]:.1f} here, {mean_std(csra['test_map'])} over "
            f"{len(csra['test_map'])} seeds") in README
    fixed = variants["msrn_channel_fixed_0p1"]
    assert (f"temperature 0.1: {' / '.join(f'{100 * p:.1f}' for p in fixed['pointing'])} %, maps still flat "
            f"(entropy {min(fixed['normalised_entropy']):.3f}-{max(fixed['normalised_entropy']):.3f})") in README
    others = [p for key, entry in variants.items() if key.startswith("msrn_") and key != "msrn_channel_fixed_0p1"
              for p in entry["pointing"]]
    assert len(others) >= 12  # sqrt(d), learned temperature and the per-label softmax, three branches each
    assert (f"sqrt(d), learned temperature, per-label softmax: {100 * min(others):.1f}-{100 * max(others):.1f} %: "
            "**no MSRN variant points**") in README


def test_benchmarks_readme_states_notebook_06s_gain_trends():
    degree = r"labels it gathers from \(graph degree\)"

    def trend(gain, quantity):
        found = printed_line(NOTEBOOK_06, rf"{gain} against {quantity}: rho ([+-][\d.]+), p ([\d.]+)")
        return found[1], f"(p {found[2]})"

    both = printed_line(NOTEBOOK_06, r"the two quantities themselves: rho ([+-][\d.]+), p ([\d.]+)")
    expected = (f"MSRN - plain {' '.join(trend('MSRN - plain', 'training images'))} with the count and "
                f"{' '.join(trend('MSRN - plain', degree))} with the degree; CSRA - plain "
                f"{' '.join(trend('CSRA - plain', 'training images'))} and {' '.join(trend('CSRA - plain', degree))}; "
                f"the two quantities themselves correlate ({both[1]}, p {both[2]})")
    assert expected in " ".join(BENCHMARKS.split())
