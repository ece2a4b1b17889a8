"""How the command-line tools end on a failure: one line, ``error: <message>``, and a non-zero exit.

The project's errors (a missing dataset, a checkpoint of another model, a read-only output
folder, a diverging run ...) carry messages that name the problem and the fix; a traceback
would bury them. ``--debug`` (or ``MSRN_DEBUG=1``) shows the traceback as well. Errors of
other kinds (a bug) keep their traceback.

Under ``torchrun`` a process that fails prints its message and leaves; the others then see
their collective operations fail ("Connection closed by peer") and exit quietly with status 1,
so the failing process's message is the last one the run prints (torchrun's own summary of the
failed processes follows it).
"""
from __future__ import annotations

import os
import sys
from typing import Callable, Sequence

from .distributed import launched_by_torchrun

EXIT_ERROR = 1
DEBUG_ENVIRONMENT = "MSRN_DEBUG"
DEBUG_HELP = "show the full traceback of an error (also: MSRN_DEBUG=1)"

# what the project raises with a message meant for the user, besides its own exception classes
USER_ERRORS = (ValueError, OSError, FloatingPointError, ImportError)


def is_user_error(error: BaseException) -> bool:
    """An error whose message is meant for the user: the project's own classes and the kinds above."""
    return isinstance(error, USER_ERRORS) or type(error).__module__.startswith("msrn_core")


def debug_requested(argv: Sequence[str]) -> bool:
    """``--debug`` among the options (before a ``--`` separator), or ``MSRN_DEBUG`` set."""
    options = list(argv)[: list(argv).index("--")] if "--" in argv else list(argv)
    return "--debug" in options or os.environ.get(DEBUG_ENVIRONMENT, "").lower() not in ("", "0", "false", "no")


def is_collective_failure(error: BaseException) -> bool:
    """True for the error a process gets when another process of the run died."""
    dist_error = getattr(__import__("torch").distributed, "DistError", ())
    text = str(error)
    return isinstance(error, dist_error) or (isinstance(error, RuntimeError) and any(
        marker in text for marker in ("Connection closed by peer", "Connection reset by peer", "Gloo", "NCCL",
                                      "Broken pipe")))


def error_line(error: BaseException) -> str:
    """``error: <message>`` (the exception's own text; its class name when it has none)."""
    message = str(error).strip() or type(error).__name__
    if isinstance(error, KeyError):  # str(KeyError) quotes its argument
        message = f"missing key {message}"
    return f"error: {message}"


def run_cli(main: Callable[[list[str]], int | None], argv: Sequence[str] | None = None) -> int:
    """Call ``main(argv)`` and turn the project's errors into one line on stderr and exit status 1."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(argv)
    try:
        return int(main(argv) or 0)
    except Exception as error:
        if launched_by_torchrun() and is_collective_failure(error) and not debug:
            return EXIT_ERROR  # another process failed and says why
        if debug or not is_user_error(error):
            raise
        sys.stdout.flush()
        rank = os.environ.get("RANK", "0") if launched_by_torchrun() else "0"
        prefix = f"[rank {rank}] " if rank != "0" else ""
        print(prefix + error_line(error) + "  (--debug shows the traceback)", file=sys.stderr, flush=True)
        return EXIT_ERROR
