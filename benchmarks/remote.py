"""Reading a dataset over HTTP with an added round-trip delay: acumen against the ceiling of
the same path (and litdata / MosaicML streaming where importable).

    .venv/bin/python benchmarks/remote.py [--quick] [--delay 0.02] [--install-nginx]
                                          [--python-server]

Two workloads, written with the raw codec into a temporary folder and served on 127.0.0.1:

- W1: 100,000 x float16 (32, 16), 1 KiB each (20,000 with ``--quick``);
- W2: 2,000 x uint8 (224, 224, 3), 147 KiB each (300 with ``--quick``).

The server is Debian's nginx when ``nginx`` is on PATH (``--install-nginx`` runs
``apt-get install -y nginx`` first; ``--python-server`` skips it), started with a
generated configuration rooted at the temporary folder; otherwise the repository's test
server (``tests/remote_servers.py`` ``RangeHTTPServer``, one Python thread per connection:
it may be the bottleneck, and the script says so). Every request goes through
``FaultProxy`` with ``delay`` seconds added (20 ms by default); the proxy counts the GETs
and the body bytes. The proxy (and the Python server) run in this process, as threads:
they share its GIL with acumen's reads, which slows a pass that does Python work per sample
(W1's sequential pass) more than the ceiling's bare GETs.

Per workload and pass, acumen (``acumen.open(url, cache=...)``):

- first ms: ``acumen.open`` + ``ds[0]``; cold: a fresh cache folder (manifest, index
  fetched); warm (disk): opened again with that folder (the index is reused);
- single: random ``ds[i]``: median ms, samples/s, GETs per sample;
- batch: ``read_batch`` of 256 random distinct indices: samples/s, GETs per batch;
- seq: one pass of ``for x in ds``: samples/s, MB/s of array bytes;
- dl/read: body bytes downloaded per array byte read, for single / batch / seq.

Each phase's time ends when its reads return; the disk-cache writes it queued in the
background are finished before the next phase starts (not timed), so that a phase is not
charged with the previous one's writes.

The warm passes repeat the cold pass's reads (same indices): "warm (memory)" on the same
open dataset, whose storage keeps up to 256 MiB of prefetched bytes in memory; "warm (disk)"
on a new open of the same URL and cache folder (memory empty: what another process, a
DataLoader worker or a second job, reads from the disk cache). "local" reads the served
folder itself as a local dataset (the figure a warm pass aims at).

The ceiling, measured in the same run through the same proxy and client (acumen's
``RemoteStore``, fsspec's HTTP filesystem): one GET of a 64 MiB object; 64 concurrent
1 MiB GETs; 16 concurrent 4 MiB GETs; the median of 20 one-after-another 1 KiB GETs (the
round trip). The cold row's note gives the sequential pass's MB/s as a share of the
better of the two large-GET figures (one 64 MiB GET, 16 x 4 MiB).
"""

from __future__ import annotations

import argparse
import getpass
import importlib.util
import itertools
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import acumen
from acumen.files.remote import RemoteStore
from tests.remote_servers import FaultProxy, RangeHTTPServer

BATCH = 256
MIB = 1 << 20


# --- servers ----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """nginx serving ``root`` on 127.0.0.1 with a generated configuration."""

    def __init__(self, binary: str, root: Path, work: Path) -> None:
        self.port = _free_port()
        work.mkdir(parents=True, exist_ok=True)
        user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
        conf = work / "nginx.conf"
        conf.write_text(
            f"""{user}
worker_processes auto;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    keepalive_requests 100000;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    types {{ }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{self.port};
        root {root};
    }}
}}
"""
        )
        self.process = subprocess.Popen([binary, "-p", str(work), "-c", str(conf)])
        deadline = time.monotonic() + 10
        while True:  # ready when it accepts a connection
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start: see {work}/error.log") from None
                time.sleep(0.05)
        self.base_url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def start_server(
    root: Path, work: Path, install: bool, python_server: bool = False
) -> tuple[object, str]:
    if install and not shutil.which("nginx"):
        subprocess.run(["apt-get", "install", "-y", "nginx"], check=False)
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )
    if python_server:
        binary = None
    if binary:
        server = Nginx(binary, root, work / "nginx")
        version = subprocess.run([binary, "-v"], capture_output=True, text=True).stderr.strip()
        return server, version
    print(
        "WARNING: nginx not found (--install-nginx to apt-get it): serving with the test "
        "server tests/remote_servers.py RangeHTTPServer, which may be the bottleneck",
        file=sys.stderr,
    )
    server = RangeHTTPServer(root).start()
    return server, "tests/remote_servers.py RangeHTTPServer (Python; may be the bottleneck)"


# --- data -------------------------------------------------------------------------------
def write_w1(path: Path, n: int) -> int:
    rng = np.random.default_rng(0)
    block = rng.standard_normal((1000, 32, 16)).astype(np.float16)
    with acumen.Writer(path, codec="raw") as writer:
        for i in range(n):
            writer.add(block[i % 1000], label=i % 10)
    return 32 * 16 * 2


def write_w2(path: Path, n: int) -> int:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    with acumen.Writer(path, codec="raw") as writer:
        for i in range(n):
            writer.add(base + np.uint8(i % 251), label=i % 10)
    return 224 * 224 * 3


# --- measurements -----------------------------------------------------------------------
class Counter:
    """GETs and body bytes the proxy saw since the last ``mark``."""

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy

    def mark(self) -> None:
        self.proxy.log.reset()

    def gets(self) -> int:
        return self.proxy.log.count("GET")

    def bytes(self) -> int:
        return self.proxy.log.bytes_sent


def first_sample(url: str, cache: Path, counter: Counter) -> tuple[float, int, acumen.Dataset]:
    counter.mark()
    start = time.perf_counter()
    ds = acumen.open(url, cache=cache)
    ds[0]
    return (time.perf_counter() - start) * 1e3, counter.gets(), ds


def reads(ds, singles, batches, sample_bytes: int, counter: Counter) -> dict:
    def settle() -> None:
        # The disk-cache writes a phase queued (in the background) end before the next
        # phase starts, untimed: each figure is its own phase's.
        writes = getattr(ds.storage, "writes", None)
        if writes is not None:
            writes.flush()

    out: dict = {}
    counter.mark()
    times = []
    for i in singles:
        start = time.perf_counter()
        ds[i]
        times.append(time.perf_counter() - start)
    out["single ms"] = statistics.median(times) * 1e3
    out["single/s"] = len(singles) / sum(times)
    out["GETs/sample"] = counter.gets() / len(singles)
    dl_single = counter.bytes() / (len(singles) * sample_bytes)

    settle()
    counter.mark()
    start = time.perf_counter()
    for batch in batches:
        ds.read_batch(batch)
    elapsed = time.perf_counter() - start
    out["batch/s"] = len(batches) * BATCH / elapsed
    out["GETs/batch"] = counter.gets() / len(batches)
    dl_batch = counter.bytes() / (len(batches) * BATCH * sample_bytes)

    settle()
    counter.mark()
    start = time.perf_counter()
    count = sum(1 for _ in ds)
    elapsed = time.perf_counter() - start
    out["seq/s"] = count / elapsed
    out["seq MB/s"] = count * sample_bytes / elapsed / 1e6
    dl_seq = counter.bytes() / (count * sample_bytes)
    settle()
    out["dl/read"] = f"{dl_single:.2f} / {dl_batch:.2f} / {dl_seq:.2f}"
    return out


def ceiling(base_url: str, counter: Counter) -> dict:
    store = RemoteStore(base_url)
    url = store.url_of("ceiling.bin")
    # Connections made first (the client keeps them), as a training job's would be.
    store.read_ranges([url] * 64, [k * MIB for k in range(64)], [1024] * 64, "warm-up")
    start = time.perf_counter()
    store.read_range(url, 0, 64 * MIB, "ceiling")
    one = 64 * MIB / (time.perf_counter() - start) / 1e6
    counter.mark()
    start = time.perf_counter()
    store.read_ranges([url] * 64, [k * MIB for k in range(64)], [MIB] * 64, "ceiling")
    elapsed = time.perf_counter() - start
    many = 64 * MIB / elapsed / 1e6
    assert counter.gets() == 64
    # Large ranged GETs several at once, as a read-ahead makes them.
    start = time.perf_counter()
    store.read_ranges([url] * 16, [k * 4 * MIB for k in range(16)], [4 * MIB] * 16, "ceiling")
    parts = 64 * MIB / (time.perf_counter() - start) / 1e6
    rtts = []
    for k in range(20):
        start = time.perf_counter()
        store.read_range(url, k * 4096, 1024, "ceiling")
        rtts.append(time.perf_counter() - start)
    return {
        "one 64 MiB GET MB/s": one,
        "64 x 1 MiB concurrent MB/s": many,
        "64 x 1 MiB GETs/s": 64 / elapsed,
        "16 x 4 MiB concurrent MB/s": parts,
        "1 KiB GET median ms": statistics.median(rtts) * 1e3,
    }


# --- table ------------------------------------------------------------------------------
COLUMNS = [
    "workload",
    "system",
    "pass",
    "first ms",
    "first GETs",
    "single ms",
    "single/s",
    "GETs/sample",
    "batch/s",
    "GETs/batch",
    "seq/s",
    "seq MB/s",
    "dl/read",
    "note",
]


def fmt(value) -> str:
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value) if value is not None else "—"


def print_table(rows: list[dict]) -> None:
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for row in rows:
        print("| " + " | ".join(fmt(row.get(c)) for c in COLUMNS) + " |")


# --- DataLoader epochs --------------------------------------------------------------------
def dataloader_epochs(base_url: str, root: Path, tmp: Path, workloads, counter: Counter) -> list:
    """One epoch through ``torch.utils.data.DataLoader`` with ``ChunkShuffleSampler``
    (window 4, its prefetch at the default 128 MiB): over the local copy, then the URL with
    a fresh cache (cold) and again with that cache (warm, a new ``TorchDataset``), with 0
    and 2 workers (fork), in both forms: per sample (``batch_size=N``, the items collated)
    and whole batches (``batch_size=None, sampler=sampler.batches(N)``). Batches of 256 (W1)
    and 64 (W2); torch on one thread (the cores are shared with the server). Rows:
    samples/s, MB/s, GETs, time against the local one in the same form."""
    try:
        import torch
        from torch.utils.data import DataLoader

        from acumen.torch import ChunkShuffleSampler, TorchDataset
    except ImportError:
        return []
    torch.set_num_threads(1)

    def one(data, workers: int, batch: int, form: str) -> tuple[float, int, int]:
        sampler = ChunkShuffleSampler(data, window=4, seed=0)
        whole = form == "batches"
        loader = DataLoader(
            data,
            batch_size=None if whole else batch,
            sampler=sampler.batches(batch) if whole else sampler,
            num_workers=workers,
            multiprocessing_context="fork" if workers else None,
        )
        counter.mark()
        start = time.perf_counter()
        count = sum(len(x) for x in loader)
        return time.perf_counter() - start, count, counter.gets()

    rows = []
    for name, _, _, sample_bytes in workloads:
        batch = 256 if name == "W1" else 64
        for workers, form in itertools.product((0, 2), ("samples", "batches")):
            local_s, count, _ = one(TorchDataset(root / name.lower()), workers, batch, form)
            cache = tmp / f"cache-epoch-{name}-{workers}-{form}"
            url = f"{base_url}/{name.lower()}"
            for label in ("cold", "warm"):
                data = TorchDataset(url, cache=cache)
                seconds, count, gets = one(data, workers, batch, form)
                data.dataset.close()  # untimed: the disk-cache writes still queued finish
                rows.append(
                    {
                        "workload": name,
                        "workers": workers,
                        "form": form,
                        "pass": label,
                        "samples/s": count / seconds,
                        "MB/s": count * sample_bytes / seconds / 1e6,
                        "GETs": gets,
                        "local samples/s": count / local_s,
                        "time / local": seconds / local_s,
                    }
                )
    return rows


def print_epochs(rows: list, limits: dict) -> None:
    if not rows:
        print("\nDataLoader epoch: torch not installed, skipped")
        return
    link = limits["one 64 MiB GET MB/s"]
    print(
        f"\nDataLoader epoch (ChunkShuffleSampler window 4, prefetch 128 MiB); link {link:.0f} MB/s"
    )
    columns = [*rows[0], "% of link"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        shown = {**row, "% of link": f"{100 * row['MB/s'] / link:.0f}%"}
        print("| " + " | ".join(fmt(shown[c]) for c in columns) + " |")


# --- main -------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller workloads")
    parser.add_argument("--delay", type=float, default=0.02, help="seconds added per request")
    parser.add_argument("--install-nginx", action="store_true", help="apt-get install nginx")
    parser.add_argument(
        "--python-server", action="store_true", help="the Python test server, even with nginx"
    )
    parser.add_argument("--singles", type=int, default=None, help="random single reads")
    parser.add_argument("--batches", type=int, default=None, help="random batches of 256")
    args = parser.parse_args()
    n1, n2 = (20_000, 300) if args.quick else (100_000, 2_000)
    singles_n = args.singles or (100 if args.quick else 500)
    batches_n = args.batches or (5 if args.quick else 20)
    began = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="acumen-remote-bench-") as tmp:
        tmp_path = Path(tmp)
        root = tmp_path / "served"
        root.mkdir()
        os.chmod(tmp_path, 0o755)
        workloads = [
            ("W1", f"{n1:,} x float16 (32, 16), 1 KiB", n1, write_w1(root / "w1", n1)),
            ("W2", f"{n2:,} x uint8 (224, 224, 3), 147 KiB", n2, write_w2(root / "w2", n2)),
        ]
        (root / "ceiling.bin").write_bytes(np.random.default_rng(1).bytes(64 * MIB))
        server, server_name = start_server(root, tmp_path, args.install_nginx, args.python_server)
        proxy = FaultProxy(server.base_url).start()
        proxy.delay = args.delay
        counter = Counter(proxy)
        rows: list[dict] = []
        seq_share: dict[str, float] = {}
        try:
            limits = ceiling(proxy.base_url, counter)
            for name, description, n, sample_bytes in workloads:
                url = f"{proxy.base_url}/{name.lower()}"
                rng = np.random.default_rng(2)
                singles = rng.integers(0, n, singles_n).tolist()
                batches = [rng.choice(n, min(BATCH, n), replace=False) for _ in range(batches_n)]
                cache = tmp_path / f"cache-{name}"
                first_ms, first_gets, ds = first_sample(url, cache, counter)
                cold = reads(ds, singles, batches, sample_bytes, counter)
                warm = reads(ds, singles, batches, sample_bytes, counter)
                ds.close()
                # Another process's view: a new open, memory empty, the disk cache full.
                again_ms, again_gets, ds = first_sample(url, cache, counter)
                disk = reads(ds, singles, batches, sample_bytes, counter)
                ds.close()
                local_ms, _, ds = first_sample(root / name.lower(), cache, counter)
                local = reads(ds, singles, batches, sample_bytes, counter)
                ds.close()
                best = max(limits["one 64 MiB GET MB/s"], limits["16 x 4 MiB concurrent MB/s"])
                seq_share[name] = cold["seq MB/s"] / best
                for label, ms, gets, measured, note in (
                    ("cold", first_ms, first_gets, cold, f"seq {seq_share[name]:.0%} of ceiling"),
                    ("warm (memory)", None, None, warm, "the same open, again"),
                    ("warm (disk)", again_ms, again_gets, disk, "a new open: disk cache"),
                    ("local", local_ms, 0, local, "the served folder, opened locally"),
                ):
                    rows.append(
                        {
                            "workload": f"{name}: {description}",
                            "system": f"acumen {acumen.__version__}",
                            "pass": label,
                            "first ms": ms,
                            "first GETs": gets,
                            **measured,
                            "note": f"raw codec; {note}",
                        }
                    )
                for module, system in (("litdata", "litdata"), ("streaming", "MosaicML streaming")):
                    if importlib.util.find_spec(module) is None:
                        note = "not installed: skipped"
                    else:
                        note = "installed, not driven yet (reads S3/GCS/Azure, not plain HTTP)"
                    rows.append(
                        {"workload": f"{name}: {description}", "system": system, "note": note}
                    )
            epochs = dataloader_epochs(proxy.base_url, root, tmp_path, workloads, counter)
        finally:
            proxy.stop()
            server.stop()

    print(f"# benchmarks/remote.py{' --quick' if args.quick else ''} --delay {args.delay}")
    print(
        f"python {platform.python_version()}, acumen {acumen.__version__}, numpy "
        f"{np.__version__}, {os.cpu_count()} cores, {platform.platform()}"
    )
    print(f"server: {server_name}; FaultProxy in front, {args.delay * 1e3:.0f} ms per request")
    print(
        f"random single reads: {singles_n}; batches: {batches_n} x {BATCH}; "
        "dl/read = bytes downloaded per array byte read (single / batch / seq)"
    )
    print()
    print(
        "ceiling (same proxy and client): " + ", ".join(f"{k} {fmt(v)}" for k, v in limits.items())
    )
    print()
    print_table(rows)
    print_epochs(epochs, limits)
    print(f"\n({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
