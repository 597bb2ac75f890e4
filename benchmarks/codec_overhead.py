"""Where a compressed read's time goes beyond the compression library's own decompress.

    .venv/bin/python benchmarks/codec_overhead.py [--samples 200000] [--reads 100000]

Writes float16 (32, 16) samples (1 KiB) with each codec (``durable=False``, in a temporary
folder), then times, over the same random indices (median of 7 passes, per-read mean):

- ``ds.read(i)``: acumen's read;
- ``library``: the library's decompress of the same payload held as ``bytes``
  (``zlib.decompress``, ``ZstdDecompressor().decompress``, ``lz4.frame.decompress``);
- ``codec.decode``: acumen's codec alone on that ``bytes`` payload;
- lz4 only, the floor in Python: the read written inline (index lookup, slice of the chunk
  view, ``decompress_chunk``, ndarray) with no checks, and with the checks acumen keeps
  (per-thread context; frame complete, all input used, exact size).

Each line prints the time and its difference from ``library`` ("+µs"), issue 5's "overhead
over the compression library's own decompress".
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import lz4.frame
import numpy as np
import zstandard

import acumen

LIBRARIES: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda payload: zlib.decompress(payload, 16 + zlib.MAX_WBITS),
    "zstd": zstandard.ZstdDecompressor().decompress,
    "lz4": lz4.frame.decompress,
}


def per_read_us(read: Callable[[int], object], indices: list[int], passes: int = 7) -> float:
    times = []
    for _ in range(passes):
        start = time.perf_counter_ns()
        for i in indices:
            read(i)
        times.append((time.perf_counter_ns() - start) / len(indices))
    return sorted(times)[passes // 2] / 1000


def payloads_of(root: Path, ds: acumen.Dataset, indices: list[int]) -> dict[int, bytes]:
    table, files, payloads = ds.table, {}, {}
    for i in set(indices):
        name = table.chunk_names[int(table.chunk_ids[i])]
        if name not in files:
            files[name] = (root / name).read_bytes()
        offset, size = int(table.offsets[i]), int(table.sizes[i])
        payloads[i] = files[name][offset : offset + size]
    return payloads


def lz4_inline(ds: acumen.Dataset, checked: bool) -> Callable[[int], np.ndarray]:
    """The read with nothing but its steps (``checked``: plus the checks acumen keeps)."""
    decompress = lz4.frame.decompress_chunk
    views = ds.storage.views
    chunk_at, offset_at, size_at = ds._chunk_at, ds._offset_at, ds._size_at
    shape, dtype, nbytes = ds.shape, ds.dtype, ds._nbytes
    context = lz4.frame.create_decompression_context()
    local = threading.local()
    local.context = context

    def bare(i: int) -> np.ndarray:
        offset = offset_at[i]
        data, _, _ = decompress(context, views[chunk_at[i]][offset : offset + size_at[i]], nbytes)
        return np.ndarray(shape, dtype, data)

    def with_checks(i: int) -> np.ndarray:
        offset, size = offset_at[i], size_at[i]
        payload = views[chunk_at[i]][offset : offset + size]
        data, used, complete = decompress(local.context, payload, nbytes)
        if complete and used == size and len(data) == nbytes:
            return np.ndarray(shape, dtype, data)
        raise ValueError(f"sample {i} does not decode")

    return with_checks if checked else bare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=200_000)
    parser.add_argument("--reads", type=int, default=100_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    samples = [rng.standard_normal((32, 16)).astype(np.float16) for _ in range(args.samples)]
    indices = np.random.default_rng(1).integers(0, args.samples, args.reads).tolist()
    print(f"{args.samples:,} samples of float16 (32, 16); {args.reads:,} random reads\n")
    with tempfile.TemporaryDirectory() as folder:
        for codec, library in LIBRARIES.items():
            root = Path(folder) / codec
            with acumen.Writer(root, codec=codec, durable=False) as writer:
                for i, array in enumerate(samples):
                    writer.add(array, label=i)
            with acumen.open(root) as ds:
                payloads = payloads_of(root, ds, indices)
                ds.check_index()
                for i in indices[:20_000]:  # warm the maps and the reader
                    ds.read(i)
                base = per_read_us(lambda i, p=payloads, f=library: f(p[i]), indices)

                def codec_alone(i: int, p=payloads, f=ds.codec.decode, n=ds._nbytes) -> object:
                    return f(p[i], n)

                rows = [
                    ("ds.read(i)", per_read_us(ds.read, indices)),
                    ("codec.decode", per_read_us(codec_alone, indices)),
                ]
                if codec == "lz4":
                    rows.append(("inline, no checks", per_read_us(lz4_inline(ds, False), indices)))
                    rows.append(("inline, with checks", per_read_us(lz4_inline(ds, True), indices)))
                print(f"{codec:5} library decompress        {base:6.3f} µs")
                for label, us in rows:
                    print(f"{codec:5} {label:26} {us:6.3f} µs  {us - base:+.3f}")
                print()


if __name__ == "__main__":
    main()
