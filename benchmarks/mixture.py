"""What mixing and resuming cost: a weighted ``acumen.Mixture`` of 3 datasets against one
dataset of the same samples, and the resume state of an epoch at 10 M samples.

    .venv/bin/python benchmarks/mixture.py [--quick] [--samples N] [--huge N]

1. Reading. Writes one dataset of N raw float32 samples of shape (64,) (256 bytes, 1 MiB
   chunks) and 3 datasets of N/3 of the same samples, then reads an epoch of each in
   batches of 256: ``ChunkShuffleSampler(one)`` against ``MixtureSampler(Mixture(three,
   weights=[2, 1, 1]), until="all")`` (every sample once, each source in its own windows):
   ``read_batch`` into one array per batch on this thread, and through ``BatchLoader``
   (the order's planning included); with ``window=4`` for both (the default: the mixture's 4
   chunks shared among its sources by weight, 2 / 1 / 1), and with ``window=[4, 4, 4]``
   (4 chunks for each source: the mixture reads 3 windows at once). Target: the mixture's
   per-batch cost <= 1.10 x the one dataset's.
2. Resuming at ``--huge`` samples (10 M by default): datasets of that many samples (an index
   written directly, sparse chunk files: no payload), the state's size in bytes (JSON) and
   the time to resume (a new sampler, ``load_state_dict`` of a state in the middle of the
   epoch, its first batch) against one epoch-order computation, for ``ChunkShuffleSampler``
   and for a ``MixtureSampler`` of 3 sources. Targets: <= 1 KB; <= one epoch order.

``--quick``: N = 60,000 and 3 runs (under a minute, most of it writing the datasets and
the 10 M-sample indexes); default N = 600,000 and 5 runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from open_index import make_dataset, make_table

import acumen
from acumen.torch import BatchLoader, ChunkShuffleSampler, MixtureSampler, TorchDataset
from acumen.torch.order import EpochSampler

BATCH = 256
WEIGHTS = [2, 1, 1]


def write(path: Path, values: np.ndarray) -> None:
    with acumen.Writer(path, codec="raw", chunk_size_bytes=1 << 20, durable=False) as writer:
        for row in values:
            writer.add(row)


def median_of(run: Callable[[], float], repeats: int) -> float:
    return statistics.median(run() for _ in range(repeats))


def read_epoch(ds: acumen.Dataset, sampler: EpochSampler) -> float:
    """Microseconds per batch: an epoch of ``read_batch`` calls in the sampler's order."""
    batches = list(sampler.batches(BATCH))
    out = np.empty((BATCH, 64), np.float32)
    began = time.perf_counter()
    for positions in batches:
        ds.read_batch(positions, out=out[: len(positions)], threads=1)
    return (time.perf_counter() - began) / len(batches) * 1e6


def loader_epoch(data: TorchDataset, sampler: EpochSampler) -> float:
    """Microseconds per batch through BatchLoader, the epoch's order planned first."""
    sampler._cached = None  # plan the order again, as a new epoch does
    began = time.perf_counter()
    count = sum(1 for _ in BatchLoader(data, BATCH, sampler=sampler, threads=1))
    return (time.perf_counter() - began) / count * 1e6


def chunks_per_batch(ds: acumen.Dataset, sampler: EpochSampler) -> float:
    order = sampler.epoch_order()
    ids = ds.table.chunk_ids[order]
    return float(
        np.mean([len(np.unique(ids[at : at + BATCH])) for at in range(0, len(ids), BATCH)])
    )


def reading(root: Path, n: int, repeats: int) -> None:
    values = np.arange(n, dtype=np.float32)[:, None] + np.zeros(64, np.float32)
    began = time.perf_counter()
    write(root / "one", values)
    thirds = np.array_split(values, 3)
    for k, part in enumerate(thirds):
        write(root / f"part{k}", part)
    print(
        f"written: 1 dataset of {n:,} samples and 3 of {len(thirds[0]):,} "
        f"({time.perf_counter() - began:.1f} s)"
    )
    one = acumen.open(root / "one")
    mix = acumen.Mixture([root / f"part{k}" for k in range(3)], weights=WEIGHTS)

    def single(window: int) -> ChunkShuffleSampler:
        return ChunkShuffleSampler(one, window=window, seed=0)

    def mixed(window: int | list[int]) -> MixtureSampler:
        return MixtureSampler(mix, window=window, seed=0, until="all")

    assert len(mixed(4)) == len(single(4)) == n
    cases = (
        ("read_batch, window 4", read_epoch, single(4), mixed(4)),
        ("BatchLoader, window 4", loader_epoch, single(4), mixed(4)),
        ("read_batch, window 4 for each source", read_epoch, single(4), mixed([4, 4, 4])),
    )
    print(
        f"\n{'reading an epoch, batches of 256':36} {'one':>7} {'mixture':>8} {'chunks':>11}"
        f" {'ratio':>6}  target"
    )
    for label, call, a_sampler, b_sampler in cases:
        a_data, b_data = (
            (one, mix) if call is read_epoch else (TorchDataset(one), TorchDataset(mix))
        )
        a = median_of(lambda: call(a_data, a_sampler), repeats)  # noqa: B023
        b = median_of(lambda: call(b_data, b_sampler), repeats)  # noqa: B023
        chunks = f"{chunks_per_batch(one, a_sampler):.1f} / {chunks_per_batch(mix, b_sampler):.1f}"
        verdict = "ok" if b / a <= 1.10 else "OVER"
        print(f"{label:36} {a:7.1f} {b:8.1f} {chunks:>11} {b / a:6.3f}  <= 1.10 {verdict}")
    print("(us per batch; chunks: chunk files touched per batch, one / mixture)")


def huge_dataset(root: Path, n: int) -> acumen.Dataset:
    table, chunks = make_table(n, variable=False, with_metadata=False)
    make_dataset(root, table, chunks, "arrow")
    return acumen.open(root)


def resuming(root: Path, n: int, repeats: int) -> None:
    began = time.perf_counter()
    one = huge_dataset(root / "huge", n)
    parts = [huge_dataset(root / f"huge{k}", n // 3) for k in range(3)]
    mix = acumen.Mixture(parts, weights=WEIGHTS)
    print(
        f"\nindexes of {n:,} samples and 3 x {n // 3:,} written "
        f"({time.perf_counter() - began:.1f} s)"
    )
    print(
        f"{'resuming at ' + format(n, ',') + ' samples':36} {'state B':>8} {'order s':>8} "
        f"{'resume s':>9} {'ratio':>6}  targets"
    )
    for label, make in (
        ("ChunkShuffleSampler", lambda **k: ChunkShuffleSampler(one, seed=1, **k)),
        ("MixtureSampler (3 sources)", lambda **k: MixtureSampler(mix, seed=1, until="all", **k)),
    ):

        def order(make: Callable = make) -> float:
            start = time.perf_counter()
            make().epoch_order()  # a new sampler's order, as every epoch computes it
            return time.perf_counter() - start

        sampler = make(num_replicas=8, rank=0)
        state = sampler.state_dict(consumed=len(sampler) // 2)
        size = len(json.dumps(state).encode())

        def resume(make: Callable = make, state: dict = state) -> float:
            start = time.perf_counter()
            fresh = make(num_replicas=6, rank=5)  # another world size
            fresh.load_state_dict(state)
            next(iter(fresh.batches(BATCH)))
            return time.perf_counter() - start

        planned, resumed = median_of(order, repeats), median_of(resume, repeats)
        ok = "ok" if size <= 1024 and resumed <= planned * 1.10 else "OVER"
        print(
            f"{label:36} {size:8} {planned:8.2f} {resumed:9.2f} {resumed / planned:6.2f}"
            f"  <= 1024 B, <= 1 order {ok}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--huge", type=int, default=10_000_000)
    args = parser.parse_args()
    n = args.samples or (60_000 if args.quick else 600_000)
    repeats = 3 if args.quick else 5
    with tempfile.TemporaryDirectory() as folder:
        reading(Path(folder), n, repeats)
        resuming(Path(folder), args.huge, repeats)


if __name__ == "__main__":
    main()
