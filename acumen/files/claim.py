"""Claiming a folder for one writer: the one mechanism every writer kind uses.

``acumen.Writer`` (and so ``split_into_chunks`` and ``recode``) and ``acumen convert`` claim
their output folder by creating the marker file ``.acumen-writing`` exclusively (``O_EXCL``).
The marker says who claimed it: pid, host, the process's start time (so a reused pid is not
taken for the owner), what kind of writer, and whether the owner holds a lock on it.

Where the OS has ``flock`` the owner holds an exclusive lock on the marker for as long as the
claim lives; the kernel drops it when the process dies, so "the lock is free" proves on this
host that the owner is gone (forked children close their copy, so they cannot keep a dead
parent's claim alive). Without a lock the marker's pid and process start time are checked.

A live claim is never taken over. A dead one is taken over only by the kind that can resume
what it left (a conversion resuming its own saved state); everything else refuses the folder,
naming it and the owner.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import sys
import time
import weakref
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acumen.errors import DatasetExistsError
from acumen.files.local import fsync_directory, write_failed, writing

#: The marker file present only while a writer works on a dataset folder.
WRITING_MARKER = ".acumen-writing"

try:
    import fcntl
except ImportError:  # Windows: the pid check alone
    fcntl = None  # type: ignore[assignment]

_TEMPORARY = f"{WRITING_MARKER}.new-"  # a taker's marker before it replaces the dead one
_kind: ContextVar[str | None] = ContextVar("acumen_claim_kind", default=None)
_held: weakref.WeakSet[Claim] = weakref.WeakSet()  # claims of this process (fork hook)
_reading_back: ContextVar[str | None] = ContextVar("acumen_claim_read_back", default=None)


@contextlib.contextmanager
def acting_as(kind: str) -> Iterator[None]:
    """Claims made inside are recorded as ``kind`` (the outermost caller's name wins:
    ``recode`` writes through ``split_into_chunks``, which writes through ``Writer``)."""
    token = _kind.set(kind) if _kind.get() is None else None
    try:
        yield
    finally:
        if token is not None:
            _kind.reset(token)


def current_kind(default: str) -> str:
    return _kind.get() or default


# --- who owns a claim ----------------------------------------------------------------------
@dataclass(frozen=True)
class Owner:
    """What a marker says about its writer (fields are None when it does not say)."""

    pid: int | None = None
    host: str | None = None
    kind: str | None = None
    process: str | None = None  # the process's start time as the OS tells it
    lock: str | None = None  # "flock" when the owner holds a lock on the marker
    started: float | None = None

    @classmethod
    def parse(cls, text: str) -> Owner:
        try:
            data = json.loads(text)
        except ValueError:
            return cls()
        if not isinstance(data, dict):
            return cls()
        pid = data.get("pid")
        started = data.get("started")
        return cls(
            pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
            host=_text(data.get("host")),
            kind=_text(data.get("kind")),
            process=_text(data.get("process")),
            lock=_text(data.get("lock")),
            started=float(started) if isinstance(started, (int, float)) else None,
        )

    def describe(self) -> str:
        """ "Writer, pid 12 on host-a" (what is known)."""
        if self.pid is None:
            return "a writer that did not record who it is"
        return f"{self.kind or 'a writer'}, pid {self.pid} on {self.host}"


def _text(value: Any) -> str | None:
    return value[:200] if isinstance(value, str) else None  # quoted in messages: bounded


@dataclass(frozen=True)
class ClaimState:
    """A marker found in a folder: who wrote it and whether that writer still lives."""

    root: Path
    owner: Owner
    alive: bool
    why: str  # how liveness was decided, for messages

    def describe(self) -> str:
        state = "still running" if self.alive else "no longer running"
        return f"{self.owner.describe()} ({state}: {self.why})"


def this_host() -> str:
    import socket  # only a writer's claim needs it: not loaded by ``import acumen``

    return socket.gethostname()


def process_identity(pid: int) -> str | None:
    """The start time of process ``pid`` with the boot it belongs to (Linux), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as file:
            fields = file.read().rsplit(")", 1)[1].split()
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as file:
            boot = file.read().strip()
    except (OSError, IndexError):
        return None
    if fields[0] in ("Z", "X") or len(fields) < 20:  # a zombie is dead, only not reaped
        return None
    return f"{boot}/{fields[19]}"


def pid_alive(pid: int, identity: str | None) -> tuple[bool, str]:
    if sys.platform.startswith("linux"):
        now = process_identity(pid)
        if now is None:
            return False, f"no process {pid}"
        if identity is not None and now != identity:
            return False, f"pid {pid} is another process now"
        return True, f"process {pid} exists"
    if os.name != "posix":  # no safe way to ask (os.kill would terminate it on Windows)
        return True, "its process cannot be checked here"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False, f"no process {pid}"
    except PermissionError:
        pass
    return True, f"process {pid} exists"


def _try_lock(fd: int) -> bool | None:
    """Take the exclusive lock without waiting: True, False (held), None (no locks here)."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # a file system without flock
        return None
    return True


def _state(root: Path, owner: Owner, locked: bool | None) -> ClaimState:
    """Liveness: ``locked`` is whether this caller got the marker's lock (None: no locks)."""
    if locked is False:
        return ClaimState(root, owner, True, "it holds its lock on the marker")
    if owner.pid is None:
        return ClaimState(root, owner, False, "the marker names no writer")
    if owner.host != this_host():
        return ClaimState(root, owner, True, "it is on another host: acumen cannot check")
    if owner.lock == "flock" and locked:
        return ClaimState(root, owner, False, "its lock on the marker is free")
    alive, why = pid_alive(owner.pid, owner.process)
    return ClaimState(root, owner, alive, why)


def inspect(root: Path) -> ClaimState | None:
    """The claim on ``root`` and whether its writer lives; None when there is no marker."""
    try:
        fd = _open_marker(root / WRITING_MARKER)
    except FileNotFoundError:
        return None
    try:
        locked = _try_lock(fd)
        return _state(root, _owner_in(fd), locked)
    finally:
        os.close(fd)  # releases the lock if this look took it


def owner_of(root: Path) -> Owner | None:
    """What the marker in ``root`` says about its writer, without locking it (None when
    there is no marker; an empty :class:`Owner` when it cannot be read)."""
    try:
        fd = _open_marker(root / WRITING_MARKER)
    except FileNotFoundError:
        return None
    except OSError:
        return Owner()
    try:
        return _owner_in(fd)
    except OSError:
        return Owner()
    finally:
        os.close(fd)


def _open_marker(marker: Path) -> int:
    # O_NONBLOCK: a FIFO put where the marker should be must not hang whoever looks at it.
    return os.open(marker, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))


def _owner_in(fd: int) -> Owner:
    """What the marker open as ``fd`` says; nothing if it is not a regular file."""
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        return Owner()
    os.lseek(fd, 0, os.SEEK_SET)
    return Owner.parse(os.read(fd, 65536).decode("utf-8", errors="replace"))


# --- holding a claim -----------------------------------------------------------------------
class Claim:
    """This process's claim on a folder; the lock (where there is one) lives as long as it."""

    def __init__(self, root: Path, fd: int, owner: Owner) -> None:
        self.root = root
        self.path = root / WRITING_MARKER
        self.owner = owner
        self._fd: int | None = fd
        self._finalizer = weakref.finalize(self, _close, fd)
        _held.add(self)

    @contextlib.contextmanager
    def reading_back(self) -> Iterator[None]:
        """Inside, this thread may open the claimed folder although its marker is present:
        the writer reads back what it wrote (its manifest is in place) before it releases
        the claim, so a check that fails, or a kill during it, leaves the folder incomplete.
        """
        token = _reading_back.set(os.path.abspath(self.root))
        try:
            yield
        finally:
            _reading_back.reset(token)

    def release(self) -> None:
        """The write is committed: remove the marker, then let the lock go."""
        self.path.unlink()
        self._let_go()

    def abandon(self) -> None:
        """The write failed: the marker stays (the folder is incomplete), the lock goes, so a
        writer that can resume it may take it over."""
        self._let_go()

    def _let_go(self) -> None:
        self._fd = None
        self._finalizer()
        _held.discard(self)

    def _forget_in_child(self) -> None:
        """In a forked child: close the inherited descriptor (the parent keeps the lock)."""
        self._finalizer.detach()
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = None


def read_back_allowed(root: Path) -> bool:
    """Whether this thread is inside :meth:`Claim.reading_back` of ``root``'s claim."""
    held = _reading_back.get()
    return held is not None and held == os.path.abspath(root)


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _forget_claims_in_child() -> None:
    for claim in list(_held):
        claim._forget_in_child()
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_claims_in_child)


def _owner(kind: str) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": this_host(),
        "started": time.time(),
        "process": process_identity(os.getpid()),
        "kind": kind,
        "lock": None,
    }


def _create(path: Path, root: Path, kind: str) -> Claim:
    """Create ``path`` exclusively, lock it, write who we are (FileExistsError if taken)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        info = _owner(kind)
        if fcntl is not None:
            with contextlib.suppress(OSError):  # a file system without flock: pid check
                fcntl.flock(fd, fcntl.LOCK_EX)
                info["lock"] = "flock"
        data = json.dumps(info).encode("utf-8")
        if os.write(fd, data) != len(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    except BaseException:
        os.close(fd)
        os.unlink(path)  # ours, and naming no one: never leave it (a full disk)
        raise
    return Claim(root, fd, Owner.parse(data.decode("utf-8")))


def claim_folder(root: Path, kind: str) -> Claim:
    """Claim the existing folder ``root``; refuse (naming the owner) if it is claimed."""
    try:
        return _create(root / WRITING_MARKER, root, kind)
    except FileExistsError:
        raise refusal(root, "it claimed this folder first") from None
    except OSError as error:
        raise write_failed(root, root / WRITING_MARKER, error) from error


def claim_new_folder(root: Path, kind: str) -> Claim:
    """Claim ``root`` for a new dataset: it must not exist, or be an empty folder."""
    if (root / WRITING_MARKER).exists():
        raise refusal(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise DatasetExistsError(
            f"{root} already exists and is not an empty folder; acumen never writes over "
            "data: choose a new path or remove it"
        )
    with writing(root, root):
        root.mkdir(parents=True, exist_ok=True)
    return claim_folder(root, kind)


def refusal(root: Path, reason: str = "", state: ClaimState | None = None) -> DatasetExistsError:
    """The error for a folder that holds a claim: whose, is it alive, and what to do."""
    state = state or inspect(root)
    why = f"; {reason}" if reason else ""
    if state is None:
        return DatasetExistsError(f"{root}: another writer claimed this folder{why}")
    if state.alive:
        return DatasetExistsError(
            f"{root} is being written by {state.describe()}{why}; a folder being written is "
            "never taken over: wait for that writer to finish, or choose a new path"
        )
    return DatasetExistsError(
        f"{root} is an incomplete dataset: a write started by {state.describe()} and did "
        f"not finish{why}; nothing was deleted: remove the folder or choose a new path"
    )


def take_over(root: Path, kind: str, may_resume: Callable[[Owner], bool]) -> Claim:
    """Replace the dead claim on ``root`` with ours if ``may_resume(owner)`` says this
    writer can resume what it left; a live claim, or another kind's, is refused.

    The dead marker is locked while it is replaced, so of two takers only one succeeds.
    """
    marker = root / WRITING_MARKER
    for _ in range(10):  # the marker changed between opening and locking it: look again
        try:
            fd = _open_marker(marker)
        except FileNotFoundError:
            return claim_folder(root, kind)
        try:
            locked = _try_lock(fd)
            if os.fstat(fd).st_ino != _inode(marker):
                continue
            state = _state(root, _owner_in(fd), locked)
            if state.alive:
                raise refusal(root, state=state)
            if not may_resume(state.owner):
                raise refusal(root, f"{kind} cannot resume what it left", state)
            return _replace(root, kind)
        finally:
            os.close(fd)
    raise refusal(root, "its marker kept changing")


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def _replace(root: Path, kind: str) -> Claim:
    """Our marker in place of the dead one (whose lock the caller holds)."""
    for stray in root.glob(f"{_TEMPORARY}*"):  # left by a taker killed mid-way
        with contextlib.suppress(FileNotFoundError):
            os.unlink(stray)
    temporary = root / f"{_TEMPORARY}{os.getpid()}"
    claim = _create(temporary, root, kind)
    try:
        os.replace(temporary, claim.path)
    except BaseException:
        claim.abandon()
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    fsync_directory(root)
    return claim


def is_stray(name: str) -> bool:
    """A file a taker killed mid-way may leave beside the marker (removed by the next)."""
    return name.startswith(_TEMPORARY)
