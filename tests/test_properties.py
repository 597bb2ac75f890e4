"""Property tests: any arrays and metadata written come back exactly, through every codec
and index format, whatever the chunk size."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import acumen
from tests.conftest import CODECS, INDEX_FORMATS, STORAGES

# ACUMEN_HYPOTHESIS_EXAMPLES=2000 for a long hunt; the default keeps the suite quick.
SETTINGS = settings(
    max_examples=int(os.environ.get("ACUMEN_HYPOTHESIS_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

DTYPES = st.one_of(
    hnp.integer_dtypes(endianness="?"),
    hnp.unsigned_integer_dtypes(endianness="?"),
    hnp.floating_dtypes(endianness="?", sizes=(16, 32, 64)),
    hnp.boolean_dtypes(),
    hnp.complex_number_dtypes(endianness="?"),
)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=3)

# Characters a CSV writer or reader could trip on, mixed with any encodable character.
SPECIAL_CHARS = ",\"'\n\r\t #;\\\x00\ufeffé日🎉"
SPECIAL_TEXTS = [
    "",
    "\r\n",
    "\r",
    "NA",
    "nan",
    "NaN",
    "None",
    "null",
    "N/A",
    "-",
    "1",
    "1.5",
    "True",
    "inf",
]
TEXT = st.one_of(
    st.sampled_from(SPECIAL_TEXTS),
    st.text(
        st.one_of(st.sampled_from(SPECIAL_CHARS), st.characters(codec="utf-8")),
        max_size=10,
    ),
)
COLUMN_VALUES = {
    "text": TEXT,
    "integer": st.integers(-(2**63), 2**63 - 1),
    "real": st.floats(allow_nan=True, allow_infinity=True),
    "flag": st.booleans(),
    "other text": TEXT,
}


@st.composite
def samples(draw: st.DrawFn) -> tuple[np.dtype, list[np.ndarray], list[dict[str, Any]], int]:
    """(dtype, arrays, metadata dicts with one key set, chunk_size_bytes)."""
    dtype = draw(DTYPES)
    n = draw(st.integers(1, 6))
    fixed_shape = draw(st.one_of(st.none(), SHAPES))
    arrays = [
        draw(hnp.arrays(dtype, fixed_shape if fixed_shape is not None else draw(SHAPES)))
        for _ in range(n)
    ]
    keys = draw(st.lists(st.sampled_from(list(COLUMN_VALUES)), unique=True, max_size=5))
    metas = [{key: draw(COLUMN_VALUES[key]) for key in keys} for _ in range(n)]
    largest = max(a.nbytes for a in arrays)
    chunk_size = draw(
        st.one_of(st.integers(1, max(1, largest // 2)), st.integers(largest + 1, 4 * largest + 64))
    )
    return dtype, arrays, metas, chunk_size


def assert_same_value(got: Any, want: Any) -> None:
    assert type(got) is type(want), (got, type(got), want, type(want))
    if isinstance(want, float) and math.isnan(want):
        assert math.isnan(got)
    elif isinstance(want, float):
        assert got == want and math.copysign(1.0, got) == math.copysign(1.0, want), (got, want)
    else:
        assert got == want, (got, want)


def check_dataset(
    path: Path, storage: str, arrays: list[np.ndarray], metas: list[dict]
) -> tuple[list[str], list[int]]:
    stored = np.dtype(arrays[0].dtype).newbyteorder("<")
    with acumen.open(path, storage=storage) as ds:
        assert len(ds) == len(arrays)
        assert ds.dtype == stored
        shapes = {a.shape for a in arrays}
        assert ds.shape == (arrays[0].shape if len(shapes) == 1 else None)
        assert ds.columns == list(metas[0])
        for i, (array, meta) in enumerate(zip(arrays, metas, strict=True)):
            got_array, got_meta = ds[i]
            assert got_array.dtype == stored
            assert got_array.shape == array.shape
            assert got_array.tobytes() == array.astype(stored).tobytes()
            assert np.array_equal(got_array, array, equal_nan=stored.kind in "fc")
            assert list(got_meta) == list(meta)
            for key, value in meta.items():
                assert_same_value(got_meta[key], value)
        frame = ds.index
        names = list(frame["ai:chunk_name"])
        sizes = [int(s) for s in frame["ai:size_bytes"]]
        assert list(frame["ai:shape"]) == [str(a.shape) for a in arrays]
    return names, sizes


def check_chunks(path: Path, names: list[str], sizes: list[int], limit: int) -> None:
    """The original's rollover rule, and a manifest that matches the files."""
    number, current = 0, 0
    for name, size in zip(names, sizes, strict=True):
        if current + size > limit:
            number, current = number + 1, 0
        assert name == f"chunks/chunk_{number}.chnk"
        current += size
    manifest = acumen.open(path).manifest
    assert manifest is not None
    assert sum(c.n_samples for c in manifest.chunks) == len(names)
    for chunk in manifest.chunks:
        assert (path / chunk.file).stat().st_size == chunk.size_bytes
        assert chunk.size_bytes <= limit or chunk.n_samples == 1
    on_disk = sorted(p.relative_to(path).as_posix() for p in (path / "chunks").glob("*"))
    assert on_disk == sorted(set(names))


@pytest.mark.parametrize("index_format", INDEX_FORMATS)
@pytest.mark.parametrize("codec", CODECS)
@SETTINGS
@given(data=samples(), storage=st.sampled_from(STORAGES))
def test_written_samples_read_back_exactly(codec, index_format, data, storage):
    _, arrays, metas, chunk_size = data
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ds"
        with acumen.Writer(
            path,
            codec=codec,
            index_format=index_format,
            chunk_size_bytes=chunk_size,
            durable=False,
        ) as writer:
            for array, meta in zip(arrays, metas, strict=True):
                writer.add(array, **meta)
        names, sizes = check_dataset(path, storage, arrays, metas)
        check_chunks(path, names, sizes, chunk_size)


@SETTINGS
@given(
    text=TEXT,
    real=st.floats(allow_nan=True, allow_infinity=True),
    integer=st.integers(-(2**63), 2**63 - 1),
    index_format=st.sampled_from(INDEX_FORMATS),
)
def test_metadata_values_alone(text, real, integer, index_format):
    """One sample per value, so a failure names the exact value at fault."""
    metas = [{"t": text, "r": real, "i": integer, "b": bool(integer % 2)}]
    arrays = [np.zeros(1, dtype=np.uint8)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ds"
        with acumen.Writer(path, index_format=index_format, durable=False) as writer:
            writer.add(arrays[0], **metas[0])
        check_dataset(path, "seek", arrays, metas)


SAFE_TARGETS = ["<f8", "<c16", "<i8", "<f4"]


@SETTINGS
@given(
    source=st.one_of(
        hnp.integer_dtypes(endianness="?", sizes=(8, 16)),
        hnp.unsigned_integer_dtypes(endianness="?", sizes=(8, 16)),
        hnp.floating_dtypes(endianness="?", sizes=(16,)),
        hnp.boolean_dtypes(),
    ),
    target=st.sampled_from(SAFE_TARGETS),
    shape=SHAPES,
    codec=st.sampled_from(CODECS),
    index_format=st.sampled_from(INDEX_FORMATS),
    data=st.data(),
)
def test_explicit_dtype_cast(source, target, shape, codec, index_format, data):
    assume(np.can_cast(source, target, "safe"))
    array = data.draw(hnp.arrays(source, shape))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ds"
        with acumen.Writer(
            path, codec=codec, index_format=index_format, dtype=target, durable=False
        ) as writer:
            writer.add(array)
        with acumen.open(path) as ds:
            got = ds.read(0)
            assert got.dtype == np.dtype(target)
            assert got.shape == array.shape
            assert got.tobytes() == array.astype(target).tobytes()
