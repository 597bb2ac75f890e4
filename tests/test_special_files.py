"""Files that are not regular files, and files the system will not read (issue 11, items 8
and 12).

A FIFO, a character device or a directory where a dataset keeps a manifest, an index, a
chunk or a codec's dictionary is refused with ``CorruptDatasetError`` naming the file, before
anything reads from it: opening a FIFO for reading used to block forever, ``/dev/zero`` as a
chunk returned zeros (seek) or filled memory (memory storage), a directory escaped as
``IsADirectoryError``. Opening, reading and verifying run in a child interpreter under a
timeout, so a hang fails its test instead of hanging the suite.

``acumen verify`` reports a manifest, chunk folder or chunk file it may not read (or that
fails with an I/O error) as a problem naming its path, and goes on with the rest. Tests run
as root, who reads any file whatever its mode: the child drops the capabilities that let
it (``CAP_DAC_OVERRIDE``, ``CAP_DAC_READ_SEARCH``), so a ``chmod 000`` file is unreadable to
it as to anyone else.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import acumen
import acumen.read.verifiers
import acumen.storage.seek
from acumen import cli, plugins
from acumen.errors import CorruptDatasetError
from acumen.files.local import open_regular, read_regular_bytes, stat_regular
from acumen.format.manifest import Manifest
from acumen.verify import verify
from tests.dataset_edits import manifest_of

TIMEOUT_S = 60  # a child takes about a second; a hang takes forever
STORAGES = ("mmap", "seek", "memory")

# --- special files -------------------------------------------------------------------------


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _directory(path: Path) -> None:
    path.mkdir()


def _device(minor: int) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        try:
            os.mknod(path, 0o644 | stat.S_IFCHR, os.makedev(1, minor))
        except (PermissionError, AttributeError):
            pytest.skip("making a character device needs root (CAP_MKNOD) on Linux")

    return make


KINDS = {
    "fifo": (_fifo, "a FIFO"),
    "directory": (_directory, "a directory"),
    "dev-zero": (_device(5), "a character device"),
    "dev-null": (_device(3), "a character device"),
}


def replace_with(path: Path, kind: str) -> None:
    """Put a special file of ``kind`` where the regular file ``path`` was."""
    path.unlink()
    KINDS[kind][0](path)


def sample(i: int) -> np.ndarray:
    return np.arange(6 + i % 5, dtype=np.float32) * (i + 1)


def write(path: Path, n: int = 12, **options) -> Path:
    with acumen.Writer(path, chunk_size_bytes=100, **options) as writer:
        for i in range(n):
            writer.add(sample(i), number=i)
    return path


def original(path: Path) -> Path:
    """An original acumenindexer dataset (no manifest) with several chunk files."""
    write(path)
    (path / "manifest.json").unlink()
    return path


# --- running each open, read and verify in a child, under a timeout ------------------------

CHILD = r"""
import json, resource, sys
limit = 4 << 30  # /dev/zero read to its end must be a MemoryError, not the machine's memory
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
import acumen
from acumen.verify import verify

path, options = sys.argv[1], json.loads(sys.argv[2])

def read_all(storage):
    with acumen.open(path, storage=storage, **options) as ds:
        return [float(ds[i][0].sum()) for i in range(len(ds))]

outcomes = {}
for storage in ("mmap", "seek", "memory"):
    try:
        outcomes[storage] = ["read", read_all(storage)]
    except Exception as error:
        outcomes[storage] = [type(error).__name__, str(error)]
try:
    outcomes["verify"] = ["report", verify(path, progress=False, **options).problems]
except Exception as error:
    outcomes["verify"] = [type(error).__name__, str(error)]
print(json.dumps(outcomes))
"""


def child_outcomes(path: Path, **options) -> dict[str, list]:
    """What opening and reading with every storage, and verifying, does with ``path``."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), json.dumps(options)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"opening, reading or verifying {path} hung (more than {TIMEOUT_S} s)")
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def assert_refused(path: Path, special: Path, kind: str, **options) -> None:
    """Every storage refuses the dataset and verify reports it, naming ``special``."""
    what = KINDS[kind][1]
    outcomes = child_outcomes(path, **options)
    for storage in STORAGES:
        error, message = outcomes[storage]
        assert error == "CorruptDatasetError", (storage, outcomes[storage])
        assert str(special) in message and f"is {what}, not a regular file" in message, message
    kind_of_result, problems = outcomes["verify"]
    assert kind_of_result == "report", outcomes["verify"]
    assert any(str(special) in p and what in p for p in problems), problems


ROLES = ["chunk", "original chunk", "original index", "manifest", "dictionary"]
ROLES += [f"{name} index" for name in ("csv", "parquet", "arrow")]


def dataset_with_special(root: Path, role: str, kind: str) -> tuple[Path, Path, dict]:
    """(dataset, the special file in it, options for acumen.open) for one role."""
    path = root / "ds"
    if role == "original chunk":
        special, options = original(path) / "chunks" / "chunk_1.chnk", {"dtype": "float32"}
    elif role == "original index":
        special, options = original(path) / "index.csv", {"dtype": "float32"}
    elif role == "dictionary":
        write(path, n=40, codec={"name": "zstd", "configuration": {"dictionary_size": 1024}})
        name = manifest_of(path)["codec"]["configuration"]["dictionary"]
        assert name, "the test needs a dictionary to be trained"
        special, options = path / name, {}
    elif role.endswith(" index"):
        index_format = role.split()[0]
        write(path, index_format=index_format)
        special, options = path / manifest_of(path)["index"]["file"], {}
    elif role == "manifest":
        special, options = write(path) / "manifest.json", {}
    else:
        special, options = write(path) / "chunks" / "chunk_1.chnk", {}
    replace_with(special, kind)
    return path, special, options


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("role", ROLES)
def test_a_special_file_in_a_dataset_is_refused_not_read(tmp_path: Path, role, kind) -> None:
    path, special, options = dataset_with_special(tmp_path, role, kind)
    assert_refused(path, special, kind, **options)


def test_a_manifest_that_is_no_file_is_not_read_as_an_original_dataset(tmp_path: Path) -> None:
    """With its manifest a FIFO, an acumen dataset used to open as an original one (its
    float32 samples read as float16): it is refused instead."""
    path = write(tmp_path / "ds", index_format="csv")
    replace_with(path / "manifest.json", "fifo")
    with pytest.raises(CorruptDatasetError, match="the manifest is a FIFO"):
        acumen.open(path)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_a_writing_marker_that_is_no_file_is_not_read(tmp_path: Path, kind: str) -> None:
    """The marker says which writer left the folder: a FIFO there must not stall the open."""
    path = write(tmp_path / "ds")
    KINDS[kind][0](path / ".acumen-writing")
    outcomes = child_outcomes(path)
    assert outcomes["seek"][0] == "IncompleteDatasetError", outcomes
    assert outcomes["verify"] == ["report", [outcomes["seek"][1]]]


# --- the check at the open, where no race can slip past it ----------------------------------


@pytest.fixture
def unblock_fifos() -> Iterator[list[Path]]:
    """FIFOs to open for writing after a while: a reader blocked on one then returns (the
    test fails on its assertions instead of hanging)."""
    fifos: list[Path] = []
    stop = threading.Event()

    def rescue() -> None:
        if stop.wait(10):
            return
        for fifo in fifos:
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    thread = threading.Thread(target=rescue, daemon=True)
    thread.start()
    yield fifos
    stop.set()
    thread.join()


@pytest.mark.parametrize("storage", STORAGES)
def test_a_chunk_that_became_a_fifo_after_the_open_is_refused(
    tmp_path: Path, storage: str, unblock_fifos: list[Path]
) -> None:
    """Storages open chunks when first read, after the open's checks: the open descriptor
    is checked (``fstat``), so a chunk replaced since is refused there, without blocking."""
    path = write(tmp_path / "ds")
    with acumen.open(path, storage=storage) as ds:
        chunk = Path(ds.storage.paths[-1])
        replace_with(chunk, "fifo")
        unblock_fifos.append(chunk)
        start = time.monotonic()
        with pytest.raises(CorruptDatasetError, match=r"chunk file is a FIFO, not a regular"):
            ds.read(len(ds) - 1)
        assert time.monotonic() - start < 5


@pytest.mark.parametrize("kind", ["fifo", "directory", "dev-null"])
def test_the_helpers_refuse_what_is_not_a_regular_file(tmp_path: Path, kind: str) -> None:
    special = tmp_path / "special"
    KINDS[kind][0](special)
    what = KINDS[kind][1]
    for check in (stat_regular, open_regular, read_regular_bytes):
        with pytest.raises(CorruptDatasetError, match=f"the thing is {what}, not a regular"):
            check(special, "thing")
    regular = tmp_path / "regular"
    regular.write_bytes(b"bytes")
    assert read_regular_bytes(regular, "thing") == b"bytes"
    fd = open_regular(regular, "thing")
    try:
        assert os.get_blocking(fd), "O_NONBLOCK is cleared once the file is known regular"
    finally:
        os.close(fd)
    with pytest.raises(FileNotFoundError):
        open_regular(tmp_path / "absent", "thing")


def test_opening_checks_chunks_without_a_syscall_more_per_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chunks' kinds come from the one ``lstat`` per chunk the open makes anyway."""
    path = write(tmp_path / "ds", n=60)
    chunks = sorted(str(path / c["file"]) for c in manifest_of(path)["chunks"])
    calls: list[tuple[str, str]] = []
    for name in ("lstat", "stat", "open"):
        real = getattr(os, name)

        def counted(file, *args, _real=real, _name=name, **kwargs):
            calls.append((_name, os.fspath(file)))
            return _real(file, *args, **kwargs)

        monkeypatch.setattr(os, name, counted)
    acumen.open(path).close()
    monkeypatch.undo()
    on_chunks = [(name, file) for name, file in calls if file.endswith(".chnk")]
    assert sorted(on_chunks) == [("lstat", chunk) for chunk in chunks]


# --- files the system will not read ---------------------------------------------------------

UNPRIVILEGED = r"""
import ctypes, json, os, sys
if os.geteuid() == 0:  # drop what lets root read any file: CAP_DAC_OVERRIDE, _READ_SEARCH
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
    class Data(ctypes.Structure):
        _fields_ = [(n, ctypes.c_uint32) for n in ("effective", "permitted", "inheritable")]
    libc = ctypes.CDLL(None, use_errno=True)
    header, data = Header(0x20080522, 0), (Data * 2)()
    if libc.capget(ctypes.byref(header), data) == 0:
        data[0].effective &= ~0b110
        data[0].permitted &= ~0b110
        libc.capset(ctypes.byref(header), data)
probe = sys.argv[1]
try:
    open(probe, "rb").close()
    print(json.dumps("privileged"))
    sys.exit(0)
except PermissionError:
    pass
from acumen import cli
from acumen.verify import verify
report = verify(sys.argv[2], progress=False, **json.loads(sys.argv[3]))
exit_code = cli.main(["verify", sys.argv[2], *sys.argv[4:]])
print(json.dumps([report.problems, report.chunks_checked, exit_code]))
"""


def verify_unprivileged(tmp_path: Path, path: Path, *cli_options: str, **options) -> tuple:
    """(problems, chunks checked, ``acumen verify`` exit status) for ``path`` verified by a
    process that cannot read what its mode forbids."""
    probe = tmp_path / "probe"
    probe.write_bytes(b"")
    probe.chmod(0)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            UNPRIVILEGED,
            str(probe),
            str(path),
            json.dumps(options),
            *cli_options,
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    if result == "privileged":
        pytest.skip("this process reads files whatever their mode and cannot drop that")
    assert "Traceback" not in done.stderr, done.stderr
    return tuple(result)


@pytest.fixture
def restore_modes() -> Iterator[list[Path]]:
    """Paths whose mode a test takes away: given back, so that tmp_path can be removed."""
    paths: list[Path] = []
    yield paths
    for path in paths:
        path.chmod(0o700 if path.is_dir() else 0o600)


@pytest.mark.parametrize(
    ("target", "mode"),
    [("manifest.json", 0), ("chunks", 0), ("chunks", 0o600), ("index.csv", 0)],
)
def test_verify_reports_an_unreadable_dataset_file(
    tmp_path: Path, restore_modes: list[Path], target: str, mode: int
) -> None:
    path = write(tmp_path / "ds")
    (path / target).chmod(mode)
    restore_modes.append(path / target)
    problems, _, exit_code = verify_unprivileged(tmp_path, path)
    assert len(problems) == 1, problems
    assert str(path / target) in problems[0] and "Permission denied" in problems[0]
    assert exit_code == 1


@pytest.mark.parametrize(
    ("layout", "codec"),
    [("acumen", "raw"), ("acumen", "zstd"), ("original", "raw"), ("original", "gzip")],
)
def test_verify_reports_an_unreadable_chunk_and_goes_on(
    tmp_path: Path, restore_modes: list[Path], layout: str, codec: str
) -> None:
    """One chunk file unreadable: one problem naming it; every other chunk is still checked,
    and a damaged chunk elsewhere is still found (where checksums or frames can tell)."""
    path = write(tmp_path / "ds", n=30, codec=codec)
    chunks = manifest_of(path)["chunks"]
    assert len(chunks) > 3
    unreadable, damaged = path / chunks[1]["file"], path / chunks[3]["file"]
    data = bytearray(damaged.read_bytes())
    data[-1] ^= 0xFF
    damaged.write_bytes(bytes(data))
    options: dict = {}
    cli_options: list[str] = []
    if layout == "original":
        (path / "manifest.json").unlink()
        options = {"dtype": "float32", "use_gzip": codec == "gzip"}
        cli_options = ["--dtype", "float32"] + (["--gzip"] if codec == "gzip" else [])
    unreadable.chmod(0)
    restore_modes.append(unreadable)
    problems, checked, exit_code = verify_unprivileged(tmp_path, path, *cli_options, **options)
    about_unreadable = [p for p in problems if str(unreadable) in p]
    assert len(about_unreadable) == 1, problems
    assert "cannot be read: Permission denied" in about_unreadable[0]
    if layout == "acumen":
        assert checked == len(chunks)
    if layout == "acumen" or codec != "raw":  # by its checksum, or a frame that fails
        assert len(problems) > len(about_unreadable), problems
    assert exit_code == 1


def test_verify_reports_an_io_error_on_the_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    path = write(tmp_path / "ds")

    def failing(path: Path) -> Manifest:
        raise OSError(errno.EIO, os.strerror(errno.EIO), str(path))

    monkeypatch.setattr(Manifest, "load", staticmethod(failing))
    assert cli.main(["info", str(path)]) == 1  # an error message, not a traceback
    assert f"acumen: error: [Errno {errno.EIO}]" in capsys.readouterr().err
    report = verify(path, progress=False)
    assert report.problems == [
        f"{path / 'manifest.json'}: cannot be read: {os.strerror(errno.EIO)}"
    ]


@pytest.mark.parametrize("codec", ["raw", "zstd"])
@pytest.mark.parametrize("checksums", ["chunk", "sample"])
def test_verify_reports_an_io_error_in_a_chunk_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, codec: str, checksums: str
) -> None:
    """An I/O error (EIO) while reading one chunk: reported once, naming the file; the
    other chunks' samples are all read."""
    path = write(tmp_path / "ds", n=30, codec=codec, checksums=checksums)
    with acumen.open(path) as ds:
        bad = ds.storage.paths[2]
    real_read = acumen.storage.seek.SeekStorage.read
    seen: set[int] = set()

    def read(self, chunk_id: int, offset: int, size: int):
        seen.add(chunk_id)
        if self.paths[chunk_id] == bad:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_read(self, chunk_id, offset, size)

    monkeypatch.setattr(acumen.storage.seek.SeekStorage, "read", read)
    real_checksum = acumen.read.verifiers.file_checksum

    def checksum(file: str) -> str:
        if file == bad:
            raise OSError(errno.EIO, os.strerror(errno.EIO), file)
        return real_checksum(file)

    monkeypatch.setattr(acumen.read.verifiers, "file_checksum", checksum)
    report = verify(path, progress=False, storage="seek")
    about = [p for p in report.problems if bad in p]
    assert len(about) == 1 and "Input/output error" in about[0], report.problems
    assert len(report.problems) == 1, report.problems
    chunks = len(manifest_of(path)["chunks"])
    assert report.chunks_checked == chunks
    reads_samples = codec != "raw" or checksums == "sample"
    assert seen == (set(range(chunks)) - {2} if reads_samples else set())


def test_a_storage_refuses_a_special_file_given_to_it_directly(
    tmp_path: Path, unblock_fifos: list[Path]
) -> None:
    special = tmp_path / "chunk"
    os.mkfifo(special)
    unblock_fifos.append(special)
    for name in STORAGES:
        with (
            plugins.storage(name, [special]) as storage,
            pytest.raises(CorruptDatasetError, match="is a FIFO"),
        ):
            storage.read(0, 0, 1)
