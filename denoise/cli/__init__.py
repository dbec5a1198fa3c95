"""The ``denoise`` command: train, run, eval, models.

Exit status: 0 success, 1 when any file failed, 2 for usage errors.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading

from .commands import cmd_eval, cmd_models, cmd_run, cmd_train
from .parser import build_parser

__all__ = ["main", "build_parser"]

log = logging.getLogger("denoise")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    commands = {"train": cmd_train, "run": cmd_run, "eval": cmd_eval, "models": cmd_models}
    with _console_log(args.verbose), _stop_signals() as stopped:
        try:
            return commands[args.command](args)
        except BaseException as exc:
            # Ctrl-C or SIGTERM raise KeyboardInterrupt, which compiled code may turn into
            # another error on its way up (a SystemError from Numba, say): the signal decides
            if stopped or isinstance(exc, KeyboardInterrupt):
                print("interrupted", file=sys.stderr)
                return 128 + (stopped[0] if stopped else signal.SIGINT)
            if isinstance(exc, BrokenPipeError):  # the reader went away (`denoise models | head`): nothing to say
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # as Python's docs advise, so
                return 0  # that the interpreter's own flush at exit does not fail on the closed pipe again
            if isinstance(exc, (ValueError, OSError, ConnectionError)) and not args.verbose:
                print(f"denoise {args.command}: error: {exc}", file=sys.stderr)
                return 2
            raise


@contextlib.contextmanager
def _stop_signals():
    """For one command, SIGINT and SIGTERM (what a terminal's Ctrl-C and a batch
    scheduler or ``timeout`` send) raise KeyboardInterrupt, and the list yielded
    records which came; the handlers are as they were afterwards. A signal the
    process started with ignored stays ignored (as for a job run with ``nohup``)."""
    got: list[int] = []

    def stop(signum, frame):
        got.append(signum)
        raise KeyboardInterrupt

    saved = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(sig) is not signal.SIG_IGN:
                saved[sig] = signal.signal(sig, stop)
    try:
        yield got
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _console_log(verbose: bool):
    """The ``denoise`` logger's messages on standard error, plain, for one command;
    the logger is as it was afterwards."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    saved = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.WARNING)
    log.propagate = False
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(saved[0])
        log.propagate = saved[1]
