"""environment.yml (conda) and pyproject.toml must list the same dependencies; pyproject every package."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def normalise(requirement: str) -> str:
    name, spec = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement).groups()
    return name.lower().replace("_", "-") + spec.replace(" ", "")


def test_environment_yml_lists_the_pyproject_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = {normalise(r) for r in project["dependencies"] + extras["dev"] + extras["lab"]}
    conda = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(item["pip"] for item in conda["dependencies"] if isinstance(item, dict))
    assert {normalise(r) for r in pip_section} == wanted


def test_torch_is_never_pinned_exactly():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        if requirement.startswith(("torch", "torchvision")):
            assert "==" not in requirement, "pin ranges only, so Colab keeps its own torch"


def test_pyproject_packages_every_subpackage_of_msrn_core():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "msrn_core").rglob("__init__.py")}
    assert listed == found, "list every folder of msrn_core with an __init__.py in [tool.setuptools] packages"
