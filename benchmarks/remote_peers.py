"""acumen against litdata, MosaicML streaming and Lance, reading the same data from the same
S3-compatible server behind a proxy adding a round-trip delay, in one run; then two S3
clients (fsspec/s3fs and obstore) on the same server.

    python benchmarks/remote_peers.py [--quick] [--delay 0.02] [--only acumen,lance]

Needs a Python with acumen and its ``s3``/``dev`` extras (s3fs, moto[server], torch) and
whichever of ``litdata``, ``mosaicml-streaming``, ``pylance``, ``obstore`` are installed (a
peer that cannot be imported is skipped with a line saying so). ``docs/remote.md``,
"Against the peers", says how to make such an environment.

Servers (``benchmarks/s3_server.py``, in a child process): moto's S3 application on
127.0.0.1 served by a keep-alive launcher that answers a ranged GET with only the range,
and the tests' ``FaultProxy`` in front of it adding ``--delay`` seconds to every request
and counting requests and body bytes. Datasets are written straight to the server; every
read goes through the proxy.

Workloads, each written by each system in its own format (chunks/shards of
``--chunk-mib`` MiB where the format has them; no compression):

- W1: 100,000 x float16 (32, 16) arrays, 1 KiB each, and an int label (20,000 with --quick);
- W2: 2,000 x uint8 (224, 224, 3) images, 147 KiB each, and a label (300 with --quick).

Measured per system and workload, each measure in a fresh process with a fresh cache folder
(cold): time to first sample (open + sample 0); random single reads (samples/s, requests
and bytes downloaded per sample); random batches of 256 distinct indices (acumen
``read_batch``, Lance ``take``, litdata and MosaicML streaming one ``ds[i]`` per index, as
they offer no batch read); one DataLoader epoch with 2 workers and batches of 256, each the
peer's documented way (acumen ``TorchDataset`` + ``ChunkShuffleSampler``; litdata
``StreamingDataset(shuffle=True)`` + ``StreamingDataLoader``; MosaicML
``StreamingDataset(shuffle=True)`` + torch ``DataLoader``), stopped after
``--epoch-seconds``. Every sample read is checked against what was written.

The ceiling of the path, in the same run through the same proxy (s3fs): one 64 MiB GET;
64 concurrent 1 MiB GETs; one 1 KiB GET (median of 20).

Clients: a random batch of 256 ranges of 1 KiB of one 96 MiB object, and one 64 MiB object
in 8 MiB ranges, read with s3fs ``cat_ranges`` (one GET per range), acumen's
``RemoteStore.read_ranges`` (s3fs, coalesced 64 KiB gaps) and obstore ``get_ranges``
(coalesced 1 MiB gaps) and one ``get_range_async`` per range: GETs made, bytes, wall time,
CPU time of the process.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import multiprocessing
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import traceback
import types
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from s3_server import Counter, Servers  # noqa: E402

from tests.remote_servers import AWS_ENVIRONMENT, s3_storage_options  # noqa: E402

BATCH = 256
MIB = 1 << 20
BUCKET = "peers"
SYSTEMS = ("acumen", "litdata", "MosaicML streaming", "Lance")
MODULES = {"acumen": "acumen", "litdata": "litdata", "MosaicML streaming": "streaming"}
MODULES["Lance"] = "lance"
PREFIX = {"acumen": "acumen", "litdata": "litdata", "MosaicML streaming": "mds", "Lance": "lance"}
SHAPES = {"W1": ((32, 16), np.float16), "W2": ((224, 224, 3), np.uint8)}


# --- the data ---------------------------------------------------------------------------
def _w1_block() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((997, 32, 16)).astype(np.float16)


def _w2_base() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)


class Samples:
    """Sample ``i`` of a workload, and a check that an array read back is it."""

    def __init__(self, workload: str) -> None:
        self.workload = workload
        self.shape, self.dtype = SHAPES[workload]
        self.nbytes = int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize
        self._data = _w1_block() if workload == "W1" else _w2_base()

    def __call__(self, i: int) -> np.ndarray:
        if self.workload == "W1":
            return self._data[i % 997]
        return self._data + np.uint8(i % 251)

    def check(self, i: int, array) -> None:
        array = np.asarray(array)
        if self.workload == "W1":
            good = array.shape == self.shape and np.array_equal(array, self._data[i % 997])
        else:
            expected = (int(self._data[0, 0, 0]) + i % 251) % 256
            good = array.shape == self.shape and int(array[0, 0, 0]) == expected
            good = good and int(array[-1, -1, -1]) == (int(self._data[-1, -1, -1]) + i % 251) % 256
        if not good:
            raise AssertionError(f"{self.workload} sample {i}: wrong array read back")


# --- peers' quirks ----------------------------------------------------------------------
def stub_torchvision() -> None:
    """MosaicML streaming imports torchvision (for ``streaming.vision``, unused here). PyPI's
    torchvision wheel is a CUDA build that fails to load next to a CPU torch: when it cannot
    be imported, an empty stand-in is put in its place."""
    try:
        import torchvision  # noqa: F401

        return
    except Exception:
        pass
    names = ("torchvision", "torchvision.datasets", "torchvision.transforms")
    modules = {}
    for name in (*names, "torchvision.transforms.functional"):
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
        modules[name] = module
    modules["torchvision.datasets"].VisionDataset = type("VisionDataset", (), {})
    modules["torchvision.transforms.functional"].to_tensor = lambda x: x
    sys.modules.update(modules)


def available(system: str) -> str | None:
    """None when the system can be imported, else why not."""
    module = MODULES[system]
    if importlib.util.find_spec(module) is None:
        return f"{module} not installed"
    try:
        if module == "streaming":
            stub_torchvision()
        __import__(module)
    except Exception as error:
        return f"import {module} failed: {type(error).__name__}: {error}"
    return None


def preload(system: str) -> None:
    """Import what a system's reads need before anything is timed."""
    if system == "MosaicML streaming":
        stub_torchvision()
    __import__(MODULES[system])
    if system == "Lance":
        import pyarrow  # noqa: F401
    else:  # their S3 clients (a one-time cost of the process, not of the data)
        import boto3  # noqa: F401
        import s3fs  # noqa: F401


def litdata_options(endpoint: str) -> dict:
    return {
        "endpoint_url": endpoint,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "region_name": "us-east-1",
    }


def litdata_allow_http() -> None:
    """litdata fetches chunks with obstore when it is installed, with client options that do
    not allow plain HTTP: an http:// endpoint fails ("builder error") unless told."""
    import litdata.streaming.downloader as downloader

    options = getattr(downloader, "_OBSTORE_CLIENT_OPTIONS", None)
    if isinstance(options, dict):
        options["allow_http"] = "true"


def lance_options(endpoint: str) -> dict:
    return {
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "aws_region": "us-east-1",
        "aws_endpoint": endpoint,
        "allow_http": "true",
    }


# --- writing ----------------------------------------------------------------------------
def job_write(system: str, workload: str, n: int, endpoint: str, chunk: int, tmp: str) -> dict:
    samples = Samples(workload)
    url = f"s3://{BUCKET}/{PREFIX[system]}-{workload.lower()}"
    local = Path(tmp) / f"write-{PREFIX[system]}-{workload}"
    start = time.perf_counter()
    if system == "acumen":
        import acumen

        with acumen.Writer(
            url,
            codec="raw",
            chunk_size_bytes=chunk,
            storage_options=s3_storage_options(endpoint),
            cache=str(local),
        ) as writer:
            for i in range(n):
                writer.add(samples(i), label=i % 10)
    elif system == "litdata":
        from litdata.streaming.writer import BinaryWriter

        writer = BinaryWriter(str(local), chunk_bytes=chunk)
        for i in range(n):
            writer[i] = {"x": samples(i), "label": i % 10}
        writer.done()
        writer.merge()
        _upload(local, url, endpoint)
    elif system == "MosaicML streaming":
        stub_torchvision()
        from streaming import MDSWriter

        dtype = np.dtype(samples.dtype).name
        columns = {"x": f"ndarray:{dtype}:{','.join(map(str, samples.shape))}", "label": "int"}
        with MDSWriter(out=str(local), columns=columns, size_limit=chunk) as writer:
            for i in range(n):
                writer.write({"x": samples(i), "label": i % 10})
        _upload(local, url, endpoint)
    else:
        import lance
        import pyarrow as pa

        def batches():
            for begin in range(0, n, 1000):
                rows = range(begin, min(n, begin + 1000))
                yield pa.record_batch(
                    [
                        pa.array([samples(i).tobytes() for i in rows], pa.binary()),
                        pa.array([i % 10 for i in rows], pa.int64()),
                    ],
                    names=["x", "label"],
                )

        schema = pa.schema([("x", pa.binary()), ("label", pa.int64())])
        reader = pa.RecordBatchReader.from_batches(schema, batches())
        lance.write_dataset(reader, url, storage_options=lance_options(endpoint))
    return {"seconds": time.perf_counter() - start}


def _upload(local: Path, url: str, endpoint: str) -> None:
    import s3fs

    fs = s3fs.S3FileSystem(**s3_storage_options(endpoint))
    for path in sorted(local.rglob("*")):
        if path.is_file():
            fs.put_file(str(path), f"{url}/{path.relative_to(local).as_posix()}")


# --- reading: one adapter per system ----------------------------------------------------
class Reader:
    """Opens a system's copy of a workload through the proxy with a fresh cache folder."""

    def __init__(self, system: str, workload: str, proxy: str, cache: str) -> None:
        self.system = system
        self.samples = Samples(workload)
        self.url = f"s3://{BUCKET}/{PREFIX[system]}-{workload.lower()}"
        self.proxy = proxy
        self.cache = cache
        shape, dtype = SHAPES[workload]
        if system == "acumen":
            import acumen

            self.ds = acumen.open(self.url, storage_options=s3_storage_options(proxy), cache=cache)
        elif system == "litdata":
            from litdata import StreamingDataset

            litdata_allow_http()
            self.ds = StreamingDataset(
                self.url, cache_dir=cache, storage_options=litdata_options(proxy)
            )
        elif system == "MosaicML streaming":
            stub_torchvision()
            os.environ["S3_ENDPOINT_URL"] = proxy
            from streaming import StreamingDataset

            self.ds = StreamingDataset(remote=self.url, local=cache, batch_size=BATCH)
        else:
            import lance

            self.ds = lance.dataset(self.url, storage_options=lance_options(proxy))
            self._decode = lambda blob: np.frombuffer(blob, dtype).reshape(shape)

    def get(self, i: int) -> np.ndarray:
        if self.system == "acumen":
            return self.ds[i][0]
        if self.system == "Lance":
            return self._decode(self.ds.take([i]).column("x")[0].as_py())
        return self.ds[i]["x"]

    def batch(self, indices: list[int]) -> list[np.ndarray]:
        if self.system == "acumen":
            return list(self.ds.read_batch(indices))
        if self.system == "Lance":
            column = self.ds.take(indices).column("x")
            return [self._decode(column[k].as_py()) for k in range(len(indices))]
        return [self.ds[i]["x"] for i in indices]


def job_reads(
    system: str,
    workload: str,
    n: int,
    proxy: str,
    control: str,
    tmp: str,
    singles: list[int],
    batches: list[list[int]],
) -> dict:
    preload(system)
    counter = Counter(control)
    out: dict = {}
    cache = tempfile.mkdtemp(prefix="first-", dir=tmp)
    counter.reset()
    start = time.perf_counter()
    reader = Reader(system, workload, proxy, cache)
    reader.samples.check(0, reader.get(0))
    out["first ms"] = (time.perf_counter() - start) * 1e3
    out["first requests"] = counter.counts()["requests"]
    out["first ms"] = f"{out['first ms']:,.0f} ({out['first requests']})"

    reader = Reader(system, workload, proxy, tempfile.mkdtemp(prefix="single-", dir=tmp))
    counter.reset()
    times = []
    for i in singles:
        start = time.perf_counter()
        array = reader.get(i)
        times.append(time.perf_counter() - start)
        reader.samples.check(i, array)
    counts = counter.counts()
    out["single ms"] = statistics.median(times) * 1e3
    out["single/s"] = len(singles) / sum(times)
    out["requests/sample"] = counts["requests"] / len(singles)
    out["dl/read single"] = counts["bytes"] / (len(singles) * reader.samples.nbytes)

    elapsed = requests = downloaded = 0
    for indices in batches:
        reader = Reader(system, workload, proxy, tempfile.mkdtemp(prefix="batch-", dir=tmp))
        counter.reset()
        start = time.perf_counter()
        arrays = reader.batch(indices)
        elapsed += time.perf_counter() - start
        counts = counter.counts()
        requests += counts["requests"]
        downloaded += counts["bytes"]
        for i, array in zip(indices, arrays, strict=True):
            reader.samples.check(i, array)
    out["batch/s"] = len(batches) * BATCH / elapsed
    out["requests/batch"] = requests / len(batches)
    out["dl/read batch"] = downloaded / (len(batches) * BATCH * reader.samples.nbytes)
    return out


def job_epoch(
    system: str, workload: str, n: int, proxy: str, control: str, tmp: str, limit: float
) -> dict:
    import torch
    from torch.utils.data import DataLoader

    torch.set_num_threads(1)
    preload(system)
    if system == "acumen":
        import acumen.torch  # noqa: F401
    samples = Samples(workload)
    url = f"s3://{BUCKET}/{PREFIX[system]}-{workload.lower()}"
    cache = tempfile.mkdtemp(prefix="epoch-", dir=tmp)
    counter = Counter(control)
    counter.reset()
    start = time.perf_counter()
    if system == "acumen":
        from acumen.torch import ChunkShuffleSampler, TorchDataset

        data = TorchDataset(url, storage_options=s3_storage_options(proxy), cache=cache)
        sampler = ChunkShuffleSampler(data, seed=0)
        loader = DataLoader(data, batch_size=BATCH, sampler=sampler, num_workers=2)
    elif system == "litdata":
        from litdata import StreamingDataLoader, StreamingDataset

        litdata_allow_http()
        data = StreamingDataset(
            url, cache_dir=cache, storage_options=litdata_options(proxy), shuffle=True
        )
        loader = StreamingDataLoader(data, batch_size=BATCH, num_workers=2)
    else:
        stub_torchvision()
        os.environ["S3_ENDPOINT_URL"] = proxy
        from streaming import StreamingDataset

        data = StreamingDataset(remote=url, local=cache, shuffle=True, batch_size=BATCH)
        # Its forked workers would share the parent's boto3 client (and its connections:
        # this corrupted a cached shard); the client is made again in each worker.
        for stream in data.streams:
            stream._downloader.clean_up()
        loader = DataLoader(data, batch_size=BATCH, num_workers=2)
    count = checked = 0
    stopped = False
    for batch in loader:
        arrays = batch if system == "acumen" else batch["x"]
        count += len(arrays)
        if checked < 4:  # the first batches' samples are in no known order: their shape
            if tuple(arrays.shape[1:]) != samples.shape:
                raise AssertionError(f"{system} {workload}: batch of shape {arrays.shape}")
            checked += 1
        if time.perf_counter() - start > limit:
            stopped = True
            break
    elapsed = time.perf_counter() - start
    counts = counter.counts()
    return {
        "epoch/s": count / elapsed,
        "epoch MB/s": count * samples.nbytes / elapsed / 1e6,
        "epoch samples": count,
        "epoch stopped": stopped,
        "dl/read epoch": counts["bytes"] / (count * samples.nbytes),
        "requests/epoch": counts["requests"],
    }


# --- the path's ceiling, and two clients --------------------------------------------------
def job_ceiling(proxy: str, control: str) -> dict:
    from acumen.files.remote import RemoteStore

    counter = Counter(control)
    store = RemoteStore(f"s3://{BUCKET}", s3_storage_options(proxy))
    url = store.url_of("ceiling.bin")
    store.read_ranges([url] * 64, [k * MIB for k in range(64)], [1024] * 64, "warm-up")
    start = time.perf_counter()
    store.read_range(url, 0, 64 * MIB, "ceiling")
    one = 64 * MIB / (time.perf_counter() - start) / 1e6
    counter.reset()
    start = time.perf_counter()
    store.read_ranges([url] * 64, [k * MIB for k in range(64)], [MIB] * 64, "ceiling")
    elapsed = time.perf_counter() - start
    gets = counter.counts()["gets"]
    rtts = []
    for k in range(20):
        start = time.perf_counter()
        store.read_range(url, k * 4096, 1024, "ceiling")
        rtts.append(time.perf_counter() - start)
    many = f"{64 * MIB / elapsed / 1e6:,.0f} MB/s, {gets / elapsed:,.0f} GETs/s"
    return {
        "one 64 MiB GET": f"{one:,.0f} MB/s",
        "64 concurrent 1 MiB GETs": many,
        "one 1 KiB GET": f"{statistics.median(rtts) * 1e3:.1f} ms",
    }


def job_clients(proxy: str, control: str, repeats: int) -> list[dict]:
    """s3fs cat_ranges, acumen's RemoteStore.read_ranges and obstore get_ranges."""
    import s3fs

    from acumen.files.remote import RemoteStore

    counter = Counter(control)
    fs = s3fs.S3FileSystem(**s3_storage_options(proxy))
    store = RemoteStore(f"s3://{BUCKET}", s3_storage_options(proxy))
    clients = {
        "s3fs cat_ranges": lambda path, starts, sizes: fs.cat_ranges(
            [f"{BUCKET}/{path}"] * len(starts),
            starts,
            [s + n for s, n in zip(starts, sizes, strict=True)],
        ),
        "acumen RemoteStore.read_ranges (s3fs)": lambda path, starts, sizes: store.read_ranges(
            [store.url_of(path)] * len(starts), starts, sizes, "clients"
        ),
    }
    if importlib.util.find_spec("obstore") is not None:
        import obstore
        from obstore.store import S3Store

        s3 = S3Store(
            BUCKET,
            config={
                "endpoint": proxy,
                "region": "us-east-1",
                "access_key_id": "testing",
                "secret_access_key": "testing",
                "virtual_hosted_style_request": False,
            },
            client_options={"allow_http": True},
        )
        clients["obstore get_ranges"] = lambda path, starts, sizes: obstore.get_ranges(
            s3, path, starts=starts, lengths=sizes
        )

        async def gathered(path, starts, sizes):
            import asyncio

            return await asyncio.gather(
                *(
                    obstore.get_range_async(s3, path, start=s, length=n)
                    for s, n in zip(starts, sizes, strict=True)
                )
            )

        def one_per_range(path, starts, sizes):
            import asyncio

            return asyncio.run(gathered(path, starts, sizes))

        clients["obstore get_range_async, one per range"] = one_per_range
    rng = np.random.default_rng(5)
    cases = {
        "256 random 1 KiB ranges of a 96 MiB object": [
            (
                "ranges.bin",
                sorted(rng.choice(96 * 1024, BATCH, replace=False) * 1024),
                [1024] * BATCH,
            )
            for _ in range(repeats)
        ],
        "one 64 MiB object in 8 MiB ranges": [
            ("ceiling.bin", [k * 8 * MIB for k in range(8)], [8 * MIB] * 8)
        ]
        * repeats,
    }
    for read in clients.values():  # connections made, as a training job's would be
        read("ceiling.bin", [k * MIB for k in range(16)], [1024] * 16)
    rows = []
    for case, jobs in cases.items():
        for name, read in clients.items():
            counter.reset()
            wall = cpu = 0.0
            for path, starts, sizes in jobs:
                starts = [int(s) for s in starts]
                w0, c0 = time.perf_counter(), time.process_time()
                parts = read(path, starts, sizes)
                wall += time.perf_counter() - w0
                cpu += time.process_time() - c0
                if [len(p) for p in parts] != sizes:
                    raise AssertionError(f"{name}: wrong lengths")
            counts = counter.counts()
            asked = sum(sum(sizes) for _, _, sizes in jobs)
            rows.append(
                {
                    "case": case,
                    "client": name,
                    "GETs": counts["gets"] / len(jobs),
                    "MB downloaded": counts["bytes"] / len(jobs) / 1e6,
                    "x asked": counts["bytes"] / asked,
                    "wall ms": wall / len(jobs) * 1e3,
                    "CPU ms": cpu / len(jobs) * 1e3,
                }
            )
    return rows


# --- running jobs in fresh processes ----------------------------------------------------
def _job_main(connection, function, args) -> None:
    # A spawned process defaults to spawning its own children: DataLoader workers are
    # forked here, as in a training script started from a shell on Linux.
    multiprocessing.set_start_method("fork", force=True)
    try:
        connection.send(("ok", function(*args)))
    except BaseException as error:  # reported by the parent, which goes on
        connection.send(("error", f"{type(error).__name__}: {error}\n{traceback.format_exc()}"))


def run_job(function, *args, timeout: float = 600):
    """``function(*args)`` in a fresh (spawned) process: (result, None) or (None, error)."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_job_main, args=(sender, function, args))
    process.start()
    sender.close()
    try:
        if receiver.poll(timeout):
            status, value = receiver.recv()
        else:
            status, value = "error", f"timed out after {timeout:.0f} s"
    except EOFError:
        status, value = "error", f"the process died (exit code {process.exitcode})"
    process.join(30)
    if process.is_alive():
        process.kill()
        process.join()
    return (value, None) if status == "ok" else (None, value)


# --- printing ---------------------------------------------------------------------------
def fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        if value >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(fmt(row.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def peer_row(workload: str, system: str, reads: dict | None, epoch: dict | None) -> dict:
    row = {"workload": workload, "system": system}
    if reads:
        row.update(
            {
                "first sample ms (requests)": reads["first ms"],
                "single ms": reads["single ms"],
                "singles/s": reads["single/s"],
                "requests / single": reads["requests/sample"],
                "batch of 256 samples/s": reads["batch/s"],
                "requests / batch": reads["requests/batch"],
            }
        )
    if epoch:
        rate = f"{epoch['epoch/s']:,.0f} ({epoch['epoch MB/s']:,.0f} MB/s)"
        if epoch["epoch stopped"]:
            rate += f", stopped after {epoch['epoch samples']:,}"
        row["epoch samples/s"] = rate
    parts = [
        (reads or {}).get("dl/read single"),
        (reads or {}).get("dl/read batch"),
        (epoch or {}).get("dl/read epoch"),
    ]
    row["downloaded / read (single, batch, epoch)"] = " / ".join(fmt(p) for p in parts)
    return row


PEER_COLUMNS = [
    "workload",
    "system",
    "first sample ms (requests)",
    "single ms",
    "singles/s",
    "requests / single",
    "batch of 256 samples/s",
    "requests / batch",
    "epoch samples/s",
    "downloaded / read (single, batch, epoch)",
]
CLIENT_COLUMNS = ["case", "client", "GETs", "MB downloaded", "x asked", "wall ms", "CPU ms"]


# --- main -------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller workloads, fewer reads")
    parser.add_argument("--delay", type=float, default=0.02, help="seconds added per request")
    parser.add_argument("--only", default=None, help="comma-separated systems (acumen,lance...)")
    parser.add_argument("--workloads", default="W1,W2", help="W1, W2 or both")
    parser.add_argument("--chunk-mib", type=float, default=10, help="chunk/shard size (MiB)")
    parser.add_argument("--singles", type=int, default=None, help="random single reads")
    parser.add_argument("--batches", type=int, default=None, help="random batches of 256")
    parser.add_argument("--epoch-seconds", type=float, default=None, help="epoch time limit")
    parser.add_argument("--no-clients", action="store_true", help="skip the s3fs/obstore part")
    args = parser.parse_args()
    sizes = {"W1": 20_000 if args.quick else 100_000, "W2": 300 if args.quick else 2_000}
    singles_n = args.singles or (30 if args.quick else 100)
    batches_n = args.batches or (1 if args.quick else 2)
    limit = args.epoch_seconds or (20 if args.quick else 30)
    chunk = int(args.chunk_mib * MIB)
    workloads = [w.strip().upper() for w in args.workloads.split(",")]
    wanted = SYSTEMS
    if args.only:
        names = {s.lower().split()[0]: s for s in SYSTEMS} | {"mds": "MosaicML streaming"}
        names["streaming"] = "MosaicML streaming"
        wanted = tuple(names[n.strip().lower()] for n in args.only.split(","))
    began = time.perf_counter()

    os.environ.update(AWS_ENVIRONMENT)
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "S3_ENDPOINT_URL"):
        os.environ.pop(name, None)
    os.environ.setdefault("LITDATA_DISABLE_VERSION_CHECK", "1")
    skipped = {s: available(s) for s in wanted}
    systems = [s for s in wanted if skipped[s] is None]
    notes: list[str] = []
    versions = {}
    for system in systems:
        module = sys.modules[MODULES[system]]
        versions[system] = getattr(module, "__version__", "?")

    tmp = tempfile.mkdtemp(prefix="acumen-peers-")
    servers = Servers(args.delay, AWS_ENVIRONMENT)
    rows: list[dict] = []
    client_rows: list[dict] = []
    try:
        import boto3

        client = boto3.client("s3", endpoint_url=servers.endpoint_url, region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        rng = np.random.default_rng(1)
        client.put_object(Bucket=BUCKET, Key="ceiling.bin", Body=rng.bytes(64 * MIB))
        if not args.no_clients:
            client.put_object(Bucket=BUCKET, Key="ranges.bin", Body=rng.bytes(96 * MIB))
        for workload in workloads:
            for system in systems:
                result, error = run_job(
                    job_write, system, workload, sizes[workload], servers.endpoint_url, chunk, tmp
                )
                if error:
                    notes.append(f"{system} {workload}: writing failed: {error.splitlines()[0]}")
                    print(error, file=sys.stderr)
                    skipped.setdefault(f"{system} {workload}", "write failed")
                else:
                    print(f"wrote {workload} with {system}: {result['seconds']:.1f} s", flush=True)
        ceiling, error = run_job(job_ceiling, servers.proxy_url, servers.control_url)
        if error:
            raise RuntimeError(error)
        print(f"ceiling: {ceiling}", flush=True)
        for workload in workloads:
            n = sizes[workload]
            rng = np.random.default_rng(2)
            singles = rng.integers(0, n, singles_n).tolist()
            batches = [
                sorted(rng.choice(n, min(BATCH, n), replace=False).tolist())
                for _ in range(batches_n)
            ]
            rng.shuffle(batches[0])  # one batch in random order, the others sorted
            for system in systems:
                if f"{system} {workload}" in skipped:
                    continue
                reads, error = run_job(
                    job_reads,
                    system,
                    workload,
                    n,
                    servers.proxy_url,
                    servers.control_url,
                    tmp,
                    singles,
                    batches,
                )
                if error:
                    notes.append(f"{system} {workload}: reads failed: {error.splitlines()[0]}")
                    print(error, file=sys.stderr)
                epoch = None
                if system != "Lance":
                    epoch, error = run_job(
                        job_epoch,
                        system,
                        workload,
                        n,
                        servers.proxy_url,
                        servers.control_url,
                        tmp,
                        limit,
                        timeout=limit + 300,
                    )
                    if error:
                        notes.append(f"{system} {workload}: epoch failed: {error.splitlines()[0]}")
                        print(error, file=sys.stderr)
                rows.append(peer_row(workload, system, reads, epoch))
                print(table(rows[-1:], PEER_COLUMNS).splitlines()[-1], flush=True)
        if not args.no_clients:
            client_rows, error = run_job(
                job_clients, servers.proxy_url, servers.control_url, 2 if args.quick else 3
            )
            if error:
                notes.append(f"clients failed: {error.splitlines()[0]}")
                print(error, file=sys.stderr)
                client_rows = []
    finally:
        servers.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    quick = " --quick" if args.quick else ""
    print()
    print(f"# benchmarks/remote_peers.py{quick} --delay {args.delay} --chunk-mib {args.chunk_mib}")
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} cores, "
        f"{platform.platform()}; " + ", ".join(f"{s} {v}" for s, v in versions.items())
    )
    for system, why in skipped.items():
        if why and system in SYSTEMS:
            print(f"{system}: skipped ({why})")
    print(
        f"S3: moto behind benchmarks/s3_server.py, through FaultProxy adding "
        f"{args.delay * 1e3:.0f} ms per request; W1 {sizes['W1']:,} x 1 KiB, W2 "
        f"{sizes['W2']:,} x 147 KiB; chunks/shards {args.chunk_mib:g} MiB; cold cache per "
        f"measure; {singles_n} random singles, {batches_n} batches of {BATCH}; epoch: 2 workers, "
        f"batches of {BATCH}, stopped after {limit:.0f} s"
    )
    print()
    print("ceiling (same proxy, s3fs): " + "; ".join(f"{k} {v}" for k, v in ceiling.items()))
    print()
    print(table(rows, PEER_COLUMNS))
    if client_rows:
        print()
        print(table(client_rows, CLIENT_COLUMNS))
    for note in notes:
        print(f"note: {note}")
    print(f"\n({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
