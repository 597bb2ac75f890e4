"""Process pools whose workers end when the process that started them ends.

A pool worker waits for work on a pipe its siblings also hold open, so when its parent is
killed (SIGKILL: no clean-up runs) it would wait forever. Every pool acumen starts comes
from :func:`process_pool`, whose initializer ties each worker to the pool's creator: on
Linux the kernel kills the worker when its parent ends (``PR_SET_PDEATHSIG``); elsewhere a
watchdog thread in the worker checks every second and exits when the creator is gone.

Linux sends that signal when the *thread* that started the worker ends, so a pool is used
from the thread that created it (as every acumen pool is: created, used and shut down within
one call).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

#: Seconds between two checks of a worker's watchdog.
WATCH_INTERVAL = 1.0
#: Set (to any value) in the environment to leave out the parent-death signal, so that the
#: watchdog is what ends the workers (the tests use it to check the watchdog on Linux).
WATCHDOG_ONLY = "ACUMEN_WORKER_WATCHDOG_ONLY"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


_busy = False  # in a worker: whether it runs a task now (what Ctrl-C interrupts)


class _Pool(ProcessPoolExecutor):
    """Each task runs marked busy, so Ctrl-C tells a running worker from an idle one."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        # A submit may start workers. They start with SIGINT blocked (a child inherits the
        # mask) until their handler is in place: a Ctrl-C in between would otherwise raise
        # in the middle of their start-up and print its traceback. Here a Ctrl-C waits
        # blocked for microseconds and is then delivered, never lost.
        with _sigint_blocked():
            return super().submit(_Task(fn), *args, **kwargs)


class _Task:
    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        global _busy
        _busy = True
        try:
            return self.function(*args, **kwargs)
        finally:
            _busy = False


def process_pool(
    n_jobs: int, initializer: Callable[..., None] | None = None, initargs: tuple = ()
) -> ProcessPoolExecutor:
    """A ``ProcessPoolExecutor`` of ``n_jobs`` workers that end with this process."""
    context = multiprocessing.get_context()
    return _Pool(
        n_jobs,
        mp_context=context,
        initializer=_start_worker,
        initargs=(os.getpid(), context.get_start_method(), initializer, initargs),
    )


class _sigint_blocked:
    """Block SIGINT in this thread for the block (where signal masks exist)."""

    def __enter__(self) -> None:
        if hasattr(signal, "pthread_sigmask"):
            self.before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})

    def __exit__(self, *exc: object) -> None:
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_SETMASK, self.before)


def _start_worker(
    creator: int, method: str, initializer: Callable[..., None] | None, initargs: tuple
) -> None:
    end_with(creator, method)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not ignored
        signal.signal(signal.SIGINT, _on_interrupt)
    if hasattr(signal, "pthread_sigmask"):  # a Ctrl-C that came while blocked runs now
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    if initializer is not None:
        initializer(*initargs)


def _on_interrupt(signum: int, frame: object) -> None:
    """Ctrl-C reaches every process of the terminal's job, the workers too. A running task
    stops (its KeyboardInterrupt goes back to the pool's creator, which stops too); an idle
    or starting worker lets it pass and ends when the creator shuts the pool down.

    An idle worker must not end by itself: it waits in the pool's queue, and ending just
    after it took the queue's lock (or mid-way through a message) would leave the lock
    taken or the pipe half read, and the shutdown waiting forever for the workers behind
    it. Raised while starting, the pool would print a KeyboardInterrupt as a failed
    initializer.
    """
    if _busy:
        raise KeyboardInterrupt


def end_with(creator: int, method: str) -> None:
    """Make this process end when ``creator`` (the pool's process) ends.

    Its parent is the creator, except under the forkserver start method: then it is the
    server, which stays up as long as any process it started does, so only a watchdog
    looking at the creator itself can tell.
    """
    parent = os.getppid()
    if method != "forkserver":
        if parent != creator:
            os._exit(1)  # adopted already: the creator ended while this worker started
        if _parent_death_signal():
            if os.getppid() != parent:
                os._exit(1)  # the parent ended before the signal was asked for
            return
    watchdog = threading.Thread(
        target=_watch, args=(creator, parent), name="acumen-worker-watchdog", daemon=True
    )
    watchdog.start()


def _parent_death_signal() -> bool:
    """Ask Linux to SIGKILL this process when its parent ends; False where it cannot."""
    if not sys.platform.startswith("linux") or os.environ.get(WATCHDOG_ONLY):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):  # no C library to load, or no prctl in it
        return False


def _watch(creator: int, parent: int) -> None:
    while _alive(creator, parent):
        time.sleep(WATCH_INTERVAL)
    os._exit(1)


def _alive(creator: int, parent: int) -> bool:
    if sys.platform == "win32":
        # No adoption on Windows, and os.kill would end the process: ask its handle.
        process = multiprocessing.parent_process()
        return process is None or process.is_alive()
    if os.getppid() != parent:
        return False  # adopted: the parent ended
    return parent == creator or _exists(creator)


def _exists(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet waited for, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            stat = file.read()
    except OSError:  # no /proc here
        return True
    return not stat[stat.rindex(b")") + 2 :].startswith(b"Z")
