"""The training loop side by side: from a dataset to batches of tensors, every way in one run.

    .venv/bin/python benchmarks/loader.py [--quick] [--rounds 3] [--seconds 2]
    PYTHONPATH=$PWD /work/venv-peers/bin/python benchmarks/loader.py   # with the peers

Two workloads, written with acumen (raw codec, default chunks, mmap storage) into a
temporary folder, each sample with an int ``label``:

- small: 200,000 x float16 (32, 16), 1 KiB each (30,000 with ``--quick``);
- images: 3,000 x uint8 (224, 224, 3), 147 KiB each (1,000 with ``--quick``).

Every loader yields batches of 256 in a shuffled order, ``(samples, labels)`` as tensors,
and is timed over ``--seconds`` of passes (epochs, one after another; DataLoader workers
persist from one to the next), from its first batch (worker start-up is not counted); the
best of ``--rounds`` timings, each of a new loader, is shown.
Rows, all measured in this run:

- memcpy: one thread copying the same bytes, 256 samples at a time, from the page-cached
  chunk files into one preallocated buffer (the physical limit of a gather);
- read_batch: ``ds.read_batch`` alone on batches of 256 in the sampler's order (the reference:
  what the reader delivers with no loader around it);
- DataLoader per-sample: ``DataLoader(ds, batch_size=256, sampler=ChunkShuffleSampler(ds))``,
  the form most code has (``__getitems__``, the items collated by ``default_collate``);
- DataLoader + collate: the same with ``collate_fn=acumen.torch.collate``;
- DataLoader batch: ``DataLoader(ds, batch_size=None, sampler=BatchSampler(ChunkShuffleSampler(
  ds), 256, drop_last=False))``, one tensor per batch; and with ``sampler=ChunkShuffleSampler(
  ds).batches(256)``, the batches' positions cut from the order as arrays;
- BatchLoader: ``acumen.torch.BatchLoader(ds, 256, sampler=..., threads=1 or 2)``;
- peers, where importable (they are in /work/venv-peers, not in acumen's venv): LMDB (one
  key per sample, a map-style dataset, ``DataLoader(batch_size=256, shuffle=True)``; labels
  from an array in memory), litdata (``optimize`` then ``StreamingDataset(shuffle=True)`` +
  ``StreamingDataLoader``), MosaicML streaming (MDS, ``StreamingDataset(local=...,
  shuffle=True)`` + ``DataLoader``), each with 0 and 2 workers.

DataLoader rows run with 0 and 2 worker processes (fork). On a shared machine, figures move
between runs: read the ratios to read_batch and memcpy, measured in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import io
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from torch.utils.data import BatchSampler, DataLoader

import acumen
from acumen.torch import ChunkShuffleSampler, TorchDataset

try:  # the batch path's extras (absent from an older acumen measured for comparison)
    from acumen.torch import BatchLoader, collate
except ImportError:  # pragma: no cover
    BatchLoader = collate = None  # type: ignore[assignment, misc]

BATCH = 256


@dataclass
class Workload:
    name: str
    n: int
    shape: tuple[int, ...]
    dtype: str

    @property
    def sample_bytes(self) -> int:
        return int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize

    def sample(self, i: int) -> np.ndarray:
        """Sample ``i``: a cheap, distinct pattern (its values are never checked here)."""
        base = np.arange(int(np.prod(self.shape)), dtype=np.int64) + i
        return (base % 251).astype(self.dtype).reshape(self.shape)


@dataclass
class Row:
    name: str
    samples_per_s: float | None
    note: str = ""


def timed(loader: Iterable[Any], seconds: float, whole_epochs: bool = False) -> float:
    """Samples/s over passes of ``loader`` (epochs, one after another) for ``seconds``, from
    its first batch: the start-up before it is not counted. ``whole_epochs``: never leave
    a pass in the middle (MosaicML streaming waits for an unfinished epoch forever)."""
    count = 0
    start = None
    while True:
        for batch in loader:
            if start is None:
                start = time.perf_counter()
                continue
            samples = batch[0] if isinstance(batch, (tuple, list)) else batch
            count += len(samples)
            if not whole_epochs and time.perf_counter() - start > seconds:
                return count / (time.perf_counter() - start)
        if start is None:
            raise ValueError("the loader yielded nothing")
        if whole_epochs and time.perf_counter() - start > seconds:
            return count / (time.perf_counter() - start)


def best(
    make: Callable[[], Iterable[Any]], rounds: int, seconds: float, whole_epochs: bool = False
) -> float:
    """The best of ``rounds`` timings, each of a new loader (a DataLoader with workers keeps
    them from one pass to the next: its first pass's start-up is not counted)."""
    rates = []
    for _ in range(rounds):
        loader = make()
        rates.append(timed(loader, seconds, whole_epochs))
        del loader
        gc.collect()  # its workers stop here, not in a process forked later
    return max(rates)


class Repeat:
    """An iterable that calls ``batches`` for each pass."""

    def __init__(self, batches: Callable[[], Iterable[Any]]) -> None:
        self.batches = batches

    def __iter__(self) -> Any:
        return iter(self.batches())


# --- acumen -------------------------------------------------------------------------------
def write_acumen(work: Workload, path: Path) -> None:
    with acumen.Writer(path, durable=False) as writer:
        for i in range(work.n):
            writer.add(work.sample(i), label=i % 10)


def memcpy_rate(path: Path, work: Workload, rounds: int, seconds: float) -> float:
    """One thread copying 256 samples' bytes at a time from the mapped chunk files."""
    size = work.sample_bytes
    maps = [np.memmap(p, np.uint8, "r") for p in sorted((path / "chunks").glob("*"))]
    spans = [m[: len(m) // size * size].reshape(-1, size) for m in maps if len(m) >= size]
    out = np.empty((BATCH, size), np.uint8)

    def batches() -> Iterable[np.ndarray]:
        filled = 0
        for rows in spans:  # 256 rows at a time, a batch across chunk files where one ends
            at = 0
            while at < len(rows):
                take = min(BATCH - filled, len(rows) - at)
                np.copyto(out[filled : filled + take], rows[at : at + take])
                filled, at = filled + take, at + take
                if filled == BATCH:
                    filled = 0
                    yield out

    return best(lambda: Repeat(batches), rounds, seconds)


def acumen_rows(path: Path, rounds: int, seconds: float) -> list[Row]:
    data = TorchDataset(path, target="label")
    order = ChunkShuffleSampler(data, seed=0).epoch_order()

    def sampler() -> ChunkShuffleSampler:  # a new one per loader: none starts mid-epoch
        return ChunkShuffleSampler(data, seed=0)

    ds = data.dataset

    def read_batches() -> Iterable[np.ndarray]:
        for start in range(0, len(order), BATCH):
            yield ds.read_batch(order[start : start + BATCH])

    rows = [
        Row("read_batch alone (reference)", best(lambda: Repeat(read_batches), rounds, seconds))
    ]
    loaders: list[tuple[str, Callable[[], Iterable[Any]]]] = []
    for w in (0, 2):
        loaders.append(
            (
                f"DataLoader per-sample, {w} workers",
                lambda w=w: DataLoader(
                    data,
                    batch_size=BATCH,
                    sampler=sampler(),
                    num_workers=w,
                    persistent_workers=w > 0,
                ),
            )
        )
    if collate is None:
        print("acumen.torch has no collate/BatchLoader here (an older acumen): rows skipped")
    else:
        loaders.append(
            (
                "DataLoader + collate_fn=acumen.torch.collate, 0 workers",
                lambda: DataLoader(data, batch_size=BATCH, sampler=sampler(), collate_fn=collate),
            )
        )
        for w in (0, 2):
            loaders.append(
                (
                    f"DataLoader batch (batch_size=None, BatchSampler), {w} workers",
                    lambda w=w: DataLoader(
                        data,
                        batch_size=None,
                        sampler=BatchSampler(sampler(), BATCH, drop_last=False),
                        num_workers=w,
                        persistent_workers=w > 0,
                    ),
                )
            )
        loaders.append(
            (
                "DataLoader batch (batch_size=None, sampler.batches(256)), 0 workers",
                lambda: DataLoader(data, batch_size=None, sampler=sampler().batches(BATCH)),
            )
        )
        for t in (1, 2):
            loaders.append(
                (
                    f"BatchLoader, {t} thread{'s' if t > 1 else ''}",
                    lambda t=t: BatchLoader(data, BATCH, sampler=sampler(), threads=t),
                )
            )
    rows += [Row(name, best(make, rounds, seconds)) for name, make in loaders]
    return rows


# --- LMDB ---------------------------------------------------------------------------------
class LmdbDataset(torch.utils.data.Dataset):
    """One key per sample (8-byte big-endian index); opened lazily in each process."""

    def __init__(self, path: Path, work: Workload) -> None:
        self.path, self.work = str(path), work
        self.labels = np.arange(work.n) % 10
        self._txn: Any = None
        self._pid = -1

    def __len__(self) -> int:
        return self.work.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        if self._pid != os.getpid():
            import lmdb

            env = lmdb.open(self.path, readonly=True, lock=False, readahead=False)
            self._txn, self._pid = env.begin(buffers=False), os.getpid()
        value = np.frombuffer(self._txn.get(i.to_bytes(8, "big")), self.work.dtype)
        return torch.from_numpy(value.reshape(self.work.shape).copy()), int(self.labels[i])

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_txn": None, "_pid": -1}


def lmdb_rows(root: Path, work: Workload, rounds: int, seconds: float) -> list[Row]:
    import lmdb

    path = root / "lmdb"
    env = lmdb.open(str(path), map_size=work.n * work.sample_bytes * 2 + (64 << 20))
    with env.begin(write=True) as txn:
        for i in range(work.n):
            txn.put(i.to_bytes(8, "big"), work.sample(i).tobytes())
    env.close()
    data = LmdbDataset(path, work)
    # Workers first: LMDB refuses to open an environment in a process forked from one that
    # has it open (the 0-worker run opens it here).
    rows = [
        Row(
            f"LMDB {lmdb.__version__}: DataLoader, {w} workers",
            best(
                lambda w=w: DataLoader(
                    data, batch_size=BATCH, shuffle=True, num_workers=w, persistent_workers=w > 0
                ),
                rounds,
                seconds,
            ),
        )
        for w in (2, 0)
    ]
    return rows[::-1]


# --- litdata ------------------------------------------------------------------------------
_WORK: Workload | None = None  # for litdata's optimize workers (forked)


def _litdata_item(i: int) -> dict[str, Any]:
    assert _WORK is not None
    return {"x": _WORK.sample(i), "label": i % 10}


def litdata_rows(root: Path, work: Workload, rounds: int, seconds: float) -> list[Row]:
    import litdata

    global _WORK
    _WORK = work
    path = root / "litdata"
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        litdata.optimize(
            fn=_litdata_item,
            inputs=list(range(work.n)),
            output_dir=str(path),
            chunk_bytes="64MB",
            num_workers=1,
            start_method="fork",
            verbose=False,
        )

    def loader(workers: int) -> Iterable[Any]:
        ds = litdata.StreamingDataset(str(path), shuffle=True)
        batches = litdata.StreamingDataLoader(
            ds, batch_size=BATCH, num_workers=workers, persistent_workers=workers > 0
        )
        return Repeat(lambda: ((b["x"], b["label"]) for b in batches))

    return [
        Row(
            f"litdata {litdata.__version__}: StreamingDataLoader, {w} workers",
            best(lambda w=w: loader(w), rounds, seconds),
        )
        for w in (0, 2)
    ]


# --- MosaicML streaming -------------------------------------------------------------------
def mds_rows(root: Path, work: Workload, rounds: int, seconds: float) -> list[Row]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from compare import import_streaming  # torchvision stubbed where unusable

    streaming, note = import_streaming()
    from streaming.base.util import clean_stale_shared_memory

    clean_stale_shared_memory()
    path = root / "mds"
    column = f"ndarray:{work.dtype}:{','.join(map(str, work.shape))}"
    with streaming.MDSWriter(out=str(path), columns={"x": column, "label": "int"}) as writer:
        for i in range(work.n):
            writer.write({"x": work.sample(i), "label": i % 10})

    def loader(workers: int) -> Iterable[Any]:
        ds = streaming.StreamingDataset(local=str(path), batch_size=BATCH, shuffle=True)
        opened.append(ds)  # kept alive: each holds shared memory for the folder
        batches = DataLoader(
            ds, batch_size=BATCH, num_workers=workers, persistent_workers=workers > 0
        )
        return Repeat(lambda: ((b["x"], b["label"]) for b in batches))

    # Workers first, each run on a new StreamingDataset: its file locks, once used here,
    # refuse a forked worker ("inherited across fork").
    opened: list[Any] = []
    rows = [
        Row(
            f"MosaicML streaming {streaming.__version__}: DataLoader, {w} workers",
            best(lambda w=w: loader(w), rounds, seconds, whole_epochs=True),
            note,
        )
        for w in (2, 0)
    ]
    return rows[::-1]


PEERS = [("lmdb", lmdb_rows), ("litdata", litdata_rows), ("streaming", mds_rows)]


# --- the run ------------------------------------------------------------------------------
def run(work: Workload, root: Path, rounds: int, seconds: float) -> None:
    folder = root / work.name
    folder.mkdir()
    write_acumen(work, folder / "acumen")
    limit = memcpy_rate(folder / "acumen", work, rounds, seconds)
    rows = acumen_rows(folder / "acumen", rounds, seconds)
    for module, measure in PEERS:
        if importlib.util.find_spec(module) is None:
            print(f"{module} is not installed here: its rows skipped (see /work/venv-peers)")
            continue
        try:
            rows += measure(folder, work, rounds, seconds)
        except Exception as error:  # a peer's failure must not hide acumen's figures
            rows.append(Row(f"{module}: failed", None, f"{type(error).__name__}: {error}"))
    reference = rows[0].samples_per_s or float("nan")
    mb = work.sample_bytes / 1e6
    print(
        f"\n### {work.name}: {work.n:,} x {work.dtype} {work.shape}, "
        f"{work.sample_bytes / 1024:.0f} KiB each, batches of {BATCH}\n"
    )
    print("| path | samples/s | GB/s | x read_batch | x memcpy | note |")
    print("|---|---:|---:|---:|---:|---|")
    print(f"| memcpy, one thread (the limit) | {limit:,.0f} | {limit * mb / 1e3:.2f} | | 1.00 | |")
    for row in rows:
        rate = row.samples_per_s
        if rate is None:
            print(f"| {row.name} | | | | | {row.note} |")
            continue
        print(
            f"| {row.name} | {rate:,.0f} | {rate * mb / 1e3:.2f} | {rate / reference:.2f} | "
            f"{rate / limit:.2f} | {row.note} |"
        )
    sys.stdout.flush()
    shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data, one minute or less")
    parser.add_argument("--rounds", type=int, help="passes per row, the best shown (3; 2 quick)")
    parser.add_argument("--seconds", type=float, help="longest pass (2 s; 0.5 s quick)")
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 3)
    seconds = args.seconds or (0.5 if args.quick else 2.0)
    works = [
        Workload("small", 30_000 if args.quick else 200_000, (32, 16), "float16"),
        Workload("images", 1_000 if args.quick else 3_000, (224, 224, 3), "uint8"),
    ]
    print(
        f"acumen {acumen.__version__}, torch {torch.__version__}, numpy {np.__version__}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs ({platform.machine()}), "
        f"load {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory(prefix="acumen-loader-") as root:
        for work in works:
            run(work, Path(root), rounds, seconds)


if __name__ == "__main__":
    main()
