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


# --------------------------------------------------------------------------- Colab: keep the kernel's packages
import importlib.util

from packaging.requirements import Requirement

spec = importlib.util.spec_from_file_location("check_colab_install", ROOT / "tools" / "check_colab_install.py")
check_colab_install = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_colab_install)

# What a Colab runtime ships (its kernel stack and torch); the runtime dependencies must accept them.
COLAB_VERSIONS = {"ipywidgets": "7.7.1", "torch": "2.5.1", "torchvision": "0.20.1"}


def test_runtime_dependencies_leave_the_kernel_stack_alone():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {check_colab_install.canonical(Requirement(r).name): Requirement(r) for r in project["dependencies"]}
    kernel_stack = set(check_colab_install.PROTECTED) - {"ipywidgets", "torch", "torchvision"}
    assert not kernel_stack & set(runtime), "Jupyter's own packages belong in the lab/dev extras"
    for name, version in COLAB_VERSIONS.items():
        assert runtime[name].specifier.contains(version), f"{runtime[name]} would replace Colab's {name} {version}"
    assert runtime["ipywidgets"].specifier.contains("8.1.5")  # and JupyterLab's 8.x
    dev = {check_colab_install.canonical(Requirement(r).name) for r in project["optional-dependencies"]["dev"]}
    assert {"ipykernel", "nbclient", "nbformat", "papermill", "nbmake"} <= dev  # the notebook runners


def test_the_colab_check_names_each_replaced_kernel_package():
    def report(*installs):
        return {"install": [{"metadata": {"name": name, "version": version}} for name, version in installs]}

    clean = report(("seaborn", "0.13.2"), ("msrn-tutorial", "0.1.0"))
    assert check_colab_install.replaced_kernel_packages(clean) == {}
    broken = report(("ipykernel", "7.4.0"), ("jupyter_client", "8.10.0"), ("seaborn", "0.13.2"), ("Tornado", "6.6.1"))
    assert check_colab_install.replaced_kernel_packages(broken) == {
        "ipykernel": "7.4.0", "jupyter-client": "8.10.0", "tornado": "6.6.1"}
def test_pyproject_packages_every_subpackage_of_msrn_core():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "msrn_core").rglob("__init__.py")}
    assert listed == found, "list every folder of msrn_core with an __init__.py in [tool.setuptools] packages"
