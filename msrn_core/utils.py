"""Small helpers used everywhere: seeding, device choice, atomic writes."""
from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch


def project_root() -> Path:
    """The repository's root when running from a checkout, else the working directory.

    Notebooks run with ``notebooks/`` as their working directory; data, runs and figures still
    belong at the top of the repository.
    """
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").exists() else Path.cwd()


def display_path(path: str | os.PathLike) -> str:
    """``path`` as a reader should see it in a printed line: relative to the checkout (or the
    working directory) when inside it, so that committed notebook outputs name no machine's folders."""
    path = Path(path)
    for base in (project_root(), Path.cwd()):
        try:
            return str(path.resolve().relative_to(base.resolve()))
        except ValueError:
            continue
    return str(path)


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) so runs repeat."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def worker_processes(limit: int = 8) -> int:
    """One process per CPU core, at most ``limit``: for work that keeps every core busy (drawing
    scenes, decoding and augmenting 448 px images for a GPU)."""
    return min(limit, os.cpu_count() or 1)


def get_device(preferred: str | None = None) -> torch.device:
    """``cuda`` if available, else ``mps`` if available, else ``cpu`` (or ``preferred``)."""
    if preferred and preferred != "auto":
        return torch.device(preferred)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def atomic_write_bytes(path: str | os.PathLike, write_fn) -> None:
    """Call ``write_fn(file_object)`` on a temporary file beside ``path``, then rename it.

    A crash half-way leaves the previous file intact: the rename is atomic on POSIX and Windows.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write_fn(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically."""
    data = json.dumps(obj, indent=2, sort_keys=False, default=_json_default).encode()
    atomic_write_bytes(path, lambda handle: handle.write(data))


def _json_default(value: Any):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")
