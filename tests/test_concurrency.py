"""Many readers at once, and one writer per folder.

Threads sharing one :class:`acumen.Dataset`, processes each unpickling the same pickled
dataset (fork and spawn), and a torch DataLoader with workers under fork, spawn and
forkserver, with every storage: every sample read comes back with the right bytes. A writer
claims its folder: a second writer (in this process or another) is refused, a folder whose
writer died stays incomplete and untouched, and readers are refused while it is written.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import acumen
from acumen.errors import DatasetExistsError, IncompleteDatasetError

from .conftest import STORAGES

REPO = Path(__file__).resolve().parents[1]
N = 1500
N_SMALL = 300  # for the DataLoader: each sample crosses processes as a tensor of its own
READS = 3000  # random samples each thread or process reads
THREADS = 16
PROCESSES = 4
TIMEOUT = 180  # seconds: generous, only so that a hang fails instead of blocking forever
CHUNK_BYTES = 4096


def sample(i: int) -> np.ndarray:
    """Sample ``i``: a deterministic array whose shape and values depend on ``i``."""
    rows = i % 7 + 1
    values = (np.arange(rows * 4, dtype=np.int64) * 2654435761 + i * 40503) % 65521
    return values.astype(np.uint16).reshape(rows, 4)


def expected_bytes(i: int) -> tuple[tuple[int, ...], bytes]:
    array = sample(i)
    return array.shape, array.tobytes()


def check_reads(ds: acumen.Dataset, seed: int, count: int = READS) -> list[str]:
    """Read ``count`` random samples (one by one, by item, and in batches); list what is wrong."""
    rng = np.random.default_rng(seed)
    positions = rng.integers(0, len(ds), size=count).tolist()
    wrong = []
    for k, i in enumerate(positions):
        if k % 3 == 0:
            got = ds.read(i)
        elif k % 3 == 1:
            got, meta = ds[i]
            if meta["number"] != i:
                wrong.append(f"sample {i}: metadata {meta}")
        else:
            got = ds.read(i, copy=True)
        if got.dtype != np.uint16 or (got.shape, got.tobytes()) != expected_bytes(i):
            wrong.append(f"sample {i}: wrong bytes")
    batch_positions = rng.integers(0, len(ds), size=200).tolist()
    for i, got in zip(batch_positions, ds.read_batch(batch_positions), strict=True):
        if (got.shape, got.tobytes()) != expected_bytes(i):
            wrong.append(f"sample {i}: wrong bytes in a batch")
    return wrong


_INHERITED: list[acumen.Dataset] = []  # a dataset the parent holds when it forks


def read_pickled(args: tuple[bytes | None, int]) -> tuple[int, int, list[str]]:
    """A worker process: unpickle the dataset (or, forked, use the parent's object as
    inherited), read random samples, say what was wrong."""
    data, seed = args
    ds = pickle.loads(data) if data is not None else _INHERITED[0]
    try:
        return os.getpid(), seed, check_reads(ds, seed)
    finally:
        ds.close()


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    """Small datasets per codec (and smaller ones for the DataLoader), many chunk files each."""
    root = tmp_path_factory.mktemp("concurrency")
    paths = {}
    for codec in ("raw", "zstd"):
        for name, count, size in ((codec, N, CHUNK_BYTES), (f"{codec}-small", N_SMALL, 1024)):
            path = root / name
            with acumen.Writer(path, codec=codec, chunk_size_bytes=size) as writer:
                for i in range(count):
                    writer.add(sample(i), number=i)
            paths[name] = path
    with acumen.open(paths["raw"]) as ds:
        assert int(ds.table.chunk_ids.max()) > 5  # the reads cross many chunk files
    with acumen.open(paths["raw-small"]) as ds:
        assert int(ds.table.chunk_ids.max()) > 2
    return paths


# --- many readers ------------------------------------------------------------------------
@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("codec", ["raw", "zstd"])
def test_threads_share_one_dataset(datasets, codec, storage):
    ds = acumen.open(datasets[codec], storage=storage)  # no handle open yet: first reads race
    start = threading.Barrier(THREADS, timeout=TIMEOUT)

    def reader(seed: int) -> list[str]:
        start.wait()
        return check_reads(ds, seed)

    with ds, ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(reader, seed) for seed in range(THREADS)]
        results = [future.result(timeout=TIMEOUT) for future in futures]
    assert [wrong for wrong in results if wrong] == []


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("codec", ["raw", "zstd"])
def test_forked_processes_read_one_dataset(datasets, codec, storage):
    """Forked while the parent has handles open: children given the pickled dataset and
    children using the inherited object itself all read the right bytes."""
    with acumen.open(datasets[codec], storage=storage) as ds:
        check_reads(ds, 1, 300)  # the parent has chunk handles open when it forks
        data = pickle.dumps(ds)
        _INHERITED[:] = [ds]
        try:
            with multiprocessing.get_context("fork").Pool(PROCESSES) as pool:
                jobs = [(data if seed % 2 else None, 200 + seed) for seed in range(PROCESSES)]
                results = pool.map_async(read_pickled, jobs, chunksize=1).get(timeout=TIMEOUT)
        finally:
            _INHERITED.clear()
        # The parent still reads right after its children closed their copies.
        assert check_reads(ds, 7, 300) == []
    assert sorted(seed for _, seed, _ in results) == [200 + s for s in range(PROCESSES)]
    assert os.getpid() not in {pid for pid, _, _ in results}
    assert [wrong for _, _, wrong in results if wrong] == []


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_dataloader_workers_read_every_sample_once(datasets, method, storage):
    pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    from acumen.torch import TorchDataset

    # Each storage once; zstd with seek, so both codecs go through workers.
    codec = "zstd" if storage == "seek" else "raw"
    data = TorchDataset(datasets[f"{codec}-small"], target="number", storage=storage)
    assert data[5][1] == 5  # the parent has a chunk open when workers fork
    loader = DataLoader(
        data,
        batch_size=32,
        shuffle=True,
        num_workers=2,
        multiprocessing_context=method,
        collate_fn=list,  # samples differ in shape: keep each batch a list
        persistent_workers=True,
        timeout=TIMEOUT,
    )
    try:
        for _epoch in range(2):
            seen = []
            for batch in loader:
                for tensor, number in batch:
                    shape, expected = expected_bytes(number)
                    assert tuple(tensor.shape) == shape
                    assert tensor.numpy().tobytes() == expected, f"sample {number}"
                    seen.append(number)
            assert sorted(seen) == list(range(N_SMALL))
    finally:
        del loader  # persistent workers stop with their iterator
        data.dataset.close()


@pytest.fixture(scope="module")
def spawned_pool():
    """Spawned workers cost a second or two to start: one pool serves every spawn test.

    Its tests come after every fork in this module: no fork happens while its threads run.
    """
    with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
        yield pool


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("codec", ["raw", "zstd"])
def test_spawned_processes_unpickle_one_dataset(datasets, spawned_pool, codec, storage):
    with acumen.open(datasets[codec], storage=storage) as ds:
        ds.read(0)
        data = pickle.dumps(ds)
        jobs = [(data, 100 + seed) for seed in range(PROCESSES)]
        results = spawned_pool.map_async(read_pickled, jobs, chunksize=1).get(timeout=TIMEOUT)
        assert check_reads(ds, 7, 200) == []
    assert sorted(seed for _, seed, _ in results) == [100 + s for s in range(PROCESSES)]
    assert os.getpid() not in {pid for pid, _, _ in results}
    assert [wrong for _, _, wrong in results if wrong] == []


# --- one writer per folder ---------------------------------------------------------------
def files_of(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def run_python(code: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ACUMEN_PLUGINS": "builtin", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=REPO,
        env=env,
    )


SECOND_WRITER = """
import sys
import acumen
from acumen.errors import DatasetExistsError
try:
    acumen.Writer(sys.argv[1])
except DatasetExistsError as error:
    print("refused:", error)
    sys.exit(3)
print("accepted")
"""


def test_second_writer_in_the_same_process_is_refused(tmp_path):
    path = tmp_path / "ds"
    with acumen.Writer(path, chunk_size_bytes=256) as first:
        for i in range(20):
            first.add(sample(i), number=i)
        with pytest.raises(DatasetExistsError, match=str(path)):
            acumen.Writer(path)
        with pytest.raises(DatasetExistsError):
            acumen.Writer(path, codec="zstd")
        for i in range(20, 40):
            first.add(sample(i), number=i)
    with acumen.open(path) as ds:
        assert len(ds) == 40
        assert all(ds.read(i).tobytes() == sample(i).tobytes() for i in range(40))


def test_second_writer_in_another_process_is_refused(tmp_path):
    path = tmp_path / "ds"
    # durable=False: full chunks are sealed (renamed) at once, not on a background thread,
    # so the files listed below are settled.
    with acumen.Writer(path, chunk_size_bytes=256, durable=False) as first:
        for i in range(20):
            first.add(sample(i), number=i)
        before = files_of(path)
        result = run_python(SECOND_WRITER, str(path))
        assert result.returncode == 3, (result.stdout, result.stderr)
        assert "refused:" in result.stdout and str(path) in result.stdout
        assert files_of(path) == before  # the refused writer touched nothing
        for i in range(20, 40):
            first.add(sample(i), number=i)
    with acumen.open(path) as ds:
        assert len(ds) == 40
        assert all(ds.read(i).tobytes() == sample(i).tobytes() for i in range(40))
    assert not (path / ".acumen-writing").exists()


def test_writers_racing_for_one_empty_folder(tmp_path, monkeypatch):
    """Another writer claims the folder between this one's look and its claim: refused all
    the same, with the same error (the claim itself is exclusive)."""
    import acumen.files.claim

    path = tmp_path / "ds"
    path.mkdir()
    claim = acumen.files.claim.claim_folder
    rival: list[acumen.Writer] = []

    def rival_first(root: Path, kind: str) -> acumen.files.claim.Claim:
        if not rival:
            monkeypatch.setattr(acumen.files.claim, "claim_folder", claim)
            rival.append(acumen.Writer(root))  # wins the race
        return claim(root, kind)

    monkeypatch.setattr(acumen.files.claim, "claim_folder", rival_first)
    with pytest.raises(DatasetExistsError):
        acumen.Writer(path)
    with rival[0] as winner:
        winner.add(sample(1), number=1)
    with acumen.open(path) as ds:
        assert ds.read(0).tobytes() == sample(1).tobytes()


DIE_WHILE_WRITING = """
import os, signal, sys
import numpy as np
import acumen
writer = acumen.Writer(sys.argv[1], chunk_size_bytes=256)
for i in range(50):
    writer.add(np.full((3, 4), i, dtype=np.uint16), number=i)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_writer_refuses_a_folder_whose_writer_died(tmp_path):
    path = tmp_path / "ds"
    result = run_python(DIE_WHILE_WRITING, str(path))
    assert result.returncode == -9, result.stderr
    assert (path / ".acumen-writing").exists()
    assert not (path / "manifest.json").exists()
    marker = json.loads((path / ".acumen-writing").read_text(encoding="utf-8"))
    before = files_of(path)
    with pytest.raises(DatasetExistsError) as caught:
        acumen.Writer(path)
    message = str(caught.value)
    assert str(path) in message
    assert "incomplete" in message, message  # says why: a write started and never finished
    assert files_of(path) == before  # nothing deleted, nothing added
    with pytest.raises(IncompleteDatasetError, match=f"pid {marker['pid']}"):
        acumen.open(path)


def test_open_while_a_writer_is_mid_write_is_refused(tmp_path):
    path = tmp_path / "ds"
    with acumen.Writer(path, chunk_size_bytes=256) as writer:
        with pytest.raises(IncompleteDatasetError, match="incomplete"):
            acumen.open(path)  # before any sample
        for i in range(30):
            writer.add(sample(i), number=i)
        assert list(path.glob("chunks/chunk_*.chnk"))  # chunk files are there already
        with pytest.raises(IncompleteDatasetError, match=f"pid {os.getpid()}"):
            acumen.open(path)
    with acumen.open(path) as ds:
        assert len(ds) == 30


def test_readers_in_threads_while_a_writer_writes(tmp_path):
    """Readers polling a folder being written see it refused until the writer is done, then
    whole: never a partial dataset."""
    path = tmp_path / "ds"
    writer = acumen.Writer(path, chunk_size_bytes=256)
    written = threading.Event()
    outcomes: list[str] = []

    def poll() -> None:
        while True:
            done = written.is_set()
            try:
                with acumen.open(path) as ds:
                    if len(ds) != 200 or any(
                        ds.read(i).tobytes() != sample(i).tobytes() for i in range(len(ds))
                    ):
                        outcomes.append(f"partial or wrong: {len(ds)} samples")
                    else:
                        outcomes.append("whole")
                    return
            except IncompleteDatasetError:
                outcomes.append("incomplete")
            if done:  # the writer had finished before this attempt, and still no dataset
                outcomes.append("never opened")
                return

    threads = [threading.Thread(target=poll) for _ in range(3)]
    for thread in threads:
        thread.start()
    for i in range(200):
        writer.add(sample(i), number=i)
    writer.close()
    written.set()
    for thread in threads:
        thread.join(TIMEOUT)
    assert not any(thread.is_alive() for thread in threads)
    assert outcomes.count("whole") == 3
    assert set(outcomes) <= {"whole", "incomplete"}
