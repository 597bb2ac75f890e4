"""Conversion benchmark: many small files into one dataset, acumen convert vs the original.

    .venv/bin/python benchmarks/convert.py [--files 20000] [--images 2000]

Generates ``--files`` small .npy files (float16 (32, 16), 1 KiB of data each, 100 per folder)
and ``--images`` PNG images (64x64 RGB crops of scikit-image's sample images, or synthetic
ones without scikit-image), then converts each set with ``acumen.convert`` (local engine,
n_jobs 1 and 2) and with the original acumenindexer's ``split_into_chunks`` (n_jobs 1, a
``read_fn`` that loads the file and returns a metadata dict, its prints suppressed).

The page cache is warm: every input file is read once before the timings, so the figures
measure the conversion, not the disk. files/s and MB/s count the input files and their
bytes on disk. Every figure is measured in this run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import tempfile
import time
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


def run_acumen(root: Path, glob: str, reader: dict, out: Path, n_jobs: int, codec: str) -> float:
    config = {
        "source": {"glob": glob},
        "reader": reader,
        "output": {"path": str(out), "codec": codec, "chunk_size": "64MiB"},
        "run": {"n_jobs": n_jobs, "part_size": 2000, "progress": False},
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=20_000, help=".npy files (default 20,000)")
    parser.add_argument("--images", type=int, default=2_000, help="PNG images (default 2,000)")
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
