"""Conversion benchmark: many small files into one dataset, acumen convert vs the original.

    .venv/bin/python benchmarks/convert.py [--files 20000] [--images 10000] [--quick]

Generates ``--files`` small .npy files (float16 (32, 16), 1 KiB of data each, 100 per folder)
and ``--images`` PNG images (64x64 RGB crops of scikit-image's sample images, or synthetic
ones without scikit-image), then converts each set with ``acumen.convert`` (local engine,
n_jobs 1 and 2) and with the original acumenindexer's ``split_into_chunks`` (n_jobs 1, a
``read_fn`` that loads the file and returns a metadata dict, its prints suppressed).

Then the scaling table (issue 15): for N = 1, 2, 4, 8, 16 worker processes (those up to
``os.cpu_count()``), the ceiling, what just reading the same files costs in N processes of a
pool started beforehand (``np.load`` of each .npy; for the PNGs, the decode acumen's image
reader does: Pillow's open, ``convert("RGB")`` where needed, ``np.asarray``), beside
``acumen convert`` with ``n_jobs=N`` (local engine, the automatic part size, raw codec), as
files/s and as a percent of the ceiling at the same N. For the .npy files it also gives the
rate of acumen's own npy reader alone in N processes (it parses a header once per distinct
header, so it reads faster than ``np.load``): the conversion's percent of that is what its
machinery (listing, parts, writing, merging) leaves of the reading.

The page cache is warm: every input file is read once before the timings, so the figures
measure the conversion, not the disk. files/s and MB/s count the input files and their
bytes on disk. Every figure is measured in this run, the best of ``--repeats``.
``--quick`` (10,000 files, 2,000 images, 2 repeats) runs in under a minute.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

import acumen


def numbered_path(folder: Path, i: int, prefix: str, suffix: str) -> Path:
    """File ``i`` of a source tree: 100 files per subfolder (made with its first file)."""
    sub = folder / f"d{i // 100:04d}"
    if i % 100 == 0:
        sub.mkdir(parents=True)
    return sub / f"{prefix}{i:06d}{suffix}"


def make_npys(folder: Path, n: int) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = numbered_path(folder, i, "f", ".npy")
        np.save(path, rng.normal(size=(32, 16)).astype(np.float16))
        paths.append(path)
    return paths


def image_sources() -> tuple[list[np.ndarray], str]:
    try:
        from skimage import data
    except ImportError:
        rng = np.random.default_rng(1)
        base = np.linspace(0, 255, 512, dtype=np.float32)
        synthetic = [
            (base[None, :, None] * rng.random((512, 1, 3)) % 256).astype(np.uint8) for _ in range(4)
        ]
        return synthetic, "synthetic"
    names = ("astronaut", "coffee", "chelsea", "rocket")
    return [getattr(data, name)() for name in names], "skimage.data crops"


def make_pngs(folder: Path, n: int) -> tuple[list[Path], str]:
    from PIL import Image

    sources, origin = image_sources()
    rng = np.random.default_rng(2)
    paths = []
    for i in range(n):
        image = sources[i % len(sources)]
        y = int(rng.integers(0, image.shape[0] - 64))
        x = int(rng.integers(0, image.shape[1] - 64))
        path = numbered_path(folder, i, "i", ".png")
        Image.fromarray(np.ascontiguousarray(image[y : y + 64, x : x + 64, :3])).save(path)
        paths.append(path)
    return paths, origin


def warm(paths: list[Path]) -> int:
    """Reads every file once (page cache warm); returns their total size."""
    return sum(len(p.read_bytes()) for p in paths)


def read_npy(path: str) -> tuple[np.ndarray, dict]:
    return np.load(path, allow_pickle=False), {"path": path}


def read_png(path: str) -> tuple[np.ndarray, dict]:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image), {"path": path}


@contextlib.contextmanager
def quiet_stdout():
    """Silences file descriptor 1 (the original prints from its worker processes)."""
    with open(os.devnull, "w") as devnull:
        saved = os.dup(1)
        try:
            os.dup2(devnull.fileno(), 1)
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)


def run_acumen(
    root: Path,
    glob: str,
    reader: dict,
    out: Path,
    n_jobs: int,
    codec: str,
    part_size: int | None = 2000,
) -> float:
    run: dict = {"n_jobs": n_jobs, "progress": False}
    if part_size is not None:
        run["part_size"] = part_size
    config = {
        "source": {"glob": glob},
        "reader": reader,
        "output": {"path": str(out), "codec": codec, "chunk_size": "64MiB"},
        "run": run,
    }
    path = root / "config.json"
    path.write_text(json.dumps(config))
    start = time.perf_counter()
    summary = acumen.convert(path)
    seconds = time.perf_counter() - start
    assert summary.skipped == []
    return seconds


def run_original(paths: list[Path], read_fn, out: Path, dtype) -> float:
    from acumenindexer import split_into_chunks

    items = [str(p) for p in paths]
    start = time.perf_counter()
    with quiet_stdout():
        split_into_chunks(
            items, str(out), read_fn=read_fn, chunk_size_bytes=64 << 20, n_jobs=1, dtype=dtype
        )
    return time.perf_counter() - start


def np_load_all(paths: list[str]) -> int:
    for path in paths:
        np.load(path, allow_pickle=False)
    return len(paths)


def npy_reader_all(paths: list[str]) -> int:
    from acumen.readers.npy import NpyReader

    reader = NpyReader()
    for path in paths:
        reader.read(path)
    return len(paths)


def decode_all(paths: list[str]) -> int:
    """What acumen's image reader does to a file (mode "RGB"), nothing more."""
    from PIL import Image

    for path in paths:
        with Image.open(path) as image:
            if image.mode != "RGB":
                image = image.convert("RGB")
            np.asarray(image)
    return len(paths)


def in_processes(function, paths: list[Path], n: int, repeats: int) -> float:
    """Files/s of ``function`` over ``paths`` split into ``n`` slices, one per process of a
    pool started (and warmed) before the clock starts; the best of ``repeats``."""
    texts = [str(p) for p in paths]
    slices = [texts[k::n] for k in range(n)]
    best = 0.0
    with ProcessPoolExecutor(n) as pool:
        list(pool.map(function, [texts[:8]] * n))  # the workers started, their imports done
        for _ in range(repeats):
            start = time.perf_counter()
            done = sum(pool.map(function, slices))
            best = max(best, done / (time.perf_counter() - start))
    return best


def worker_counts() -> list[int]:
    cores = os.cpu_count() or 1
    return [n for n in (1, 2, 4, 8, 16) if n <= max(cores, 2)]


def scaling(root: Path, sets: list, repeats: int) -> list[tuple[str, int, str, float, float]]:
    """Rows (input, N, what, files/s, percent of the ceiling at N)."""
    rows = []
    for label, paths, glob, reader, _, _ in sets:
        warm(paths)
        is_npy = reader["name"] == "npy"
        for n in worker_counts():
            ceiling = in_processes(np_load_all if is_npy else decode_all, paths, n, repeats)
            name = "np.load (ceiling)" if is_npy else "decode only (ceiling)"
            rows.append((label, n, name, ceiling, 100.0))
            if is_npy:
                rate = in_processes(npy_reader_all, paths, n, repeats)
                rows.append((label, n, "acumen npy reader alone", rate, 100 * rate / ceiling))
            seconds = []
            for k in range(repeats):
                out = root / f"scale-{n}-{k}"
                seconds.append(run_acumen(root, glob, reader, out, n, "raw", part_size=None))
                shutil.rmtree(out)
            rate = len(paths) / min(seconds)
            rows.append((label, n, f"acumen convert n_jobs={n}", rate, 100 * rate / ceiling))
    return rows


def print_scaling(rows: list[tuple[str, int, str, float, float]]) -> None:
    print()
    print("Conversion scaling: files/s and percent of the ceiling with the same N processes")
    header = f"{'input':<42} {'N':>3} {'what':<30} {'files/s':>10} {'% ceiling':>10}"
    print(header)
    print("-" * len(header))
    for label, group in itertools.groupby(rows, key=lambda row: row[0]):
        for _, n, name, rate, percent in group:
            print(f"{label:<42} {n:>3} {name:<30} {rate:>10,.0f} {percent:>9.0f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=20_000, help=".npy files (default 20,000)")
    parser.add_argument("--images", type=int, default=10_000, help="PNG images (default 10,000)")
    parser.add_argument("--repeats", type=int, default=3, help="best of (default 3)")
    parser.add_argument(
        "--quick", action="store_true", help="10,000 files, 2,000 images, best of 2: under a minute"
    )
    args = parser.parse_args()
    if args.quick:
        args.files, args.images, args.repeats = 10_000, 2_000, 2
    rows: list[tuple[str, str, int, int, float, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        npys = make_npys(root / "npy", args.files)
        pngs, origin = make_pngs(root / "png", args.images)
        made = time.perf_counter() - start
        sets = [
            (
                f"npy float16 (32,16) x {args.files:,}",
                npys,
                "npy/**/*.npy",
                {"name": "npy"},
                read_npy,
                np.float16,
            ),
            (
                f"png 64x64x3 ({origin}) x {args.images:,}",
                pngs,
                "png/**/*.png",
                {"name": "image", "configuration": {"mode": "RGB"}},
                read_png,
                np.uint8,
            ),
        ]
        print(f"generated the inputs in {made:.1f} s; page cache warmed by reading each once")
        for label, paths, glob, reader, read_fn, dtype in sets:
            nbytes = warm(paths)
            runs = [
                ("acumen convert, raw, n_jobs=1", 1, "raw"),
                ("acumen convert, raw, n_jobs=2", 2, "raw"),
                ("acumen convert, zstd, n_jobs=2", 2, "zstd"),
            ]
            for k, (name, n_jobs, codec) in enumerate(runs):
                out = root / f"out-{k}"
                seconds = run_acumen(root, glob, reader, out, n_jobs, codec)
                with acumen.open(out) as ds:
                    assert len(ds) == len(paths)
                written = sum(p.stat().st_size for p in (out / "chunks").iterdir())
                rows.append((label, name, len(paths), nbytes, seconds, written))
                shutil.rmtree(out)
            out = root / "out-original"
            seconds = run_original(paths, read_fn, out, dtype)
            written = sum(p.stat().st_size for p in (out / "chunks").iterdir())
            name = "acumenindexer 0.0.1 split_into_chunks, n_jobs=1"
            rows.append((label, name, len(paths), nbytes, seconds, written))
            shutil.rmtree(out)
        scaled = scaling(root, sets, args.repeats)
    print(f"CPU cores: {os.cpu_count()}")
    header = f"{'input':<42} {'conversion':<50} {'s':>7} {'files/s':>9} {'MB/s':>7} {'out MB':>7}"
    print(header)
    print("-" * len(header))
    for label, name, files, nbytes, seconds, written in rows:
        print(
            f"{label:<42} {name:<50} {seconds:>7.2f} {files / seconds:>9,.0f} "
            f"{nbytes / seconds / 1e6:>7.1f} {written / 1e6:>7.1f}"
        )
    print("MB/s: input bytes on disk (.npy with headers, .png compressed) per second.")
    print_scaling(scaled)


if __name__ == "__main__":
    main()
