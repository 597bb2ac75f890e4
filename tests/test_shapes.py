"""Compact shape columns: shared dimensions kept once, varying axes in narrow types, sizes
as int32 when they fit; the same shapes back through every index format."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import acumen
from acumen import plugins
from acumen.errors import CorruptDatasetError
from acumen.format import IndexTable, narrow_sizes
from acumen.format.metadata import MetadataTable
from acumen.format.shapes import ShapeColumn, narrow_dtype
from acumen.read.index_checks import ChunkFiles, IndexChecks, PayloadRule, _payload_rows
from tests.conftest import INDEX_FORMATS
from tests.dataset_edits import reseal

SETTINGS = settings(
    max_examples=int(os.environ.get("ACUMEN_HYPOTHESIS_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
BOUNDARIES = [0, 1, 255, 256, 65535, 65536, 2**31 - 1, 2**31, 2**40]
DIMENSION = st.one_of(st.integers(0, 70), st.sampled_from(BOUNDARIES))


@st.composite
def shape_lists(draw: st.DrawFn) -> list[tuple[int, ...]]:
    """Fixed, same-ndim (some axes shared) or ragged shapes, zero-length dims included."""
    n = draw(st.integers(0, 12))
    kind = draw(st.sampled_from(["fixed", "same ndim", "ragged"]))
    if kind == "ragged":
        return [tuple(draw(st.lists(DIMENSION, max_size=4))) for _ in range(n)]
    ndim = draw(st.integers(0 if kind == "fixed" else 1, 4))
    template = [draw(DIMENSION) for _ in range(ndim)]
    varying = draw(st.sets(st.integers(0, ndim - 1))) if kind == "same ndim" and ndim else set()
    return [
        tuple(draw(DIMENSION) if j in varying else d for j, d in enumerate(template))
        for _ in range(n)
    ]


@SETTINGS
@given(shapes=shape_lists())
def test_every_shape_comes_back(shapes: list[tuple[int, ...]]) -> None:
    column = ShapeColumn.from_tuples(shapes)
    assert [column[i] for i in range(len(shapes))] == shapes
    assert [type(d) for s in (column[i] for i in range(len(shapes))) for d in s] == [
        int for s in shapes for d in s
    ]
    assert column == ShapeColumn.from_tuples(shapes)
    offsets, flat = column.to_ragged()
    assert ShapeColumn.from_ragged(offsets, flat) == column
    assert column.to_texts() == [str(s) for s in shapes]
    assert ShapeColumn.parse_texts(column.to_texts()) == column if shapes else True
    indices = np.arange(len(shapes))[::-1]
    assert [column.take(indices)[i] for i in range(len(shapes))] == shapes[::-1]
    exact = [int(np.prod(s, dtype=object)) for s in shapes]
    too_many = [count > 2**62 for count in exact]
    for start, end in [(0, len(shapes)), (len(shapes) // 2, len(shapes))]:
        counts, impossible = column.counts_of(start, end)
        if any(too_many[start:end]):
            assert impossible.tolist() == too_many[start:end]
        else:
            assert impossible is None
        expected = [0 if big else count for count, big in zip(exact, too_many, strict=True)]
        assert counts.tolist() == expected[start:end]


@SETTINGS
@given(shapes=shape_lists(), data=st.data())
def test_every_index_format_round_trips_compact_shapes(
    shapes: list[tuple[int, ...]], data: st.DataObject
) -> None:
    n = len(shapes)
    sizes = np.array(data.draw(st.lists(st.sampled_from(BOUNDARIES), min_size=n, max_size=n)))
    table = IndexTable(
        chunk_names=["chunks/chunk_0.chnk"] if n else [],
        chunk_ids=np.zeros(n, np.int32),
        offsets=np.arange(n, dtype=np.int64) * 7,
        sizes=sizes.astype(np.int64),
        shapes=ShapeColumn.from_tuples(shapes),
        metadata=MetadataTable.empty(n),
    )
    folder = Path(tempfile.mkdtemp())
    try:
        for name in INDEX_FORMATS:
            index_format = plugins.index_format(name)
            path = folder / index_format.filename
            index_format.write(table, path)
            again = index_format.read(path, [])
            assert again == table, name
            assert [again.shapes[i] for i in range(n)] == shapes, name
            assert again.sizes.tolist() == sizes.tolist()
            if name != "arrow":  # arrow keeps the mapped int64 column in place
                fits = not n or sizes.max() < 2**31
                assert again.sizes.dtype == (np.int32 if fits else np.int64)
    finally:
        shutil.rmtree(folder)


def test_varying_axes_are_kept_alone_in_the_narrowest_type() -> None:
    column = ShapeColumn.from_tuples([(length, 17, 2) for length in (16, 40, 63)])
    assert column.nbytes() == 3  # one uint8 per sample
    assert column[1] == (40, 17, 2) and column.fixed is None and column.ndim == 3
    assert narrow_dtype(255) == np.uint8 and narrow_dtype(256) == np.uint16
    assert narrow_dtype(2**16) == np.int32 and narrow_dtype(2**31) == np.int64
    wide = ShapeColumn.from_tuples([(2**31, 3), (1, 3)])
    assert wide.nbytes() == 16 and wide[0] == (2**31, 3)
    assert narrow_sizes(np.array([0, 2**31 - 1])).dtype == np.int32
    assert narrow_sizes(np.array([0, 2**31])).dtype == np.int64


def test_a_shared_zero_dimension_and_mixed_ndim() -> None:
    column = ShapeColumn.from_tuples([(0, 5), (0, 9)])
    assert column.counts_of(0, 2)[0].tolist() == [0, 0]
    ragged = ShapeColumn.from_tuples([(), (0,), (2, 3)])
    assert [ragged[i] for i in range(3)] == [(), (0,), (2, 3)]
    assert ragged.counts_of(0, 3)[0].tolist() == [1, 0, 6]
    assert ragged.counts_of(1, 3)[0].tolist() == [0, 6]


def test_negative_dimensions_from_a_file_are_impossible_shapes() -> None:
    """Dimensions an index format hands over as they are (ragged lists) are checked by
    block: a negative one, or a product past 2**62, marks that sample alone."""
    dims = np.array([[3, 2], [-1, 2], [2**40, 2**40], [5, 2]], dtype=np.int64)
    ragged = ShapeColumn(4, dims=dims.reshape(-1), offsets=np.arange(0, 9, 2))
    counts, impossible = ragged.counts_of(0, 4)
    assert impossible.tolist() == [False, True, True, False]
    assert counts.tolist() == [6, 0, 0, 10]
    assert ragged.counts_of(3, 4)[0].tolist() == [10] and ragged.counts_of(3, 4)[1] is None


def _wrong_sizes(sizes: np.ndarray, shapes: ShapeColumn, itemsize: int) -> list[int]:
    wrong = _payload_rows(PayloadRule("", sizes, shapes, itemsize), 0, len(sizes))
    return [] if wrong is None else np.flatnonzero(wrong).tolist()


def test_size_checks_multiply_in_int64() -> None:
    """uint8 dimensions times an itemsize must not wrap around uint8, and elements x
    itemsize past int64 must not wrap around to a size that matches."""
    column = ShapeColumn.from_tuples([(200, 16), (11, 16)])
    sizes = np.array([200 * 16 * 8, 11 * 16 * 8], dtype=np.int32)
    assert _wrong_sizes(sizes, column, 8) == []
    sizes[1] += 1
    assert _wrong_sizes(sizes, column, 8) == [1]
    huge = ShapeColumn.from_tuples([(2**61, 1), (1, 1)])
    assert _wrong_sizes(np.array([0, 8]), huge, 8) == [0]


def _checks(offsets: list[int], sizes: list[int], file_size: int) -> IndexChecks:
    n = len(offsets)
    table = IndexTable(
        ["chunks/chunk_0.chnk"],
        np.zeros(n, np.int32),
        np.array(offsets, dtype=np.int64),
        np.array(sizes, dtype=np.int32),
        ShapeColumn(n, fixed=(1,)),
        MetadataTable.empty(n),
    )
    files = ChunkFiles(Path("index.csv"), [Path("chunk_0.chnk")], np.array([file_size]))
    return IndexChecks(files, table, [], fields=False)


def test_ranges_past_int64_are_found() -> None:
    """offset + size beyond 2**63 wraps negative; the check must not be fooled."""
    checks = _checks([0, 2**63 - 1, 0], [100, 10, 100], 100)
    checks.check(0)
    checks.check(2)  # the damaged row's neighbours still read
    with pytest.raises(CorruptDatasetError, match="sample 1 needs bytes 9223372036854775807"):
        checks.check(1)
    assert checks.problems() == [
        "chunk_0.chnk: sample 1 needs bytes 9223372036854775807..9223372036854775817 but the "
        "file has 100: truncated chunk or wrong index"
    ]
    with pytest.raises(CorruptDatasetError, match="sample 1 needs"):
        checks.check_positions(np.array([0, 2, 1, 0]))
    checks.check_positions(np.array([2, 0]))
    assert checks.check_range(0, 1) and not checks.check_range(0, 3)


@pytest.mark.parametrize("index_format", INDEX_FORMATS)
def test_variable_shapes_open_compact_and_checked(tmp_path: Path, index_format: str) -> None:
    arrays = [np.full((length, 17, 2), length, np.float32) for length in (16, 300, 63)]
    root = tmp_path / "ds"
    with acumen.Writer(root, index_format=index_format, durable=False) as writer:
        for array in arrays:
            writer.add(array)
    with acumen.open(root) as ds:
        assert [ds.read(i).shape for i in range(3)] == [a.shape for a in arrays]
        if index_format != "arrow":
            assert ds.table.sizes.dtype == np.int32 and ds.table.shapes.nbytes() == 6
    # A size that disagrees with its shape is still refused, naming the file and sample.
    table = plugins.index_format(index_format).read(
        root / plugins.index_format(index_format).filename, []
    )
    sizes = table.sizes.astype(np.int64)
    sizes[2] = 4
    broken = IndexTable(
        table.chunk_names, table.chunk_ids, table.offsets, sizes, table.shapes, table.metadata
    )
    path = root / plugins.index_format(index_format).filename
    plugins.index_format(index_format).write(broken, tmp_path / "new-index")
    os.replace(tmp_path / "new-index", path)  # the old file may still be mapped by ``table``
    reseal(root)  # a hostile index with valid checksums: the row checks refuse it
    with pytest.raises(CorruptDatasetError, match=r"sample 2 has 4 bytes, but shape \(63, 17"):
        acumen.open(root)
