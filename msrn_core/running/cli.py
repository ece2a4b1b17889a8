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

import argparse
import math
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


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, ``error: <message>``, like every other error
    of the command lines (argparse's usage block would come first); exit status 2 as argparse's."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def bounded_int(low: int):
    """An argparse type: a whole number of at least ``low``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    parse.__name__ = f"integer >= {low}"
    return parse


def bounded_float(low: float, high: float = math.inf, low_open: bool = False, high_open: bool = False):
    """An argparse type: a finite number in the interval from ``low`` to ``high`` (``*_open``: the
    bound itself excluded). ``nan`` and ``inf`` are refused: they would poison every step."""
    left, right = "(" if low_open else "[", ")" if high_open or high == math.inf else "]"
    interval = f"{left}{low:g}, {high:g}{right}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number in {interval}, got {text}")
        if value < low or (low_open and value == low) or value > high or (high_open and value == high):
            raise argparse.ArgumentTypeError(f"must lie in {interval}, got {text}")
        return value
    parse.__name__ = f"number in {interval}"
    return parse


positive_int = bounded_int(1)
non_negative_int = bounded_int(0)
positive_float = bounded_float(0.0, low_open=True)
non_negative_float = bounded_float(0.0)
probability = bounded_float(0.0, 1.0)
open_fraction = bounded_float(0.0, 1.0, low_open=True, high_open=True)
