"""The mode a run is in, and the figures folder it writes to.

Small mode is the smoke-test size (``MSRN_SMALL=1``, a notebook's ``SMALL`` parameter): the
recipes pick their tiny sizes from it (``running.recipes``) and figures go beside the runs, never
into the committed ``figures/``.

- :func:`parse_small_mode`, :func:`small_mode_requested`  the one reading of the mode
- :func:`use_small_mode`   what a notebook's setup cell settles for the rest of its kernel
- :func:`figures_dir`      where figures go now; :data:`FIGURES_DIR` the committed folder

``FIGURES_DIR`` is ``figures/`` at the repository root when running from a checkout, else
``./figures``; the environment variable ``MSRN_FIGURES_DIR`` overrides it. In small mode (from any
client: the runner, JupyterLab, papermill, nbmake) figures go to ``runs/notebooks/small/figures``
instead, so that a smoke test never overwrites a committed figure.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .utils import project_root

SMALL_ENV = "MSRN_SMALL"
_FALSE_WORDS = ("", "0", "false", "no", "off")
_TRUE_WORDS = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class SmallMode:
    """Whether the smoke-test size is on, and what said so (for the notebooks' mode line)."""
    on: bool
    source: str  # "parameter SMALL=True", "MSRN_SMALL=1", "MSRN_SMALL unset"


_settled: SmallMode | None = None  # the mode a notebook's setup cell chose, see use_small_mode
_settled_device: str | None = None  # and the kind of device its kernel has ("cuda", "cpu", ...)


def parse_small_mode(small=None) -> SmallMode:
    """The one reading of small mode: the parameter ``small`` when given, else the mode a notebook's
    setup settled (:func:`use_small_mode`), else the environment variable ``MSRN_SMALL``.

    ``small`` may be a bool, 0/1 or a word ("true", "0", ...), as papermill's ``-p``/``-r`` pass it.
    """
    if small is not None:
        return SmallMode(_as_bool(small, "parameter SMALL"), f"parameter SMALL={small!r}")
    if _settled is not None:
        return _settled
    value = os.environ.get(SMALL_ENV)
    if value is None:
        return SmallMode(False, f"{SMALL_ENV} unset")
    return SmallMode(_as_bool(value, SMALL_ENV), f"{SMALL_ENV}={value}")


def _as_bool(value, name: str) -> bool:
    if isinstance(value, (bool, int)) and not isinstance(value, float):
        return bool(value)
    word = str(value).strip().lower()
    if word in _FALSE_WORDS:
        return False
    if word in _TRUE_WORDS:
        return True
    raise ValueError(f"{name} is {value!r}: use True/False (or 1/0), or None to read {SMALL_ENV}")


def use_small_mode(small=None, device=None) -> SmallMode:
    """Settle the mode (and the kernel's device) for the rest of this process, a notebook's kernel:
    later calls that pass no ``small`` (the figures folder) follow the mode, and
    ``running.recipes.default_recipe`` picks the recipe of that device."""
    global _settled, _settled_device
    _settled, _settled_device = None, None
    _settled = parse_small_mode(small)
    _settled_device = None if device is None else str(getattr(device, "type", device))
    return _settled


def small_mode_requested(small=None) -> bool:
    """True when small mode is on: ``small`` if given, else the settled mode, else ``MSRN_SMALL``."""
    return parse_small_mode(small).on


def settled_device() -> str | None:
    """The kind of device the notebook's kernel settled (``"cuda"``, ``"cpu"``, ...), None before."""
    return _settled_device


def _default_figures_dir() -> Path:
    """``MSRN_FIGURES_DIR`` if set, else the checkout's ``figures/``, else ``./figures``."""
    if os.environ.get("MSRN_FIGURES_DIR"):
        return Path(os.environ["MSRN_FIGURES_DIR"])
    root = Path(__file__).resolve().parents[1]
    return root / "figures" if (root / "pyproject.toml").exists() else Path.cwd() / "figures"


FIGURES_DIR = _default_figures_dir()


def small_figures_dir() -> Path:
    """Where small mode's figures go: beside the runs, never into the committed ``figures/``."""
    return project_root() / "runs" / "notebooks" / "small" / "figures"


def figures_dir() -> Path:
    """Where figures go now (read at call time): ``MSRN_FIGURES_DIR`` if set, else
    :func:`small_figures_dir` in small mode (:func:`small_mode_requested`), else :data:`FIGURES_DIR`."""
    if os.environ.get("MSRN_FIGURES_DIR"):
        return Path(os.environ["MSRN_FIGURES_DIR"])
    return small_figures_dir() if small_mode_requested() else FIGURES_DIR
