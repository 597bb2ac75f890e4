"""Bytes on disk and encode/decode time per sample: blosc2 against acumen's zstd and lz4.

    python benchmarks/compare.py [--samples 2000]

Each codec writes the same samples to a dataset (acumen.Writer), whose chunk files give
the bytes on disk; encode and decode are timed on the codec itself, one call per sample,
and the median is reported.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
import zlib
from pathlib import Path

os.environ.setdefault("ACUMEN_PLUGINS", "builtin,blosc2")

import blosc2
import numpy as np

import acumen
from acumen import plugins

CODECS = {
    "blosc2 (zstd, shuffle)": {"name": "blosc2"},
    "blosc2 (zstd, noshuffle)": {"name": "blosc2", "configuration": {"filter": "noshuffle"}},
    "blosc2 (zstd clevel 1, shuffle)": {"name": "blosc2", "configuration": {"clevel": 1}},
    "blosc2 (lz4, shuffle)": {"name": "blosc2", "configuration": {"cname": "lz4"}},
    "zstd (level 3)": {"name": "zstd"},
    "lz4 (level 0)": {"name": "lz4"},
    "raw": {"name": "raw"},
}


def smooth_float32(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """(128, 64) float32 features: one slow sinusoid per column plus a small drift."""
    t = np.arange(128, dtype=np.float64)[:, None]
    samples = []
    for _ in range(n):
        frequency = rng.uniform(0.01, 0.1, 64)
        phase = rng.uniform(0, 2 * np.pi, 64)
        drift = np.cumsum(rng.normal(0, 0.01, (128, 64)), axis=0)
        samples.append((np.sin(t * frequency + phase) + drift).astype(np.float32))
    return samples


def random_float16(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """(32, 16) float16, normally distributed: little to compress."""
    return [rng.normal(0, 1, (32, 16)).astype(np.float16) for _ in range(n)]


def crc_cost(samples: list[np.ndarray]) -> float:
    """Median µs of the CRC-32 the blosc2 codec computes once per encode and per decode."""
    codec = plugins.codec("blosc2")
    times = []
    for array in samples:
        payload = codec.encode(array)
        start = time.perf_counter_ns()
        zlib.crc32(payload)
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1e3


def measure(spec: dict, samples: list[np.ndarray], folder: Path) -> tuple[float, float, float]:
    codec = plugins.codec(spec)
    with acumen.Writer(folder, codec=spec, durable=False) as writer:
        for array in samples:
            writer.add(array)
    on_disk = sum(f.stat().st_size for f in (folder / "chunks").iterdir())
    for array in samples[:50]:  # warm up
        codec.decode(codec.encode(array), array.nbytes)
    encode, decode, payloads = [], [], []
    for array in samples:
        start = time.perf_counter_ns()
        payload = codec.encode(array)
        encode.append(time.perf_counter_ns() - start)
        payloads.append(payload)
    for array, payload in zip(samples, payloads, strict=True):
        start = time.perf_counter_ns()
        data = codec.decode(payload, array.nbytes)
        decode.append(time.perf_counter_ns() - start)
        assert bytes(data) == array.tobytes()
    per_sample = on_disk / len(samples)
    return per_sample, statistics.median(encode) / 1e3, statistics.median(decode) / 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    data = {
        "float32 (128, 64), smooth": smooth_float32(rng, args.samples),
        "float16 (32, 16), random": random_float16(rng, args.samples),
    }
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, blosc2 "
        f"{blosc2.__version__}, acumen {acumen.__version__}, {os.cpu_count()} CPUs, "
        f"{args.samples} samples each"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for kind, samples in data.items():
            raw = samples[0].nbytes
            print(f"\n{kind}: {raw} bytes per sample")
            print("| codec | bytes on disk per sample | ratio | encode µs | decode µs |")
            print("| --- | ---: | ---: | ---: | ---: |")
            for n, (label, spec) in enumerate(CODECS.items()):
                size, encode, decode = measure(spec, samples, Path(tmp) / f"{kind[:7]}{n}")
                print(f"| {label} | {size:,.0f} | {raw / size:.2f} | {encode:.1f} | {decode:.1f} |")
            print(f"(of which the blosc2 payload's CRC-32: {crc_cost(samples[:500]):.1f} µs)")


if __name__ == "__main__":
    main()
