"""Stopping cleanly on Ctrl-C and ``kill``: signals as exceptions, workers that follow.

* :func:`signals_raise` turns SIGTERM and SIGHUP into :class:`Interrupted`, a
  ``KeyboardInterrupt``, so one ``except KeyboardInterrupt`` / ``finally`` path handles
  Ctrl-C (SIGINT), ``kill`` and a closed terminal alike. ``aryl-gym`` installs it around
  every command and exits with ``128 + signal number`` (:func:`exit_status`).
* :func:`setup_worker` runs first in every worker process: the worker ignores SIGINT (a
  Ctrl-C reaches the whole foreground process group; the parent alone decides what
  happens), takes SIGTERM's default action, and on Linux dies with its parent
  (``PR_SET_PDEATHSIG``), so no worker outlives a parent killed even by SIGKILL.
* :func:`stop_processes` terminates, then kills, worker processes within a deadline, with
  SIGINT and SIGTERM held back meanwhile (:func:`signals_deferred`).

Only the standard library is imported here.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = [
    "Interrupted",
    "exit_status",
    "setup_worker",
    "signals_deferred",
    "signals_raise",
    "stop_processes",
]

#: Signals that :func:`signals_raise` turns into :class:`Interrupted`.
RAISED_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class Interrupted(KeyboardInterrupt):
    """A termination signal (SIGTERM, SIGHUP) received by the main thread; ``signum``
    says which. A ``KeyboardInterrupt``, so code that handles Ctrl-C handles it too."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(f"{signal.Signals(self.signum).name} received")


def _raise_interrupted(signum: int, _frame: Any) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Interrupted` in the main thread
    (the previous handlers come back after it). Outside the main thread, where Python
    cannot install handlers, it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise_interrupted) for s in RAISED_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def exit_status(exc: KeyboardInterrupt) -> int:
    """The shell's exit status of a process stopped by the signal behind ``exc``:
    ``128 + signum`` (130 for Ctrl-C, 143 for SIGTERM)."""
    return 128 + getattr(exc, "signum", int(signal.SIGINT))


def signal_name(exc: KeyboardInterrupt) -> str:
    """``SIGINT`` for a plain ``KeyboardInterrupt``, the signal's name for :class:`Interrupted`."""
    return signal.Signals(getattr(exc, "signum", int(signal.SIGINT))).name


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and the :data:`RAISED_SIGNALS` back during the block (cleanup that must
    not be cut short); they are delivered when it ends. A no-op where the platform has no
    ``pthread_sigmask``."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    held = {signal.SIGINT, *RAISED_SIGNALS}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def die_with_parent() -> None:
    """On Linux, ask the kernel to SIGKILL this process when its parent exits; elsewhere
    nothing."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def setup_worker(parent_pid: int | None = None) -> None:
    """First thing in a worker process: ignore SIGINT, default SIGTERM/SIGHUP, die with
    the parent. With ``parent_pid``, exit at once if the parent is already gone (it died
    before :func:`die_with_parent` took effect)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for s in RAISED_SIGNALS:
        signal.signal(s, signal.SIG_DFL)
    die_with_parent()
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


def stop_processes(processes: Iterable[Any], grace_s: float = 2.0) -> None:
    """Terminate ``processes`` (``multiprocessing.Process``), wait up to ``grace_s`` seconds
    in all, then kill the ones still alive and reap them; signals are deferred meanwhile."""
    procs = list(processes)
    with signals_deferred():
        for p in procs:
            with contextlib.suppress(Exception):
                p.terminate()
        deadline = time.monotonic() + grace_s
        for p in procs:
            with contextlib.suppress(Exception):
                p.join(max(0.0, deadline - time.monotonic()))
        for p in procs:
            with contextlib.suppress(Exception):
                if p.is_alive():
                    p.kill()
                    p.join(1.0)
