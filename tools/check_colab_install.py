"""Check that installing the package into a Colab-like environment replaces nothing of the kernel.

Colab runs its notebooks in a kernel built from ipykernel 6.x, jupyter_client 7.x, tornado 6.3,
pyzmq, traitlets and ipywidgets 7.x, and ships its own torch. ``pip install`` of this package must
leave all of them as they are: replacing a kernel package under the running kernel can crash it.

    python tools/check_colab_install.py /path/to/colab-like-venv/bin/python

runs ``pip install --dry-run --report`` of this checkout with that interpreter (pip asks the
package index for the dependencies it lacks; nothing is installed) and exits 1 naming every
protected package pip would install or replace. docs/colab.md says how to build such a venv.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The kernel's stack and what Colab ships and the package must keep (canonical names).
PROTECTED = ("ipykernel", "ipython", "ipywidgets", "jupyter-client", "jupyter-core", "tornado", "pyzmq",
             "traitlets", "widgetsnbextension", "jupyterlab-widgets", "notebook", "jupyter-server",
             "nbclient", "nbformat", "matplotlib-inline", "torch", "torchvision")


def canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def planned_installs(report: dict) -> dict[str, str]:
    """``{name: version}`` of what a ``pip install --report`` would install (or reinstall)."""
    return {canonical(item["metadata"]["name"]): item["metadata"]["version"] for item in report.get("install", [])}


def replaced_kernel_packages(report: dict, protected=PROTECTED) -> dict[str, str]:
    """The protected packages among the planned installs: each would replace the kernel's own."""
    return {name: version for name, version in planned_installs(report).items() if name in protected}


def dry_run_report(python: str, target: str = str(ROOT)) -> dict:
    command = [python, "-m", "pip", "install", "--dry-run", "--quiet", "--report", "-", target]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"pip's dry run failed ({' '.join(command)}):\n{done.stderr.strip()}")
    return json.loads(done.stdout)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("python", help="the interpreter of a Colab-like venv (its bin/python)")
    parser.add_argument("--target", default=str(ROOT), help="what to install (default: this checkout)")
    args = parser.parse_args(argv)
    report = dry_run_report(args.python, args.target)
    planned = planned_installs(report)
    print(f"pip would install {len(planned)} packages: "
          + ", ".join(f"{name} {version}" for name, version in sorted(planned.items())))
    replaced = replaced_kernel_packages(report)
    if replaced:
        print("FAIL: would replace the kernel's " + ", ".join(f"{n} (-> {v})" for n, v in sorted(replaced.items())))
        return 1
    print("OK: nothing of the kernel's stack, nor torch/torchvision, would be replaced")
    return 0


if __name__ == "__main__":
    sys.exit(main())
