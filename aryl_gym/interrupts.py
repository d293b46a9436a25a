"""Stopping cleanly on Ctrl-C and ``kill``: signals as exceptions, workers that follow.

* :func:`signals_raise` turns SIGINT, SIGTERM and SIGHUP into :class:`Interrupted`, a
  ``KeyboardInterrupt``, so one ``except KeyboardInterrupt`` / ``finally`` path handles
  Ctrl-C, ``kill`` and a closed terminal alike. ``aryl-gym`` installs it around every
  command and exits with ``128 + signal number`` (:func:`exit_status`). A signal whose
  exception Python swallows (it arrived while a finalizer, ``__del__``, was running:
  Python prints "Exception ignored" and goes on) is not lost: it stays *pending*, and
  :func:`raise_if_interrupted` (called as each run ends) raises it again, and the
  command's exit status still says it (:func:`pending_signal`). Once a signal has come,
  the "Exception ignored" reports of finalizers are silenced: they are its echo
  (half-built objects), not separate faults.
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
    "handled",
    "pending_signal",
    "raise_if_interrupted",
    "setup_worker",
    "signals_deferred",
    "signals_raise",
    "stop_processes",
]

#: Termination signals that :func:`signals_raise` turns into :class:`Interrupted` (besides
#: SIGINT); :func:`setup_worker` restores their default action.
RAISED_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

#: Signals received under :func:`signals_raise` whose exception has not been handled yet.
_pending: list[int] = []
#: Whether a signal came while :func:`signals_raise` was active (silences finalizer noise).
_interrupted = False


class Interrupted(KeyboardInterrupt):
    """A signal (SIGINT, SIGTERM, SIGHUP) received by the main thread under
    :func:`signals_raise`; ``signum`` says which. A ``KeyboardInterrupt``, so code that
    handles Ctrl-C handles it too."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(f"{signal.Signals(self.signum).name} received")


def _raise_interrupted(signum: int, _frame: Any) -> None:
    global _interrupted
    _interrupted = True
    _pending.append(int(signum))
    raise Interrupted(signum)


def _quiet_unraisable(previous: Any) -> Any:
    """A ``sys.unraisablehook`` that drops reports once a signal has come."""

    def hook(unraisable: Any) -> None:
        if _interrupted or isinstance(unraisable.exc_value, KeyboardInterrupt):
            return
        previous(unraisable)

    return hook


def pending_signal() -> int | None:
    """The signal received under :func:`signals_raise` whose exception nobody has handled
    (see :func:`handled`), or ``None``."""
    return _pending[-1] if _pending else None


def handled() -> None:
    """Forget the pending signals: their exception reached a handler."""
    _pending.clear()


def raise_if_interrupted() -> None:
    """Raise :class:`Interrupted` again for a pending signal (one whose exception Python
    swallowed); a no-op otherwise. Long loops call it at safe points."""
    signum = pending_signal()
    if signum is not None:
        raise Interrupted(signum)


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted` in the main
    thread, and are remembered until :func:`handled`; the previous handlers come back
    after it (the quiet ``sys.unraisablehook`` stays once a signal has come: the process
    is stopping). Outside the main thread, where Python cannot install handlers, it
    does nothing."""
    global _interrupted
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _interrupted = False
    handled()
    previous = {s: signal.signal(s, _raise_interrupted) for s in (signal.SIGINT, *RAISED_SIGNALS)}
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _quiet_unraisable(previous_hook)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if not _interrupted:
            sys.unraisablehook = previous_hook


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
