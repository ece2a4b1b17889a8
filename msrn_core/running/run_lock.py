"""One run per run folder: a lock that a second run on the same ``--out`` meets at once.

Two runs writing one folder (two terminals, or a notebook and a command line) would overwrite
each other's ``last.pt``, ``best.pt`` and ``history.json``. A run holds ``<folder>/.run.lock``
while it works: an operating-system lock on the open file (``fcntl.flock``), which the kernel
drops when the process ends in any way, kill -9 included, plus a line naming the process (pid,
host, start time, command) for the message the second run prints. A lock file left by a
process that crashed is stale: its process no longer runs, and the next run clears it and says so.

The lock is re-entrant within a process (the command line holds it from its first check to the
last file written; the training loop inside takes it again). Under ``torchrun`` the main
process alone takes it. On systems without ``fcntl`` (Windows) the folder is not locked.
"""
from __future__ import annotations

import contextlib
import datetime
import functools
import inspect
import json
import os
import socket
import sys
from pathlib import Path

from . import distributed
from ..utils import check_writable_folder

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_NAME = ".run.lock"

_held: dict[Path, list] = {}  # folder -> [open lock file, depth]: what this process holds


class RunFolderInUseError(RuntimeError):
    """Another process is running in this run folder; the message names it and the fix."""


def describe_holder(record: dict) -> str:
    """``process 1234 on host, started 2026-12-04 23:41 UTC (python -m ...)``."""
    text = f"process {record.get('pid', '?')} on {record.get('host', '?')}, started {record.get('started', '?')}"
    return text + (f" ({record['command']})" if record.get("command") else "")


def _read_record(handle) -> dict:
    handle.seek(0)
    try:
        record = json.loads(handle.read() or "{}")
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def _this_process() -> dict:
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:200] if sys.argv and sys.argv[0] else ""
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": started, "command": command}


def acquire_run_folder(folder: str | os.PathLike) -> None:
    """Take the lock of ``folder`` (created and proved writable first) or raise
    :class:`RunFolderInUseError` naming the process that holds it; a stale lock is cleared."""
    folder = check_writable_folder(folder)
    key = folder.resolve()
    if key in _held:
        _held[key][1] += 1
        return
    if fcntl is None:  # pragma: no cover - Windows
        _held[key] = [None, 1]
        return
    handle = open(key / LOCK_NAME, "a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = _read_record(handle)
        handle.close()
        raise RunFolderInUseError(
            f"{folder} is in use by another run: {describe_holder(holder)}. Wait for it to finish, or pass "
            "another --out folder") from None
    previous = _read_record(handle)
    if previous.get("pid") and previous.get("pid") != os.getpid():
        # the kernel lock was free, so its process ended without clearing the file: a crash
        print(f"cleared a stale lock in {folder}: {describe_holder(previous)} ended without releasing it",
              file=sys.stderr)
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(_this_process()))
    handle.flush()
    _held[key] = [handle, 1]


def release_run_folder(folder: str | os.PathLike) -> None:
    """Let go of the lock :func:`acquire_run_folder` took (the outermost release frees it)."""
    key = Path(folder).resolve()
    entry = _held.get(key)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] > 0:
        return
    del _held[key]
    handle = entry[0]
    if handle is not None:
        handle.seek(0)
        handle.truncate()  # an empty file: nobody holds the folder (the file stays: see the module doc)
        handle.close()  # closing drops the kernel lock


@contextlib.contextmanager
def run_folder_lock(folder: str | os.PathLike, enabled: bool = True):
    """Hold the lock of ``folder`` for the ``with`` block (nothing when not ``enabled``)."""
    if not enabled:
        yield
        return
    acquire_run_folder(folder)
    try:
        yield
    finally:
        release_run_folder(folder)


def holding_run_folder(argument: str):
    """Decorate a function so that it runs holding the lock of its ``argument`` (a run folder);
    under ``torchrun`` the main process alone takes it."""
    def decorate(function):
        signature = inspect.signature(function)

        @functools.wraps(function)
        def locked(*args, **kwargs):
            folder = signature.bind(*args, **kwargs).arguments[argument]
            with run_folder_lock(folder, enabled=distributed.context().is_main):
                return function(*args, **kwargs)
        return locked
    return decorate
