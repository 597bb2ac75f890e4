"""How much a trained zstd dictionary saves on small samples.

    .venv/bin/python benchmarks/zstd_dictionary.py [--samples 20000]

Writes the same samples with raw, zstd, and zstd with a dictionary (16 KiB, trained on the
first 1000 samples) and prints the bytes in chunk files (the dictionary file counted), the
ratio to raw, and the median decode time per sample from the page cache.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import acumen

CODECS = {
    "raw": "raw",
    "zstd": "zstd",
    "zstd+dict": {"name": "zstd", "configuration": {"dictionary_size": 16384}},
}


def datasets(n: int) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    pose = np.round(rng.normal(size=(17, 2)), 2).astype(np.float32)
    return {
        "pose frame float32 (17,2)": [
            pose + np.round(rng.normal(scale=0.05, size=(17, 2)), 2).astype(np.float32)
            for _ in range(n)
        ],
        "tokens int32 (L,), L<64": [
            rng.zipf(1.5, size=int(rng.integers(8, 64))).clip(0, 30000).astype(np.int32)
            for _ in range(n)
        ],
        "features float16 (32,16)": [
            np.round(rng.normal(size=(32, 16)), 1).astype(np.float16) for _ in range(n)
        ],
        "icon uint8 (8,8,3)": [
            (np.add.outer(np.arange(8), np.arange(8))[..., None] * rng.integers(1, 9, 3))
            .clip(0, 255)
            .astype(np.uint8)
            for _ in range(n)
        ],
    }


def stored_bytes(path: Path) -> int:
    return sum(
        p.stat().st_size for p in path.rglob("*") if p.is_file() and p.suffix in (".chnk", ".dict")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=20_000)
    args = parser.parse_args()
    probe = np.random.default_rng(1).integers(0, args.samples, 5000).tolist()
    print(
        f"{args.samples:,} samples each; bytes stored (chunks + dictionary), ratio to raw, "
        "median ds.read(i)\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, arrays in datasets(args.samples).items():
            print(name)
            raw_size = None
            for label, codec in CODECS.items():
                path = Path(tmp) / f"{name[:4]}-{label}"
                with acumen.Writer(path, codec=codec, chunk_size_bytes=64 << 20) as writer:
                    for array in arrays:
                        writer.add(array)
                size = stored_bytes(path)
                raw_size = raw_size or size
                with acumen.open(path) as ds:
                    times = []
                    for i in probe:
                        start = time.perf_counter_ns()
                        ds.read(i)
                        times.append(time.perf_counter_ns() - start)
                print(
                    f"  {label:<10} {size:>12,} bytes  {raw_size / size:5.2f}x  "
                    f"{statistics.median(times) / 1000:5.1f} µs"
                )


if __name__ == "__main__":
    main()
