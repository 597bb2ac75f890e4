"""Write the golden datasets of ``tests/golden`` (run once, by hand; never by the tests).

    PYTHONPATH=. python tests/golden/make_golden.py [NAME ...]

The golden datasets were written by acumen as it was before the issue-13 refactor (the
commit is in ``tests/golden/README.md``), with its public API only. They are checked in
and stay forever, like the original acumenindexer fixtures: whatever the format or the
code becomes, acumen must keep reading them byte for byte (``tests/test_golden.py``).

NEVER REGENERATE THEM. Re-running this script over an existing dataset is refused. A
dataset that no longer reads is a bug in the reader, not in the dataset. To cover
something new, add a new entry to ``DATASETS`` (a new name) and write only it, by naming
it on the command line; then add its name to ``GOLDEN_NAMES`` in ``tests/test_golden.py``
and a line to the README.

Beside each dataset ``NAME/`` the script stores what it must read back, in a form that does
not depend on acumen: ``NAME.expected.npz`` (one array per sample, or per sample and field,
keys ``"<i>"`` or ``"<i>/<field>"``; a bytes field as a uint8 array) and
``NAME.expected.json`` (the number of samples, codec and index format names, fields,
dtypes, shapes and each sample's metadata).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

import acumen

HERE = Path(__file__).resolve().parent
CHUNK_SIZE = 400  # small: every dataset spans several chunk files

CODECS = ["raw", "gzip", "zstd", "lz4"]
INDEX_FORMATS = ["csv", "parquet", "arrow"]

# Text that is easy to get wrong: empty, non-ASCII, CSV quoting, pandas' NA spellings.
TEXTS = [
    "",
    "plain",
    "café",
    "日本語テキスト",
    "emoji 🎉",
    "a,b",
    'say "hi"',
    "two\nlines",
    " padded ",
    "NA",
    "nan",
    "None",
    "1.5",
    "True",
    "-",
]
FLOATS = [0.0, -0.0, 0.1, 1.5, -2.25, 1e300, 5e-324, 123456789.125, float("inf"), float("nan")]
INTS = [0, 1, -1, 7, 2**31, -(2**63), 2**63 - 1, 1000003]

# (dtype, shape or None for varying shapes) per (codec, index format), in grid order.
ARRAY_KINDS = [
    ("uint8", (5, 7)),
    ("float32", None),
    ("int16", (3, 4, 2)),
    ("float64", None),
    ("uint16", (11,)),
    ("int32", None),
    ("float16", (6, 6)),
    ("int64", None),
    ("int8", (2, 3, 4)),
    ("bool", None),
    ("uint32", (9, 2)),
    ("float32", ()),  # 0-d samples
]


def metadata_for(rng: np.random.Generator, i: int) -> dict[str, Any]:
    """One sample's metadata: a column of each type (int, float, bool, str)."""
    return {
        "label": int(i % 5),
        "big": INTS[i % len(INTS)],
        "score": FLOATS[i % len(FLOATS)],
        "weight": float(np.round(rng.random(), 6)),
        "train": bool(i % 3 != 0),
        "name": TEXTS[i % len(TEXTS)],
    }


def random_array(rng: np.random.Generator, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    kind = np.dtype(dtype)
    if kind == np.bool_:
        return rng.random(shape) > 0.5
    if kind.kind in "iu":
        info = np.iinfo(kind)
        return rng.integers(info.min, info.max, size=shape, dtype=kind, endpoint=True)
    return np.asarray(rng.standard_normal(shape) * 100).astype(kind)


def varying_shape(rng: np.random.Generator, i: int) -> tuple[int, ...]:
    if i == 3:
        return (0, 3)  # an empty sample
    if i % 7 == 5:
        return (int(rng.integers(1, 9)),)  # another number of dimensions
    return (int(rng.integers(1, 6)), int(rng.integers(1, 6)))


def array_samples(seed: int, dtype: str, shape: tuple[int, ...] | None, n: int) -> list:
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        sample_shape = shape if shape is not None else varying_shape(rng, i)
        samples.append((random_array(rng, dtype, sample_shape), metadata_for(rng, i)))
    return samples


def write_with_writer(path: Path, samples: list, **writer_options: Any) -> None:
    with acumen.Writer(path, chunk_size_bytes=CHUNK_SIZE, **writer_options) as writer:
        for sample, metadata in samples:
            writer.add(sample, **metadata)


# --- the datasets -------------------------------------------------------------------------


def grid() -> Iterator[tuple[str, Callable[[Path], dict]]]:
    """Every codec with every index format: one-array datasets."""
    n = 0
    for codec in CODECS:
        for index_format in INDEX_FORMATS:
            dtype, shape = ARRAY_KINDS[n]
            seed = 1000 + n
            kind = "fixed" if shape is not None else "varying"
            name = f"single_{codec}_{index_format}_{dtype}_{kind}"

            def make(path: Path, codec=codec, index_format=index_format, dtype=dtype,
                     shape=shape, seed=seed) -> dict:  # fmt: skip
                samples = array_samples(seed, dtype, shape, 36)
                write_with_writer(path, samples, codec=codec, index_format=index_format)
                return expected(samples, codec=codec, index_format=index_format)

            n += 1
            yield name, make


def multi_field(path: Path) -> dict:
    """Array fields with their own dtypes and codecs, and a bytes field."""
    rng = np.random.default_rng(2000)
    samples = []
    for i in range(30):
        h, w = int(rng.integers(2, 7)), int(rng.integers(2, 7))
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        record = {
            "image": image,
            "mask": image[..., 0] > 128,
            "points": (rng.standard_normal((4, 2)) * 10).astype(np.float32),
            "blob": bytes(rng.integers(0, 256, int(rng.integers(0, 40)), dtype=np.uint8)),
        }
        samples.append((record, metadata_for(rng, i)))
    fields = {
        "image": {"dtype": "uint8", "codec": "lz4"},
        "mask": "bool",  # the writer's codec (zstd)
        "points": {"dtype": "float32", "codec": {"name": "gzip", "configuration": {"level": 9}}},
        "blob": {"type": "bytes", "codec": "raw"},
    }
    write_with_writer(path, samples, codec="zstd", index_format="parquet", fields=fields)
    return expected(
        samples,
        codec="zstd",
        index_format="parquet",
        fields={"image": "lz4", "mask": "zstd", "points": "gzip", "blob": "raw"},
    )


def sample_checksums(path: Path) -> dict:
    """``checksums="sample"``: each sample's xxh3-64 in the index (``ai:xxh3_64``)."""
    samples = array_samples(3000, "float32", None, 36)
    write_with_writer(path, samples, codec="zstd", index_format="csv", checksums="sample")
    return expected(samples, codec="zstd", index_format="csv", sample_checksums=True)


def sample_checksums_fields(path: Path) -> dict:
    """Per-sample checksums over multi-field records, arrow index."""
    rng = np.random.default_rng(3100)
    samples = []
    for i in range(24):
        record = {
            "x": rng.integers(-1000, 1000, (int(rng.integers(1, 6)),), dtype=np.int16),
            "raw": bytes(rng.integers(0, 256, int(rng.integers(1, 30)), dtype=np.uint8)),
        }
        samples.append((record, metadata_for(rng, i)))
    write_with_writer(
        path, samples, codec="lz4", index_format="arrow", checksums="sample",
        fields={"x": "int16", "raw": "bytes"},
    )  # fmt: skip
    return expected(
        samples,
        codec="lz4",
        index_format="arrow",
        fields={"x": "lz4", "raw": "lz4"},
        sample_checksums=True,
    )


def zstd_dictionary(path: Path) -> dict:
    """A zstd dictionary trained on the first samples, stored in ``codecs/``."""
    rng = np.random.default_rng(4000)
    base = np.round(rng.normal(size=(17, 2)), 2).astype(np.float32)
    samples = [
        (base + np.float32(np.round(rng.normal(scale=0.05), 2)), metadata_for(rng, i))
        for i in range(80)
    ]
    codec = {"name": "zstd", "configuration": {"dictionary_size": 1024, "train_samples": 60}}
    write_with_writer(path, samples, codec=codec, index_format="parquet")
    dictionaries = list((path / "codecs").glob("*.dict"))
    assert dictionaries, "no dictionary was trained: the dataset would not test one"
    return expected(samples, codec="zstd", index_format="parquet", zstd_dictionary=True)


def original_split(path: Path, use_gzip: bool) -> dict:
    """The original's entry point and defaults: ``split_into_chunks`` to float16, csv."""
    rng = np.random.default_rng(5000 + use_gzip)
    samples = []
    for i in range(32):
        shape = (int(rng.integers(1, 5)), 3) if i % 4 else (4, 3)
        array = np.round(rng.standard_normal(shape) * 50, 1)  # float64, cast to float16
        metadata = {"label": i % 4, "subject": TEXTS[i % len(TEXTS)], "score": i / 8}
        samples.append((array, metadata))
    acumen.split_into_chunks(samples, path, chunk_size_bytes=200, use_gzip=use_gzip)
    stored = [(array.astype(np.float16), metadata) for array, metadata in samples]
    return expected(stored, codec="gzip" if use_gzip else "raw", index_format="csv")


DATASETS: dict[str, Callable[[Path], dict]] = {
    **dict(grid()),
    "fields_zstd_lz4_gzip_raw_bytes_parquet": multi_field,
    "checksums_sample_zstd_csv": sample_checksums,
    "checksums_sample_fields_lz4_arrow": sample_checksums_fields,
    "zstd_dictionary_parquet": zstd_dictionary,
    "original_split_raw_csv": lambda path: original_split(path, use_gzip=False),
    "original_split_gzip_csv": lambda path: original_split(path, use_gzip=True),
}


# --- what must be read back ---------------------------------------------------------------


def expected(
    samples: list,
    *,
    codec: str,
    index_format: str,
    fields: dict[str, str] | None = None,
    sample_checksums: bool = False,
    zstd_dictionary: bool = False,
) -> dict:
    arrays: dict[str, np.ndarray] = {}
    records = []
    for i, (sample, metadata) in enumerate(samples):
        if fields is None:
            array = np.asarray(sample)  # (not ascontiguousarray: it makes 0-d arrays 1-d)
            assert array.flags.c_contiguous
            arrays[str(i)] = array
            record: dict[str, Any] = {"dtype": array.dtype.str, "shape": list(array.shape)}
        else:
            record = {"fields": {}}
            for name in fields:
                value = sample[name]
                is_bytes = isinstance(value, bytes)
                array = np.frombuffer(value, np.uint8) if is_bytes else np.asarray(value)
                arrays[f"{i}/{name}"] = array
                record["fields"][name] = {
                    "type": "bytes" if is_bytes else "array",
                    "dtype": array.dtype.str,
                    "shape": list(array.shape),
                }
        record["metadata"] = metadata
        records.append(record)
    return {
        "arrays": arrays,
        "json": {
            "n_samples": len(samples),
            "codec": codec,
            "index_format": index_format,
            "fields": list(fields) if fields is not None else None,
            "field_codecs": fields,
            "sample_checksums": sample_checksums,
            "zstd_dictionary": zstd_dictionary,
            "samples": records,
        },
    }


def main(names: list[str]) -> None:
    for name in names or list(DATASETS):
        path = HERE / name
        outputs = [path, HERE / f"{name}.expected.npz", HERE / f"{name}.expected.json"]
        if any(p.exists() for p in outputs):
            if names:
                sys.exit(f"{name} exists: golden datasets are never regenerated")
            continue  # a full run only adds what is missing
        result = DATASETS[name](path)
        np.savez(outputs[1], **result["arrays"])
        outputs[2].write_text(
            json.dumps(result["json"], indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        print("wrote", name)


if __name__ == "__main__":
    main(sys.argv[1:])
