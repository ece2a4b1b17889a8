"""Small helpers used everywhere: seeding, device choice, atomic writes, output folders."""
from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import pickle
import random
import re
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


class OutputWriteError(OSError):
    """A file could not be written; the message names it, the cause and what was kept."""

    def __init__(self, number: int | None, message: str):
        super().__init__(message)
        self.errno = number


# what an OSError's errno means for a run's outputs, in words
_OS_ERROR_CAUSES = {
    errno.EROFS: "the file system is read-only",
    errno.ENOSPC: "no space left on the device",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.ENOTDIR: "a path component is a file, not a folder",
}


def describe_os_error(error: OSError) -> str:
    """The cause of ``error`` in words ("no space left on the device", ...), with its errno."""
    cause = _OS_ERROR_CAUSES.get(error.errno, error.strerror or str(error))
    return f"{cause} ([Errno {error.errno}])" if error.errno is not None else cause


def default_file_mode() -> int:
    """The mode ``open()`` would give a new file: 0o666 minus the user's umask."""
    mask = os.umask(0o022)  # reading the umask means setting it; it is put back at once
    os.umask(mask)
    return 0o666 & ~mask


TEMPORARY_PATTERN = ".{name}.*.tmp"  # the temporary files of atomic_write_bytes


def atomic_write_bytes(path: str | os.PathLike, write_fn) -> None:
    """Call ``write_fn(file_object)`` on a temporary file beside ``path``, then rename it.

    A crash half-way leaves the previous file intact: the rename is atomic on POSIX and Windows.
    The file gets the user's normal permissions (the umask), not the temporary file's 0600. An
    ``OSError`` (read-only folder, full disk) becomes an :class:`OutputWriteError` naming the
    file, the cause and that the previous file is unchanged.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            write_fn(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException as error:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(error, OSError) and not isinstance(error, OutputWriteError):
            kept = (f"the previous {path.name} is intact" if path.exists()
                    else f"no earlier {path.name} existed")
            raise OutputWriteError(error.errno, f"could not write {path}: {describe_os_error(error)}; {kept}. "
                                   "Free some space or pass a writable folder (--out), then run the same "
                                   "command again") from error
        raise


def remove_orphan_temporaries(folder: str | os.PathLike, names) -> list[Path]:
    """Delete the temporary files an interrupted :func:`atomic_write_bytes` of ``names`` left in
    ``folder`` (e.g. ``.last.pt.k3j9.tmp``); returns what was removed."""
    removed = []
    for name in names:
        for leftover in Path(folder).glob(TEMPORARY_PATTERN.format(name=name)):
            try:
                leftover.unlink()
                removed.append(leftover)
            except OSError:  # another process got there first, or the folder is read-only
                pass
    return removed


def check_writable_folder(folder: str | os.PathLike, option: str = "--out") -> Path:
    """Create ``folder`` and prove it takes a file, before any work is spent on what goes there.

    Raises :class:`OutputWriteError` naming the folder, the cause and the fix.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(prefix=".write-test.", suffix=".tmp", dir=folder) as probe:
            probe.write(b"\0" * 4096)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as error:
        raise OutputWriteError(error.errno, f"cannot write to {folder} ({option}): {describe_os_error(error)}. "
                               f"Pass a writable folder with {option}") from error
    return folder


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically."""
    data = json.dumps(obj, indent=2, sort_keys=False, default=_json_default).encode()
    atomic_write_bytes(path, lambda handle: handle.write(data))


def dataclass_changes(recorded: Any, current: Any) -> dict[str, tuple[Any, Any]]:
    """The fields of the dataclass ``current`` whose value differs from ``recorded`` (the JSON dict
    written for an earlier one; a field it lacks differs): name -> (recorded value, current value),
    compared as JSON holds them (tuples as lists)."""
    wanted = json.loads(json.dumps(dataclasses.asdict(current)))
    missing = object()
    return {name: (recorded.get(name), value) for name, value in wanted.items()
            if recorded.get(name, missing) != value}


def read_json(path: str | os.PathLike, fix: str = "regenerate or download it again") -> Any:
    """The JSON content of ``path``; a truncated or corrupt file raises a ValueError naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}): the file is truncated or corrupt; {fix}") from None


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class UnsafePickleError(ValueError):
    """A file holds objects other than tensors and plain values: it was not unpickled.

    ``blocked`` names the object (``posix.system``, ...); the message says where and why.
    """

    def __init__(self, path: Path, blocked: str, message: str):
        super().__init__(message)
        self.path, self.blocked = path, blocked


class UnreadableTensorFileError(ValueError):
    """A file ``torch.load`` cannot read at all (truncated, corrupt, not a torch file)."""

    def __init__(self, path: Path, reason: str, message: str):
        super().__init__(message)
        self.path, self.reason = path, reason


def load_tensors_only(path: str | os.PathLike, map_location="cpu", fix: str = "delete it and write it again"):
    """The content of the torch file ``path``, unpickled safely: ``torch.load(weights_only=True)``.

    Only tensors and plain values (numbers, strings, lists, dicts) are rebuilt, so a crafted file
    cannot run code: a file holding anything else raises :class:`UnsafePickleError`, a truncated
    or corrupt one :class:`UnreadableTensorFileError`; both messages name the file and ``fix``
    (never the advice torch prints, to load it with ``weights_only=False``: that runs its code).
    """
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        blocked = blocked_global(error)
        if blocked is not None:
            raise UnsafePickleError(path, blocked, (
                f"{path} was not loaded: it holds objects other than tensors and plain values ({blocked}), "
                f"and unpickling them could run code; {fix}")) from None
        reason = f"UnpicklingError: {torch_load_reason(error)}"
    except Exception as error:  # a truncated zip, an empty file, a text file ...
        reason = f"{type(error).__name__}: {torch_load_reason(error)}"
    raise UnreadableTensorFileError(path, reason, f"{path} is not readable ({reason}): it is truncated or "
                                    f"corrupt; {fix}") from None


def blocked_global(error: BaseException) -> str | None:
    """The object a weights-only load refused (``posix.system``, ...), or None for other failures."""
    text = str(error)
    found = (re.search(r"unsupported GLOBAL (\S+)", text, re.IGNORECASE)
             or re.search(r"Unsupported global: GLOBAL (\S+)", text, re.IGNORECASE))
    if found:
        return found.group(1).rstrip(".,")
    if re.search(r"unsupported global|global .* is blocked", text, re.IGNORECASE):
        return "a Python object"
    return None


# torch's own advice around a weights-only failure: loading with weights_only=False runs the file's code
_TORCH_ADVICE = ("weights only load failed", "weights_only", "check the documentation", "please file an issue")


def torch_load_reason(error: BaseException) -> str:
    """The informative part of a ``torch.load`` error, without torch's advice to load unsafely."""
    text = str(error)
    found = re.search(r"WeightsUnpickler error:\s*(.+)", text, re.DOTALL)
    lines = [line.strip() for line in (found.group(1) if found else text).splitlines() if line.strip()]
    kept = [line for line in lines if not any(advice in line.lower() for advice in _TORCH_ADVICE)]
    if not kept:
        return "the file ends early" if isinstance(error, EOFError) else type(error).__name__
    return kept[0].split(". ")[0]  # torch's guesses at the cause follow the first sentence


def _json_default(value: Any):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")
