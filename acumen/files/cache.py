"""A cache of fetched byte ranges on local disk, shared by every process on the machine.

A :class:`SpanCache` keeps spans of remote objects (``url``, ``version``, ``start``, the
bytes) as one file each under ``folder/spans/``, described in a SQLite database
(``folder/spans.sqlite3``, WAL mode) that every process opens: DataLoader workers and
separate jobs share one cache and one byte budget.

- Writes are atomic: a span is written under a temporary name, renamed into place, and only
  then does its row appear. A process killed at any point leaves at worst a temporary or
  unlisted file (never served; swept later), never a row whose file is half written.
- Eviction is least-recently-used, in the transaction that adds a span: the rows go first,
  then their files, so a reader holds either a row and a whole file, or finds the file
  gone (a miss, and the row is dropped).
- Every hit is verified as bytes from the network are: the file's size against the row's
  (when the file is mapped), and an xxh3-64 checksum of each 32 KiB block the read touches
  against the row's (once per block and mapping: :mod:`acumen.files.cache_maps` says why
  that suffices). A damaged file is dropped and the read is a miss; wrong bytes are never
  returned.
- ``version`` says which object a span belongs to (the storage passes the object's size
  and checksum from the manifest): a rewritten object has another version, so its old
  spans are never served, and age out by LRU.
- Last-used times are kept in memory and written at most once a second (and before an
  eviction). The rows a process found are remembered (per object, sorted by start) and the
  files of the last :data:`MAPPED` spans it read stay mapped read-only (``mmap``), so a hit
  on a span read before costs no query and no ``open``: a lookup, the checksums of the
  blocks touched not yet checked, and a copy (a read under ``COPY_BELOW`` bytes) or a view.
  :meth:`SpanCache.rows_for` looks up many ranges at once, and :meth:`SpanCache.array`
  gives a span file as an array to gather from (a batch's samples: no lookup per sample).
  A span file is never changed once listed (written under another name, renamed, later
  unlinked), so a span evicted meanwhile by another process still holds the right bytes;
  its file's space is freed when the last mapping goes.

The cache pickles as its folder and budget; each process opens its own connection lazily,
and a forked child opens a new one (never the parent's).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from acumen.files.cache_maps import BLOCK, MappedSpans
from acumen.files.cache_rows import KnownRows

__all__ = ["BLOCK", "MAPPED", "SpanCache", "block_sums"]
_DATABASE = "spans.sqlite3"
_SPANS = "spans"
_TEMPORARY = ".tmp-"
#: Temporaries and unlisted files older than this are a killed writer's: swept.
_STALE_SECONDS = 600.0
_SWEEP_EVERY = 3600.0
_TOUCH_EVERY = 1.0
#: Span files a process keeps mapped at most (the least recently read are unmapped first,
#: once no array views them).
MAPPED = 64
#: A lookup considers the spans starting at most this far before the range (an index range,
#: not every span of the object): a longer span is found from its own start only.
_REACH = 64 << 20
# Connections of parent processes, kept alive in a forked child: closing one there could
# disturb the parent's locks.
_INHERITED: list[Any] = []

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    id INTEGER PRIMARY KEY,
    url TEXT NOT NULL,
    version TEXT NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    name TEXT NOT NULL,
    sums BLOB NOT NULL,
    used REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS spans_by_key ON spans (url, version, start);
CREATE INDEX IF NOT EXISTS spans_by_use ON spans (used, id);
CREATE TABLE IF NOT EXISTS totals (one INTEGER PRIMARY KEY CHECK (one = 1), bytes INTEGER,
                                   swept REAL);
INSERT OR IGNORE INTO totals VALUES (1, 0, 0);
CREATE TRIGGER IF NOT EXISTS spans_added AFTER INSERT ON spans BEGIN
    UPDATE totals SET bytes = bytes + NEW.end - NEW.start;
END;
CREATE TRIGGER IF NOT EXISTS spans_removed AFTER DELETE ON spans BEGIN
    UPDATE totals SET bytes = bytes - OLD.end + OLD.start;
END;
"""


def block_sums(data: Any) -> bytes:
    """The xxh3-64 digest of each BLOCK of ``data``, 8 bytes each, concatenated."""
    view = memoryview(data).cast("B")
    return b"".join(
        xxhash.xxh3_64_digest(view[at : at + BLOCK]) for at in range(0, max(len(view), 1), BLOCK)
    )


class SpanCache:
    """Spans of remote objects on local disk, at most ``max_bytes`` of them (see the module's
    docstring). ``fsync=True`` syncs each span before it is listed (not needed for
    correctness: a span damaged by a power loss fails its checksum and is dropped)."""

    def __init__(self, folder: str | os.PathLike[str], max_bytes: int, fsync: bool = False):
        self.folder = Path(folder).expanduser()
        self.max_bytes = max(0, int(max_bytes))
        self.fsync = bool(fsync)
        self._setup()

    def _setup(self) -> None:
        self._connection: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._lock = threading.RLock()
        self._touched: dict[int, float] = {}
        self._flushed = time.monotonic()
        self._forget_all()

    def _forget_all(self) -> None:
        self._known = KnownRows()  # the rows found
        self._loaded: set[tuple[str, str, int]] = set()  # windows whose rows were asked for
        self._maps = MappedSpans(self.folder / _SPANS)  # the files mapped, blocks checked

    def __getstate__(self) -> dict[str, Any]:
        return {"folder": self.folder, "max_bytes": self.max_bytes, "fsync": self.fsync}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._setup()

    def __repr__(self) -> str:
        return f"SpanCache({str(self.folder)!r}, max_bytes={self.max_bytes})"

    # --- the connection -----------------------------------------------------------
    @property
    def db(self) -> sqlite3.Connection:
        """This process's connection, made on first use (again in a forked child)."""
        if self._connection is None or self._pid != os.getpid():
            if self._connection is not None:  # a parent's: never used nor closed here
                _INHERITED.append(self._connection)
                self._lock = threading.RLock()
                self._touched = {}
                self._forget_all()
            (self.folder / _SPANS).mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                self.folder / _DATABASE,
                timeout=30.0,
                isolation_level=None,
                check_same_thread=False,
            )
            connection.execute("PRAGMA busy_timeout = 30000")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} COMMIT;")
            self._connection, self._pid = connection, os.getpid()
            self._sweep_if_due()
        return self._connection

    def close(self) -> None:
        """Write pending last-used times and close this process's connection."""
        with self._lock:
            if self._connection is not None and self._pid == os.getpid():
                with contextlib.suppress(sqlite3.Error):
                    self._flush_touches()
                self._connection.close()
            self._connection = None

    # --- reads ----------------------------------------------------------------------
    def _covering(
        self, url: str, version: str, start: int, size: int, listed: bool = False
    ) -> tuple | None:
        """A row ``(id, start, end, name, sums)`` of a span covering the range: one this
        process found before (unless ``listed``: the database's only), else the database's
        (then remembered)."""
        key = (url, version)
        if not listed:
            row = self._known.covering(key, start, size)
            if row is not None:
                return row
            if (url, version, start // _REACH) not in self._loaded:
                self._load(url, version, start // _REACH)
                row = self._known.covering(key, start, size)
                if row is not None:
                    return row
        row = self.db.execute(  # the index's range: the spans starting within _REACH before
            "SELECT id, start, end, name, sums FROM spans WHERE url = ? AND version = ? "
            "AND start <= ? AND start >= ? AND end >= ? ORDER BY start DESC LIMIT 1",
            (url, version, start, start - _REACH, start + size),
        ).fetchone()
        if row is not None and not listed:
            self._known.add(key, row)
        return row

    def _load(self, url: str, version: str, window: int) -> None:
        """Remember every span that may cover a range starting in the ``window``-th _REACH
        bytes of the object (those starting up to _REACH before it): the next lookups
        nearby (a batch's, an epoch's) then ask no query."""
        self._loaded.add((url, version, window))
        self._known.add(
            (url, version),
            *self.db.execute(
                "SELECT id, start, end, name, sums FROM spans WHERE url = ? AND "
                "version = ? AND start >= ? AND start < ? ORDER BY start LIMIT 4096",
                (url, version, (window - 1) * _REACH, (window + 1) * _REACH),
            ),
        )

    def _forget(self, names: set[str]) -> None:
        """Forget the rows and maps of these span files (dropped or evicted)."""
        self._known.forget(names)
        self._maps.forget(names)

    def has(self, url: str, start: int, size: int, version: str = "") -> bool:
        """Whether a span covering the range is listed (its bytes are checked by ``get``)."""
        with self._lock:
            return self._covering(url, version, start, size) is not None

    def get(self, url: str, start: int, size: int, version: str = "") -> memoryview | None:
        """The ``size`` bytes at ``start`` of the object, from any span covering them, or
        None (a miss; a span found damaged or missing is dropped). The bytes are a
        read-only view of the span's mapped file."""
        with self._lock:
            row = self._covering(url, version, start, size)
            if row is None:
                return None
            rowid, first, end, name, sums = row
            data = self._maps.read(name, end - first, start - first, size, sums, MAPPED)
        if data is None:
            self._drop(rowid, name)
            return None
        self._touch(rowid)
        return data

    def _touch(self, rowid: int) -> None:
        """Note the span's use (its last-used time is written within _TOUCH_EVERY)."""
        with self._lock:
            self._touched[rowid] = time.time()
            if time.monotonic() - self._flushed < _TOUCH_EVERY:
                return
        # busy: those times are lost, which only blurs the LRU order
        with self._lock, contextlib.suppress(sqlite3.OperationalError), _transaction(self.db):
            self._flush_touches()

    def rows_for(
        self, url: str, version: str, starts: np.ndarray, size: int
    ) -> tuple[np.ndarray, list[tuple]]:
        """For each range ``starts[k] .. + size`` of the object, the row of a span covering
        it: an index into the rows returned (``(start, end, id, name, sums)``), -1 for
        none found (a range :meth:`get` may still find: a span starting more than
        _REACH before it). The database is asked once per _REACH window not asked before."""
        key = (url, version)
        with self._lock:
            for window in np.unique(starts // _REACH).tolist():
                if (url, version, window) not in self._loaded:
                    self._load(url, version, window)
            return self._known.covering_many(key, starts, size)

    def array(self, row: tuple, offsets: np.ndarray, size: int) -> np.ndarray | None:
        """The span file of ``row`` (from :meth:`rows_for`) as a read-only uint8 array, the
        blocks of the ranges ``offsets[k] .. + size`` (within the span) checked; None when
        the file is missing or damaged (then dropped: those ranges are misses)."""
        first, end, rowid, name, sums = row
        with self._lock:
            data = self._maps.array(name, end - first, offsets, size, sums, MAPPED)
        if data is None:
            self._drop(rowid, name)
            return None
        self._touch(rowid)
        return data

    def _drop(self, rowid: int, name: str) -> None:
        with self._lock:
            self._forget({name})
            with _transaction(self.db):  # by name too: a row id is reused after a delete
                self.db.execute("DELETE FROM spans WHERE id = ? AND name = ?", (rowid, name))
        _unlink(self.folder / _SPANS / name)

    # --- writes ---------------------------------------------------------------------
    def put(self, url: str, start: int, data: Any, version: str = "") -> bool:
        """Keep ``data`` as the bytes at ``start`` of the object; False when not kept (larger
        than the budget, or a span covering it is already there)."""
        return self.put_many([(url, start, data, version)]) == 1

    def put_many(self, spans: list[tuple[str, int, Any, str]]) -> int:
        """``put`` of several ``(url, start, data, version)``, listed in one transaction;
        how many were kept."""
        written = []  # (url, version, start, size, name, sums)
        for url, start, data, version in spans:
            view = memoryview(data).cast("B")
            size = len(view)
            if size == 0 or size > self.max_bytes:
                continue
            with self._lock:
                if self._covering(url, version, start, size) is not None:
                    continue
            name = self._write(view)
            if name is not None:
                written.append((url, version, start, size, name, block_sums(view)))
        if not written:
            return 0
        gone: list[str] = []
        with self._lock, _transaction(self.db):
            for url, version, start, size, name, sums in written:
                if self._covering(url, version, start, size, listed=True) is not None:
                    gone.append(name)  # another process kept it meanwhile
                    continue
                rowid = self.db.execute(
                    "INSERT INTO spans (url, version, start, end, name, sums, used) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (url, version, start, start + size, name, sums, time.time()),
                ).lastrowid
                self._known.add((url, version), (rowid, start, start + size, name, sums))
            evicted = self._evict()
            self._forget(set(evicted))
            gone += evicted
        for old in gone:
            _unlink(self.folder / _SPANS / old)
        gone_names = set(gone)
        return sum(1 for *_, name, _ in written if name not in gone_names)

    def _write(self, view: memoryview) -> str | None:
        """A new span file holding ``view`` (under a temporary name, then renamed): its
        name, or None (a full or read-only disk: the cache is only a cache)."""
        name = f"{uuid.uuid4().hex}.span"
        temporary = self.folder / _SPANS / f"{_TEMPORARY}{name}"
        try:
            with open(temporary, "wb") as handle:
                handle.write(view)
                if self.fsync:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(temporary, self.folder / _SPANS / name)
        except OSError:
            _unlink(temporary)
            return None
        return name

    def _evict(self) -> list[str]:
        """Within a write transaction: drop the least recently used rows until the total
        fits the budget; their file names (to unlink after the commit)."""
        (total,) = self.db.execute("SELECT bytes FROM totals").fetchone()
        if total <= self.max_bytes:
            return []
        self._flush_touches()
        names, ids = [], []
        for rowid, first, end, name in self.db.execute(
            "SELECT id, start, end, name FROM spans ORDER BY used, id"
        ):
            if total <= self.max_bytes:
                break
            total -= end - first
            names.append(name)
            ids.append(rowid)
        self.db.executemany("DELETE FROM spans WHERE id = ?", [(i,) for i in ids])
        return names

    def _flush_touches(self) -> None:
        touched, self._touched = self._touched, {}
        if touched:
            self.db.executemany(
                "UPDATE spans SET used = MAX(used, ?) WHERE id = ?",
                [(used, rowid) for rowid, used in touched.items()],
            )
        self._flushed = time.monotonic()

    def clear(self, url: str | None = None) -> None:
        """Drop every span (of ``url``, whatever its version)."""
        where, args = ("", ()) if url is None else (" WHERE url = ?", (url,))
        with self._lock, _transaction(self.db):
            names = list(self.db.execute("SELECT name FROM spans" + where, args))
            self.db.execute("DELETE FROM spans" + where, args)
            self._forget({name for (name,) in names})
        for (name,) in names:
            _unlink(self.folder / _SPANS / name)

    def total_bytes(self) -> int:
        """The bytes of the listed spans."""
        with self._lock:
            return int(self.db.execute("SELECT bytes FROM totals").fetchone()[0])

    # --- housekeeping ---------------------------------------------------------------
    def _sweep_if_due(self) -> None:
        """Remove what killed writers left: temporaries, and files no row lists, older than
        ``_STALE_SECONDS``; at most once an hour across all processes."""
        now = time.time()
        with _transaction(self._connection):
            (swept,) = self._connection.execute("SELECT swept FROM totals").fetchone()
            if now - swept < _SWEEP_EVERY:
                return
            self._connection.execute("UPDATE totals SET swept = ?", (now,))
        listed = {name for (name,) in self._connection.execute("SELECT name FROM spans")}
        with os.scandir(self.folder / _SPANS) as entries:
            for entry in entries:
                if entry.name in listed:
                    continue
                with contextlib.suppress(OSError):
                    if now - entry.stat().st_mtime > _STALE_SECONDS:
                        os.unlink(entry.path)


@contextlib.contextmanager
def _transaction(connection: sqlite3.Connection):
    """BEGIN IMMEDIATE (the write lock at once, waiting up to busy_timeout) ... COMMIT."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
