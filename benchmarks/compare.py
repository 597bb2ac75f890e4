"""acumen side by side with the original acumenindexer and the stores users would otherwise pick.

    .venv/bin/python benchmarks/compare.py [--quick] [--out benchmarks/results]

Three shapes of data, each with two metadata fields (``label`` int, ``split`` str):

- small: N x float16 (32, 16), 1 KiB each (N = 200,000; 20,000 with ``--quick``);
- variable: float32 (L, 17, 2) with L in 16..63 (50,000; 10,000 with ``--quick``);
- images: uint8 (224, 224, 3), 147 KiB each (5,000; 500 with ``--quick``).

For every system and configuration, in this run, on one thread:

- write: samples/s and MB/s of array bytes, one ``add``/``put``/``write`` per sample,
  including the final flush and index write;
- open: median ms of opening the written store (3 tries), and the Python memory the open
  keeps allocated (tracemalloc: Python objects and numpy buffers; not memory maps, Arrow's
  pool or shared memory) divided by the number of samples;
- get µs: median of per-call ``perf_counter_ns`` timings over the same random indices of the
  system's own per-sample read (acumen ``ds[i]``: array and metadata dict; stores that keep
  no metadata - numpy memmap, h5py, LMDB - return the array only, so compare them with
  acumen's ``read(i)`` column); ``x mmap`` is that median over acumen mmap raw's ``ds[i]``;
- read µs: acumen's ``ds.read(i)`` (array only); for codecs, ``lib µs`` is the compression
  library's own decompress of the same stored payloads and ``+µs`` the difference;
- iterate: sequential samples/s (the whole store, or as much as fits in a few seconds);
- batch: GB/s of array bytes for batches of 256 random distinct indices gathered into one
  array (fixed shapes only; h5py needs them sorted).

Every store is written to a temporary folder, then each of its files is read once so that
reads come from a warm page cache. Optional systems (h5py, lmdb, litdata, MosaicML streaming,
matplotlib for the plot) are skipped when not importable: ``pip install -e .[bench]``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.machinery
import importlib.metadata
import io
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import acumen

CHUNK_BYTES = 64 << 20
BATCH = 256


# --- data -------------------------------------------------------------------------------
@dataclass
class Shape:
    name: str
    description: str
    n: int
    dtype: np.dtype
    fixed: tuple[int, ...] | None  # None: variable shapes
    samples: list[tuple[np.ndarray, dict]] = field(default_factory=list, repr=False)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a, _ in self.samples)


def metadata(i: int) -> dict:
    return {"label": i % 10, "split": "train" if i % 5 else "val"}


def small_samples(n: int) -> list[tuple[np.ndarray, dict]]:
    data = np.random.default_rng(0).normal(size=(n, 32, 16)).astype(np.float16)
    return [(data[i], metadata(i)) for i in range(n)]


def variable_samples(n: int) -> list[tuple[np.ndarray, dict]]:
    """Skeleton-like sequences as in ``acumen demo``: smooth motion, rounded to 1e-3."""
    rng = np.random.default_rng(0)
    samples = []
    for i in range(n):
        length = int(rng.integers(16, 64))
        base = rng.normal(size=(1, 17, 2)).astype(np.float32)
        motion = np.cumsum(rng.normal(scale=0.01, size=(length, 17, 2)), axis=0)
        samples.append((np.round(base + motion, 3).astype(np.float32), metadata(i)))
    return samples


def image_samples(n: int) -> list[tuple[np.ndarray, dict]]:
    """Smooth gradients, shifted, plus a little noise: compressible like photos, not trivially."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:224, 0:224].astype(np.float32) / 224
    bases = []
    for _ in range(8):
        a, b, c = rng.uniform(0.5, 6, 3)
        channels = [np.sin(a * x + b * y + k) * np.cos(c * y - k * x) for k in range(3)]
        bases.append(((np.stack(channels, -1) + 1) * 110).astype(np.uint8))
    noise = [rng.integers(0, 16, (224, 224, 3), dtype=np.uint8) for _ in range(8)]
    samples = []
    for i in range(n):
        shift = int(rng.integers(0, 224))
        image = np.roll(bases[i % 8], shift, axis=1) + noise[(i // 8) % 8]
        samples.append((image, metadata(i)))
    return samples


def make_shapes(quick: bool) -> list[Shape]:
    n_small, n_variable, n_images = (20_000, 10_000, 500) if quick else (200_000, 50_000, 5_000)
    f16, f32, u8 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.uint8)
    shapes = [
        Shape("small", "float16 (32, 16), 1 KiB", n_small, f16, (32, 16)),
        Shape("variable", "float32 (L, 17, 2), L in 16..63", n_variable, f32, None),
        Shape("images", "uint8 (224, 224, 3), 147 KiB", n_images, u8, (224, 224, 3)),
    ]
    makers = {"small": small_samples, "variable": variable_samples, "images": image_samples}
    for shape in shapes:
        shape.samples = makers[shape.name](shape.n)
    return shapes


# --- measuring --------------------------------------------------------------------------
@dataclass
class Row:
    system: str
    config: str
    write_sps: float | None = None
    write_mbps: float | None = None
    open_ms: float | None = None
    open_bytes_per_sample: float | None = None
    get_us: float | None = None
    read_us: float | None = None
    lib_us: float | None = None
    iter_sps: float | None = None
    batch_gbps: float | None = None
    note: str = ""


def median_us(call: Callable[[int], object], indices: list[int], budget: float) -> float:
    """Median µs per call over ``indices``, or over the first of them (at least 500) that fit
    in ``budget`` seconds for readers too slow to do them all."""
    for i in indices[:200]:  # lazy set-up (first touches, caches) is not a random read
        call(i)
    times = []
    clock = time.perf_counter_ns
    deadline = clock() + int(budget * 1e9)
    for k, i in enumerate(indices):
        start = clock()
        call(i)
        end = clock()
        times.append(end - start)
        if k >= 500 and end > deadline:
            break
    return statistics.median(times) / 1000


def iterate_rate(items: Iterable[object], n: int, seconds: float) -> tuple[float, int]:
    """Samples per second over the whole store, or over what fits in ``seconds``."""
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    for _ in items:
        count += 1
        if count & 1023 == 0 and time.perf_counter() > deadline:
            break
        if count >= n:
            break
    return count / (time.perf_counter() - start), count


def batch_rate(call: Callable[[np.ndarray], np.ndarray], batches: list[np.ndarray]) -> float:
    call(batches[0])
    times, nbytes = [], 0
    for indices in batches:
        start = time.perf_counter_ns()
        out = call(indices)
        times.append(time.perf_counter_ns() - start)
        nbytes = out.nbytes
    return nbytes / (statistics.median(times) / 1e9) / 1e9


def measure_open(opener: Callable[[], Any], n: int, tries: int = 3) -> tuple[float, float, Any]:
    """Median wall ms of ``tries`` opens, and bytes/sample tracemalloc sees the open keep."""
    times = []
    for _ in range(tries):
        gc.collect()
        start = time.perf_counter()
        handle = opener()
        times.append((time.perf_counter() - start) * 1000)
        close(handle)
        del handle
    kept, handle = [], None
    for _ in range(2):  # the smaller of two: a stray allocation elsewhere can land in one
        if handle is not None:
            close(handle)
            handle = None
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        handle = opener()
        gc.collect()
        kept.append(tracemalloc.get_traced_memory()[0] - before)
        tracemalloc.stop()
    return statistics.median(times), min(kept) / n, handle


def close(handle: Any) -> None:
    closer = getattr(handle, "close", None)
    if callable(closer):
        closer()


def warm(path: Path) -> None:
    """Read every file of a store once so that the timed reads hit the page cache."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for file in files:
        with open(file, "rb") as f:
            while f.read(16 << 20):
                pass


def timed_write(write: Callable[[], None], shape: Shape) -> tuple[float, float]:
    gc.collect()
    start = time.perf_counter()
    write()
    seconds = time.perf_counter() - start
    return shape.n / seconds, shape.nbytes / seconds / 1e6


@dataclass
class Context:
    root: Path
    shape: Shape
    probe: list[int]
    batches: list[np.ndarray]
    seconds: float  # time budget of one random-read or iteration measurement
    keep: list[Path]  # folders to delete only at the end (background threads may use them)

    def median_us(self, call: Callable[[int], object], probe: list[int] | None = None) -> float:
        return median_us(call, self.probe if probe is None else probe, self.seconds)

    def iterate(self, items: Iterable[object]) -> float:
        return iterate_rate(items, self.shape.n, self.seconds)[0]


# --- acumen -----------------------------------------------------------------------------
def library_decode(codec: str) -> Callable[[bytes], bytes]:
    if codec == "gzip":
        import zlib

        return lambda payload: zlib.decompress(payload, 16 + zlib.MAX_WBITS)
    if codec == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompress
    import lz4.frame

    return lz4.frame.decompress


def stored_payloads(path: Path, ds: Any, indices: list[int]) -> dict[int, bytes]:
    table = ds.table
    files = {}
    payloads = {}
    for i in set(indices):
        name = table.chunk_names[int(table.chunk_ids[i])]
        if name not in files:
            files[name] = (path / name).read_bytes()
        offset, size = int(table.offsets[i]), int(table.sizes[i])
        payloads[i] = files[name][offset : offset + size]
    return payloads


def bench_acumen(ctx: Context) -> list[Row]:
    shape, rows = ctx.shape, []
    configs = [("raw", "mmap"), ("raw", "seek"), ("raw", "memory")]
    configs += [(codec, "mmap") for codec in ("gzip", "zstd", "lz4")]
    written: dict[str, tuple[float, float]] = {}
    for codec, storage in configs:
        path = ctx.root / f"acumen-{codec}"
        if codec not in written:

            def write(path: Path = path, codec: str = codec) -> None:
                with acumen.Writer(path, codec=codec, chunk_size_bytes=CHUNK_BYTES) as writer:
                    for array, meta in shape.samples:
                        writer.add(array, **meta)

            written[codec] = timed_write(write, shape)
            warm(path)
            sps, mbps = written[codec]
        else:
            sps = mbps = None
        open_ms, per_sample, ds = measure_open(
            lambda path=path, storage=storage: acumen.open(path, storage=storage), shape.n
        )
        row = Row("acumen", f"{storage} {codec}", sps, mbps, open_ms, per_sample)
        row.get_us = ctx.median_us(ds.__getitem__)
        row.read_us = ctx.median_us(ds.read)
        if codec != "raw":
            decode = library_decode(codec)
            payloads = stored_payloads(path, ds, ctx.probe)
            row.lib_us = ctx.median_us(lambda i, p=payloads, d=decode: d(p[i]))
        row.iter_sps = ctx.iterate(ds)
        if shape.fixed:
            row.batch_gbps = batch_rate(ds.read_batch, ctx.batches)
        rows.append(row)
        if codec == "raw" and storage == "mmap" and shape.fixed:
            # A writable copy, as a caller who modifies the array would make.
            copy = Row("acumen", "mmap raw, np.array(ds.read(i))")
            copy.read_us = ctx.median_us(lambda i, ds=ds: np.array(ds.read(i)))
            copy.note = "writable copy"
            rows.append(copy)
            own = Row("acumen", "mmap raw, ds.read(i, copy=True)")
            own.read_us = ctx.median_us(lambda i, ds=ds: ds.read(i, copy=True))
            own.note = "writable copy"
            rows.append(own)
        ds.close()
    # Writing without fsync, as the memmap and h5py rows write (LMDB syncs once at the end).
    scratch = ctx.root / "acumen-not-durable"

    def write_not_durable() -> None:
        with acumen.Writer(scratch, chunk_size_bytes=CHUNK_BYTES, durable=False) as writer:
            for array, meta in shape.samples:
                writer.add(array, **meta)

    sps, mbps = timed_write(write_not_durable, shape)
    rows.append(Row("acumen", "raw, durable=False", sps, mbps, note="chunk files not fsynced"))
    shutil.rmtree(scratch)
    # The index memory target is "beyond the metadata columns": the same data without any.
    path = ctx.root / "acumen-nometa"

    def write_bare() -> None:
        with acumen.Writer(path, chunk_size_bytes=CHUNK_BYTES) as writer:
            for array, _ in shape.samples:
                writer.add(array)

    sps, mbps = timed_write(write_bare, shape)
    warm(path)
    open_ms, per_sample, ds = measure_open(lambda: acumen.open(path), shape.n)
    row = Row("acumen", "mmap raw, no metadata", sps, mbps, open_ms, per_sample)
    row.get_us = ctx.median_us(ds.__getitem__)
    row.read_us = ctx.median_us(ds.read)
    rows.append(row)
    ds.close()
    for codec in written:
        shutil.rmtree(ctx.root / f"acumen-{codec}")
    shutil.rmtree(path)
    return rows


# --- the original acumenindexer ---------------------------------------------------------
def bench_original(ctx: Context) -> list[Row]:
    import acumenindexer

    shape = ctx.shape
    path = ctx.root / "original"

    def write() -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            acumenindexer.split_into_chunks(
                shape.samples,
                str(path),
                n_jobs=1,
                chunk_size_bytes=CHUNK_BYTES,
                dtype=shape.dtype.type,
            )

    sps, mbps = timed_write(write, shape)
    warm(path)
    rows = []
    for in_memory in (False, True):

        def opener(in_memory: bool = in_memory) -> Callable:
            index = acumenindexer.load_index(str(path / "index.csv"))
            return acumenindexer.read_from_index(
                index, dtype=shape.dtype.type, chunk_paths=str(path), in_memory=in_memory
            )

        open_ms, per_sample, read = measure_open(opener, shape.n)
        row = Row("acumenindexer 0.0.1", f"in_memory={in_memory}", open_ms=open_ms)
        row.open_bytes_per_sample = per_sample
        if not in_memory:
            row.write_sps, row.write_mbps, row.note = sps, mbps, "split_into_chunks n_jobs=1"
        row.get_us = ctx.median_us(read)
        row.iter_sps = ctx.iterate(map(read, range(shape.n)))
        if shape.fixed:
            row.batch_gbps = batch_rate(
                lambda idx, read=read: np.stack([read(i)[0] for i in idx.tolist()]), ctx.batches
            )
        rows.append(row)
    shutil.rmtree(path)
    return rows


# --- a plain numpy memmap ---------------------------------------------------------------
def bench_memmap(ctx: Context) -> list[Row]:
    shape = ctx.shape
    path = ctx.root / "memmap"
    path.mkdir()
    if shape.fixed:

        def write() -> None:
            mm = np.lib.format.open_memmap(
                path / "data.npy", mode="w+", dtype=shape.dtype, shape=(shape.n, *shape.fixed)
            )
            for i, (array, _) in enumerate(shape.samples):
                mm[i] = array
            mm.flush()
            del mm

        def opener() -> Any:
            return np.load(path / "data.npy", mmap_mode="r")

    else:

        def write() -> None:
            offsets = np.zeros(shape.n + 1, dtype=np.int64)
            lengths = np.zeros(shape.n, dtype=np.int32)
            with open(path / "data.bin", "wb") as f:
                for i, (array, _) in enumerate(shape.samples):
                    f.write(array.tobytes())
                    offsets[i + 1] = offsets[i] + array.size
                    lengths[i] = array.shape[0]
            np.save(path / "offsets.npy", offsets)
            np.save(path / "lengths.npy", lengths)

        def opener() -> Any:
            flat = np.memmap(path / "data.bin", dtype=shape.dtype, mode="r")
            return flat, np.load(path / "offsets.npy"), np.load(path / "lengths.npy")

    sps, mbps = timed_write(write, shape)
    warm(path)
    open_ms, per_sample, handle = measure_open(opener, shape.n)
    if shape.fixed:
        mm = handle

        def view(i: int) -> np.ndarray:
            return mm[i]

        def batch(idx: np.ndarray) -> np.ndarray:
            return mm[idx]

    else:
        flat, offsets, lengths = handle
        tail = shape.samples[0][0].shape[1:]

        def view(i: int) -> np.ndarray:
            return flat[offsets[i] : offsets[i + 1]].reshape(lengths[i], *tail)

        batch = None

    def copy(i: int) -> np.ndarray:
        return np.array(view(i))

    rows = []
    for label, call in (("copy np.array(mm[i])", copy), ("view mm[i]", view)):
        row = Row("numpy memmap", label, open_ms=open_ms, open_bytes_per_sample=per_sample)
        if call is copy:
            row.write_sps, row.write_mbps = sps, mbps
            if batch is not None:
                row.batch_gbps = batch_rate(batch, ctx.batches)
        row.get_us = ctx.median_us(call)
        row.iter_sps = ctx.iterate(map(call, range(shape.n)))
        row.note = "array only"
        rows.append(row)
    shutil.rmtree(path)  # still mapped: the pages go when the maps do, on return
    return rows


# --- h5py -------------------------------------------------------------------------------
def bench_h5py(ctx: Context) -> list[Row]:
    import h5py

    shape = ctx.shape
    path = ctx.root / "data.h5"
    tail = shape.samples[0][0].shape[1:]

    def write() -> None:
        with h5py.File(path, "w") as f:
            if shape.fixed:
                d = f.create_dataset("x", shape=(shape.n, *shape.fixed), dtype=shape.dtype)
                for i, (array, _) in enumerate(shape.samples):
                    d[i] = array
            else:
                # A flat array and offsets: vlen types or one dataset per sample are far slower.
                total = sum(a.size for a, _ in shape.samples)
                d = f.create_dataset("x", shape=(total,), dtype=shape.dtype)
                offsets = np.zeros(shape.n + 1, dtype=np.int64)
                lengths = np.zeros(shape.n, dtype=np.int32)
                for i, (array, _) in enumerate(shape.samples):
                    offsets[i + 1] = offsets[i] + array.size
                    d[offsets[i] : offsets[i + 1]] = array.reshape(-1)
                    lengths[i] = array.shape[0]
                f.create_dataset("offsets", data=offsets)
                f.create_dataset("lengths", data=lengths)

    sps, mbps = timed_write(write, shape)
    warm(path)

    def opener() -> Any:
        f = h5py.File(path, "r")
        if shape.fixed:
            return f, f["x"], None, None
        return f, f["x"], f["offsets"][:], f["lengths"][:]

    open_ms, per_sample, handle = measure_open(lambda: _Closing(opener()), shape.n)
    f, d, offsets, lengths = handle
    row = Row("h5py", "contiguous" + ("" if shape.fixed else ", flat + offsets"), sps, mbps)
    row.open_ms, row.open_bytes_per_sample, row.note = open_ms, per_sample, "array only"
    if shape.fixed:

        def get(i: int) -> np.ndarray:
            return d[i]

        row.batch_gbps = batch_rate(lambda idx: d[np.sort(idx)], ctx.batches)
    else:

        def get(i: int) -> np.ndarray:
            return d[offsets[i] : offsets[i + 1]].reshape(lengths[i], *tail)

    row.get_us = ctx.median_us(get)
    row.iter_sps = ctx.iterate(map(get, range(shape.n)))
    f.close()
    path.unlink()
    return [row]


class _Closing(tuple):
    """A tuple of handles whose first item has ``close`` (for ``measure_open``)."""

    def close(self) -> None:
        self[0].close()


# --- LMDB -------------------------------------------------------------------------------
def bench_lmdb(ctx: Context) -> list[Row]:
    import lmdb

    shape = ctx.shape
    path = ctx.root / "lmdb"
    map_size = 2 * shape.nbytes + (256 << 20)

    def write() -> None:
        env = lmdb.open(str(path), map_size=map_size)
        with env.begin(write=True) as txn:
            lengths = np.zeros(shape.n, dtype=np.int32)
            for i, (array, _) in enumerate(shape.samples):
                txn.put(i.to_bytes(8, "big"), array.tobytes())
                lengths[i] = array.shape[0]
            if not shape.fixed:  # the shapes are stored, under a key outside the samples'
                txn.put(b"lengths", lengths.tobytes())
        env.sync()
        env.close()

    sps, mbps = timed_write(write, shape)
    warm(path)
    tail = shape.samples[0][0].shape[1:]

    def opener() -> Any:
        env = lmdb.open(str(path), readonly=True, lock=False)
        txn = env.begin()
        lengths = None if shape.fixed else np.frombuffer(txn.get(b"lengths"), np.int32)
        return _Closing((env, txn, lengths))

    open_ms, per_sample, (env, txn, lengths) = measure_open(opener, shape.n)
    dtype = shape.dtype
    if shape.fixed:
        fixed = shape.fixed

        def get(i: int) -> np.ndarray:
            return np.frombuffer(txn.get(i.to_bytes(8, "big")), dtype).reshape(fixed)

        def batch(idx: np.ndarray) -> np.ndarray:
            out = np.empty((len(idx), *fixed), dtype)
            for j, i in enumerate(idx.tolist()):
                out[j] = np.frombuffer(txn.get(i.to_bytes(8, "big")), dtype).reshape(fixed)
            return out

    else:

        def get(i: int) -> np.ndarray:
            return np.frombuffer(txn.get(i.to_bytes(8, "big")), dtype).reshape(lengths[i], *tail)

    row = Row("lmdb", "one txn, key = index", sps, mbps, open_ms, per_sample, note="array only")
    row.get_us = ctx.median_us(get)

    def sequential() -> Iterator[np.ndarray]:
        for key, value in txn.cursor():
            if len(key) == 8:
                yield np.frombuffer(value, dtype)

    row.iter_sps = ctx.iterate(sequential())
    if shape.fixed:
        row.batch_gbps = batch_rate(batch, ctx.batches)
    txn.abort()
    env.close()
    shutil.rmtree(path)
    return [row]


# --- litdata ----------------------------------------------------------------------------
def _litdata_item(sample: tuple[np.ndarray, dict]) -> dict:
    array, meta = sample
    return {"x": array, **meta}


def bench_litdata(ctx: Context) -> list[Row]:
    import inspect

    import litdata

    shape = ctx.shape
    path = ctx.root / "litdata"

    def write() -> None:
        quiet = io.StringIO()
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            litdata.optimize(
                fn=_litdata_item,
                inputs=shape.samples,
                output_dir=str(path),
                chunk_bytes=CHUNK_BYTES,
                num_workers=1,
                start_method="fork",
                verbose=False,
            )

    sps, mbps = timed_write(write, shape)
    warm(path)
    has_batch_decode = "batch_decode" in inspect.signature(litdata.StreamingDataset).parameters
    configs = [("batch_decode=False", {"batch_decode": False})]
    if has_batch_decode:
        configs.append(("default (batch_decode='auto')", {}))
    else:
        configs = [("default", {})]
    rows = []
    for label, kwargs in configs:
        open_ms, per_sample, ds = measure_open(
            lambda kwargs=kwargs: litdata.StreamingDataset(str(path), **kwargs), shape.n
        )
        row = Row(f"litdata {litdata.__version__}", label, open_ms=open_ms)
        row.open_bytes_per_sample = per_sample
        if not rows:
            row.write_sps, row.write_mbps = sps, mbps
            row.note = "optimize num_workers=1 (one worker process)"
        row.get_us = ctx.median_us(ds.__getitem__)
        row.iter_sps = ctx.iterate(ds)
        if shape.fixed and kwargs:
            row.batch_gbps = batch_rate(
                lambda idx, ds=ds: np.stack([ds[i]["x"] for i in idx.tolist()]), ctx.batches
            )
        rows.append(row)
        del ds
    shutil.rmtree(path)
    return rows


# --- MosaicML streaming (MDS) ------------------------------------------------------------
def import_streaming() -> tuple[Any, str]:
    """``import streaming``; its package imports torchvision (for its vision datasets only),
    which may be missing or unusable (no CPU build matching the installed torch): then a stub
    stands in for it, which MDS writing and reading never touch."""
    note = ""
    try:
        import torchvision  # noqa: F401
    except Exception:
        for name in list(sys.modules):
            if name == "torchvision" or name.startswith("torchvision."):
                del sys.modules[name]
        modules = {}
        for name in ("torchvision", "torchvision.datasets", "torchvision.transforms"):
            module = types.ModuleType(name)
            module.__spec__ = importlib.machinery.ModuleSpec(name, None)
            modules[name] = module
        functional = types.ModuleType("torchvision.transforms.functional")
        functional.__spec__ = importlib.machinery.ModuleSpec(functional.__name__, None)
        functional.to_tensor = lambda x: x
        modules[functional.__name__] = functional
        modules["torchvision.datasets"].VisionDataset = type("VisionDataset", (), {})
        sys.modules.update(modules)
        note = "torchvision stubbed (unused by MDS)"
    with contextlib.redirect_stderr(io.StringIO()):
        import streaming
    return streaming, note


def bench_mds(ctx: Context) -> list[Row]:
    streaming, note = import_streaming()
    from streaming.base.util import clean_stale_shared_memory

    clean_stale_shared_memory()
    shape = ctx.shape
    path = ctx.root / "mds"
    dtype = shape.dtype.name
    if shape.fixed:
        column = f"ndarray:{dtype}:{','.join(map(str, shape.fixed))}"
    else:
        column = f"ndarray:{dtype}"
    columns = {"x": column, "label": "int", "split": "str"}

    def write() -> None:
        with streaming.MDSWriter(out=str(path), columns=columns, size_limit=CHUNK_BYTES) as w:
            for array, meta in shape.samples:
                w.write({"x": array, **meta})

    sps, mbps = timed_write(write, shape)
    warm(path)
    opened = []

    def opener() -> Any:
        # Each StreamingDataset holds shared memory for its local folder: keep them alive.
        ds = streaming.StreamingDataset(local=str(path), batch_size=1)
        opened.append(ds)
        return ds

    open_ms, per_sample, ds = measure_open(opener, shape.n)
    row = Row(f"mosaicml-streaming {streaming.__version__}", "MDS, StreamingDataset", sps, mbps)
    row.open_ms, row.open_bytes_per_sample = open_ms, per_sample
    row.note = "; ".join(x for x in ("compression=None", note) if x)
    row.get_us = ctx.median_us(ds.__getitem__)
    row.iter_sps = ctx.iterate(ds)
    if shape.fixed:
        row.batch_gbps = batch_rate(
            lambda idx, ds=ds: np.stack([ds[i]["x"] for i in idx.tolist()]), ctx.batches
        )
    ctx.keep.append(path)  # its download/prepare threads may still look at it
    return [row]


SYSTEMS: list[tuple[str, Callable[[Context], list[Row]]]] = [
    ("acumen", bench_acumen),
    ("acumenindexer", bench_original),
    ("numpy memmap", bench_memmap),
    ("h5py", bench_h5py),
    ("lmdb", bench_lmdb),
    ("litdata", bench_litdata),
    ("mosaicml-streaming", bench_mds),
]


# --- reporting --------------------------------------------------------------------------
def fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


COLUMNS = [
    ("write/s", lambda r, _: fmt(r.write_sps, ",.0f")),
    ("write MB/s", lambda r, _: fmt(r.write_mbps, ",.0f")),
    ("open ms", lambda r, _: fmt(r.open_ms, ",.1f")),
    ("open B/sample", lambda r, _: fmt(r.open_bytes_per_sample, ",.1f")),
    ("get µs", lambda r, _: fmt(r.get_us, ",.2f")),
    ("x mmap", lambda r, ref: fmt(r.get_us / ref if r.get_us and ref else None, ",.1f")),
    ("read µs", lambda r, _: fmt(r.read_us, ",.2f")),
    ("lib µs", lambda r, _: fmt(r.lib_us, ",.2f")),
    ("+µs", lambda r, _: fmt(r.read_us - r.lib_us if r.lib_us else None, "+,.2f")),
    ("iterate/s", lambda r, _: fmt(r.iter_sps, ",.0f")),
    ("batch GB/s", lambda r, _: fmt(r.batch_gbps, ",.2f")),
]


def reference(rows: list[Row]) -> float | None:
    for row in rows:
        if row.system == "acumen" and row.config == "mmap raw":
            return row.get_us
    return None


def table(rows: list[Row], markdown: bool = False) -> str:
    ref = reference(rows)
    header = ["system", "configuration", *(name for name, _ in COLUMNS), "note"]
    body = [
        [row.system, row.config, *(cell(row, ref) for _, cell in COLUMNS), row.note] for row in rows
    ]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(line) + " |" for line in body]
        return "\n".join(lines)
    widths = [max(len(line[k]) for line in [header, *body]) for k in range(len(header))]
    aligned = [
        "  ".join(
            text.ljust(width) if k < 2 or k == len(header) - 1 else text.rjust(width)
            for k, (text, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in [header, *body]
    ]
    return "\n".join(aligned)


DISTRIBUTIONS = (
    "acumen-indexer",
    "acumenindexer",
    "numpy",
    "zstandard",
    "lz4",
    "torch",
    "h5py",
    "lmdb",
    "litdata",
    "mosaicml-streaming",
    "matplotlib",
)


def machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if "model name" in line), "")
    memory = ""
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        kib = int(next(line.split()[1] for line in f if line.startswith("MemTotal")))
        memory = f"{kib / 2**20:.1f} GiB"
    versions = {}
    for name in DISTRIBUTIONS:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": memory,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def plot(results: dict[str, list[Row]], shapes: list[Shape], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
        return False
    heights = [max(2.0, 0.3 * sum(r.get_us is not None for r in results[s.name])) for s in shapes]
    fig, axes = plt.subplots(
        len(shapes), 1, figsize=(9, sum(heights) + 1.5), gridspec_kw={"height_ratios": heights}
    )
    for ax, shape in zip(np.atleast_1d(axes), shapes, strict=True):
        rows = [r for r in results[shape.name] if r.get_us is not None][::-1]
        labels = [f"{r.system}: {r.config}" for r in rows]
        colors = ["tab:blue" if r.system == "acumen" else "tab:gray" for r in rows]
        values = [r.get_us for r in rows]
        ax.barh(labels, values, color=colors)
        for y, value in enumerate(values):
            ax.text(value * 1.05, y, f"{value:,.1f}", va="center", fontsize=7)
        ax.set_xscale("log")
        ax.set_xlim(right=max(values) * 4)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_title(f"{shape.name}: {shape.n:,} x {shape.description}", fontsize=9)
        ax.set_xlabel("median µs per random read (log scale, lower is better)", fontsize=8)
    fig.suptitle("Random access, one thread, warm page cache", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller datasets (~2 minutes)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--reads", type=int, default=20_000, help="random reads per config")
    parser.add_argument("--only", default="", help="comma-separated systems (default: all)")
    args = parser.parse_args()
    wanted = {name.strip() for name in args.only.split(",") if name.strip()}
    shapes = make_shapes(args.quick)
    seconds = 1.0 if args.quick else 2.0
    started = time.perf_counter()
    results: dict[str, list[Row]] = {}
    skipped: dict[str, str] = {}
    print(
        f"acumen {acumen.__version__}: one thread; every store is written, then each of its "
        "files read once (warm page cache) before timing.\nget/read µs: median of "
        f"{args.reads:,} random reads (or, for slow readers, of those done in {seconds:g} s, "
        f"at least 500); iterate: the whole store or {seconds:g} s; batch: median of 20 "
        f"batches of {BATCH} random distinct indices.\n"
    )
    with tempfile.TemporaryDirectory(prefix="acumen-compare-") as tmp:
        for shape in shapes:
            rng = np.random.default_rng(1)
            probe = rng.integers(0, shape.n, args.reads).tolist()
            batches = [rng.choice(shape.n, BATCH, replace=False) for _ in range(20)]
            root = Path(tmp) / shape.name
            root.mkdir()
            ctx = Context(root, shape, probe, batches, seconds, [])
            rows: list[Row] = []
            for name, bench in SYSTEMS:
                if wanted and name not in wanted:
                    continue
                try:
                    rows += bench(ctx)
                except ImportError as error:
                    skipped[name] = f"not installed ({error.name or error})"
                gc.collect()
            results[shape.name] = rows
            print(
                f"== {shape.name}: {shape.n:,} x {shape.description} "
                f"({shape.nbytes / 1e6:,.0f} MB of arrays)"
            )
            print(table(rows))
            print()
            if not ctx.keep:
                shutil.rmtree(root)
    for name, why in skipped.items():
        print(f"{name}: {why}")
    elapsed = time.perf_counter() - started
    print(f"total {elapsed:,.0f} s")
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "quick": args.quick,
        "reads": args.reads,
        "seconds": elapsed,
        "machine": machine(),
        "skipped": skipped,
        "shapes": {
            s.name: {
                "n": s.n,
                "description": s.description,
                "array_bytes": s.nbytes,
                "rows": [asdict(r) for r in results[s.name]],
                "markdown": table(results[s.name], markdown=True),
            }
            for s in shapes
        },
    }
    name = "compare-quick" if args.quick else "compare"
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=1))
    if plot(results, shapes, args.out / f"{name}.png"):
        print(f"wrote {args.out / (name + '.json')} and {args.out / (name + '.png')}")
    else:
        print(f"wrote {args.out / (name + '.json')}")


if __name__ == "__main__":
    main()
