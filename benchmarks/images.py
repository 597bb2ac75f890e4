"""Images as practitioners store them: JPEG bytes decoded in the DataLoader's workers.

    .venv/bin/python benchmarks/images.py [--quick] [--workers 2] [--seconds 3]
    PYTHONPATH=$PWD /work/venv-peers/bin/python benchmarks/images.py   # with the peers

A folder of real photographs as JPEG files (random 256 x 256 crops of scikit-image's
sample photographs, quality 90, one folder per photograph as an ImageFolder tree has one
per class; 3,000 files, 600 with ``--quick``) becomes two acumen datasets with
``acumen convert`` (the recipe of docs/images.md):

- **JPEG bytes**: the ``bytes`` reader keeps each file's bytes; a DataLoader worker decodes
  them (Pillow) and augments (a random 224 x 224 crop and a random horizontal flip);
- **decoded arrays**: the ``image`` reader stores uint8 (256, 256, 3) arrays; a worker only
  augments.

Each is read by ``DataLoader(TorchDataset(ds, transform=...), batch_size=64,
sampler=ChunkShuffleSampler(ds), num_workers=W)``, timed over passes for ``--seconds`` from
its first batch (the best of ``--rounds``). Printed next to them, in the same run:

- **decode only (the limit)**: the same decode and augmentation of the same JPEG bytes held
  in memory, through the same DataLoader and workers: no storage at all;
- litdata and MosaicML streaming (where importable: /work/venv-peers) storing the same JPEG
  bytes, read through their loaders with the same decode in ``__getitem__``;
- the size of each store against the source folder.

Target (issue 17): JPEG bytes through acumen's loader >= 90% of the decode-only rate.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from loader import Repeat, Row, best
from PIL import Image
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchMapDataset

import acumen
from acumen.torch import ChunkShuffleSampler, TorchDataset

BATCH = 64
SIDE, CROP = 256, 224


# --- the source folder --------------------------------------------------------------------
def photographs() -> list[np.ndarray]:
    """scikit-image's colour sample photographs (shipped in its wheel: no download)."""
    from skimage import data

    names = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "motorcycle")
    found = []
    for name in names:
        with contextlib.suppress(Exception):  # one missing in this version: use the others
            image = getattr(data, name)()
            if image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) >= SIDE:
                found.append(image)
    if not found:
        raise SystemExit("no scikit-image sample photograph found")
    return found


def make_jpegs(folder: Path, n: int) -> int:
    """``n`` JPEG files under ``folder/<photo>/``; their total size in bytes."""
    rng = np.random.default_rng(0)
    photos = photographs()
    total = 0
    for i in range(n):
        k = i % len(photos)
        photo = photos[k]
        top = int(rng.integers(0, photo.shape[0] - SIDE + 1))
        left = int(rng.integers(0, photo.shape[1] - SIDE + 1))
        crop = photo[top : top + SIDE, left : left + SIDE]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        path = folder / f"photo{k}" / f"{i:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(crop)).save(path, quality=90)
        total += path.stat().st_size
    return total


def convert(source: Path, output: Path, reader: dict[str, Any]) -> int:
    """The recipe's conversion; the dataset's size in bytes."""
    acumen.convert(
        {
            "source": {"glob": "**/*.jpg", "root": str(source)},
            "reader": reader,
            "output": {"path": str(output), "index_format": "arrow"},
            "run": {"n_jobs": 2},
        },
        progress=False,
    )
    return sum(p.stat().st_size for p in output.rglob("*") if p.is_file())


# --- what a worker does to each sample ------------------------------------------------------
def augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random 224 x 224 crop and a random horizontal flip."""
    top, left = rng.integers(0, SIDE - CROP + 1, size=2)
    crop = image[top : top + CROP, left : left + CROP]
    return np.ascontiguousarray(crop[:, ::-1] if rng.random() < 0.5 else crop)


_rng = np.random.default_rng()


def decode_and_augment(jpeg: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(jpeg)) as image:
        return augment(np.asarray(image.convert("RGB")), _rng)


def from_bytes_sample(sample: dict[str, Any]) -> np.ndarray:
    """TorchDataset's sample of a ``bytes`` dataset: ``{"data": bytes}``."""
    return decode_and_augment(sample["data"])


def from_array_sample(sample: Any) -> np.ndarray:
    return augment(np.asarray(sample), _rng)


class InMemoryJpegs(TorchMapDataset):
    """The limit: the JPEG bytes already in memory, decoded and augmented."""

    def __init__(self, jpegs: list[bytes]) -> None:
        self.jpegs = jpegs

    def __len__(self) -> int:
        return len(self.jpegs)

    def __getitem__(self, i: int) -> np.ndarray:
        return decode_and_augment(self.jpegs[i])


def loader_of(data: Any, sampler: Any, workers: int) -> DataLoader:
    return DataLoader(
        data,
        batch_size=BATCH,
        sampler=sampler,
        shuffle=sampler is None,
        num_workers=workers,
        persistent_workers=workers > 0,
    )


# --- peers ---------------------------------------------------------------------------------
def litdata_row(root: Path, jpegs: list[bytes], workers: int, rounds: int, seconds: float) -> Row:
    import litdata

    path = root / "litdata"
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        litdata.optimize(
            fn=_litdata_item,
            inputs=jpegs,
            output_dir=str(path),
            chunk_bytes="64MB",
            num_workers=1,
            start_method="fork",
            verbose=False,
        )

    class Decoded(litdata.StreamingDataset):
        def __getitem__(self, index: Any) -> np.ndarray:
            return decode_and_augment(super().__getitem__(index)["jpeg"])

    def make() -> Any:
        ds = Decoded(str(path), shuffle=True)
        batches = litdata.StreamingDataLoader(
            ds, batch_size=BATCH, num_workers=workers, persistent_workers=workers > 0
        )
        return Repeat(lambda: iter(batches))

    return Row(
        f"litdata {litdata.__version__}: JPEG bytes, StreamingDataLoader",
        best(make, rounds, seconds),
        f"{_size(path) / 1e6:.1f} MB",
    )


def _litdata_item(jpeg: bytes) -> dict[str, bytes]:
    return {"jpeg": jpeg}


def mds_row(root: Path, jpegs: list[bytes], workers: int, rounds: int, seconds: float) -> Row:
    from compare import import_streaming  # torchvision stubbed where unusable

    streaming, note = import_streaming()
    from streaming.base.util import clean_stale_shared_memory

    clean_stale_shared_memory()
    path = root / "mds"
    with streaming.MDSWriter(out=str(path), columns={"jpeg": "bytes"}) as writer:
        for jpeg in jpegs:
            writer.write({"jpeg": jpeg})

    class Decoded(streaming.StreamingDataset):
        def __getitem__(self, index: Any) -> np.ndarray:
            return decode_and_augment(super().__getitem__(index)["jpeg"])

    opened: list[Any] = []  # kept alive: each holds shared memory for the folder

    def make() -> Any:
        ds = Decoded(local=str(path), batch_size=BATCH, shuffle=True)
        opened.append(ds)
        return _mds_loader(ds, workers)

    rate = best(make, rounds, seconds, whole_epochs=True)
    return Row(
        f"MosaicML streaming {streaming.__version__}: JPEG bytes, DataLoader",
        rate,
        f"{_size(path) / 1e6:.1f} MB {note}".strip(),
    )


def _mds_loader(ds: Any, workers: int) -> DataLoader:
    # a StreamingDataset is iterable: no sampler, its own shuffle
    return DataLoader(ds, batch_size=BATCH, num_workers=workers, persistent_workers=workers > 0)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# --- the run -------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="600 images, short passes")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (2)")
    parser.add_argument("--rounds", type=int, help="loaders per row, the best shown (3; 2)")
    parser.add_argument("--seconds", type=float, help="longest pass (3 s; 1 s quick)")
    args = parser.parse_args()
    n = 600 if args.quick else 3_000
    rounds = args.rounds or (2 if args.quick else 3)
    seconds = args.seconds or (1.0 if args.quick else 3.0)
    workers = args.workers
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder_bytes = make_jpegs(root / "jpegs", n)
        jpegs = [p.read_bytes() for p in sorted((root / "jpegs").rglob("*.jpg"))]
        bytes_size = convert(root / "jpegs", root / "as-bytes", {"name": "bytes"})
        arrays_size = convert(
            root / "jpegs", root / "as-arrays", {"name": "image", "configuration": {"mode": "RGB"}}
        )
        as_bytes = acumen.open(root / "as-bytes")
        as_arrays = acumen.open(root / "as-arrays")
        limit = best(lambda: loader_of(InMemoryJpegs(jpegs), None, workers), rounds, seconds)
        rows = [
            Row(
                "acumen: JPEG bytes (`bytes` reader), decoded in the workers",
                best(
                    lambda: loader_of(
                        TorchDataset(as_bytes, transform=from_bytes_sample),
                        ChunkShuffleSampler(as_bytes),
                        workers,
                    ),
                    rounds,
                    seconds,
                ),
                f"{bytes_size / 1e6:.1f} MB",
            ),
            Row(
                "acumen: decoded arrays (`image` reader), augmented in the workers",
                best(
                    lambda: loader_of(
                        TorchDataset(as_arrays, transform=from_array_sample),
                        ChunkShuffleSampler(as_arrays),
                        workers,
                    ),
                    rounds,
                    seconds,
                ),
                f"{arrays_size / 1e6:.1f} MB",
            ),
        ]
        for module, measure in (("litdata", litdata_row), ("streaming", mds_row)):
            if importlib.util.find_spec(module) is None:
                print(f"{module} is not installed here: its row skipped (see /work/venv-peers)")
                continue
            try:
                rows.append(measure(root, jpegs, workers, rounds, seconds))
            except Exception as error:  # a peer's failure must not hide acumen's figures
                rows.append(Row(f"{module}: failed", None, f"{type(error).__name__}: {error}"))
        as_bytes.close()
        as_arrays.close()
        shutil.rmtree(root / "jpegs", ignore_errors=True)
    print(
        f"\n### {n:,} JPEG photographs ({SIDE} x {SIDE}, quality 90), {folder_bytes / 1e6:.1f} MB "
        f"as files; batches of {BATCH}, {workers} DataLoader workers, random {CROP} crop + flip\n"
    )
    print("| path | images/s | x decode only | store size, note |")
    print("|---|---:|---:|---|")
    print(
        f"| decode only: JPEG bytes in memory (the limit) | {limit:,.0f} | 1.00 | "
        f"{folder_bytes / 1e6:.1f} MB (the folder) |"
    )
    for row in rows:
        if row.samples_per_s is None:
            print(f"| {row.name} | | | {row.note} |")
            continue
        print(
            f"| {row.name} | {row.samples_per_s:,.0f} | {row.samples_per_s / limit:.2f} | "
            f"{row.note} |"
        )
    print(
        f"\ntarget: JPEG bytes through acumen >= 0.90 x decode only; the bytes dataset is "
        f"{bytes_size / folder_bytes:.2f} x the folder's size"
    )


if __name__ == "__main__":
    main()
