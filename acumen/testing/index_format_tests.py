"""Conformance tests every index format must pass."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import acumen
from acumen import plugins
from acumen.abc.index_format import IndexFormat
from acumen.errors import CorruptDatasetError
from acumen.format import FieldColumns, IndexTable, MetadataCollector, ShapeColumn

TEXTS = [
    "plain",
    "",
    "comma, inside",
    'quote "',
    "new\nline",
    "cr\ronly",
    "NA",
    "nan",
    "ünï 日本 🎉",
    " pad ",
]


def make_table(n: int, shapes: list[tuple[int, ...]], with_metadata: bool = True) -> IndexTable:
    collector = MetadataCollector()
    rng = np.random.default_rng(n)
    for i in range(n):
        metadata: dict[str, Any] = {}
        if with_metadata:
            metadata = {
                "label": int(rng.integers(-(2**62), 2**62)),
                "score": [math.nan, math.inf, -0.0, 0.1, 1e-300][i % 5] if i % 3 else i / 7,
                "flag": bool(i % 2),
                "text": TEXTS[i % len(TEXTS)],
            }
        collector.add(metadata, i)
    chunk_ids = np.repeat(np.arange((n + 9) // 10), 10)[:n]
    sizes = rng.integers(0, 10_000, n)
    offsets = np.zeros(n, dtype=np.int64)
    for chunk in np.unique(chunk_ids):
        rows = chunk_ids == chunk
        offsets[rows] = np.concatenate([[0], np.cumsum(sizes[rows])[:-1]])
    return IndexTable(
        chunk_names=[f"chunks/chunk_{c}.chnk" for c in range(int(chunk_ids.max(initial=-1)) + 1)],
        chunk_ids=chunk_ids,
        offsets=offsets,
        sizes=sizes,
        shapes=ShapeColumn.from_tuples(shapes),
        metadata=collector.finish(),
    )


def make_fields_table(n: int) -> IndexTable:
    """A dataset with fields: record sizes are the sum of per-field sizes and shapes."""
    base = make_table(n, [(1,)] * n)
    rng = np.random.default_rng(n + 1)
    image_sizes = rng.integers(0, 5000, n)
    raw_sizes = rng.integers(0, 300, n)
    fields = {
        "image": FieldColumns(
            image_sizes, ShapeColumn.from_tuples([(4 + i % 3, 5, 3) for i in range(n)])
        ),
        "raw.bytes": FieldColumns(
            raw_sizes, ShapeColumn.from_tuples([(int(k),) for k in raw_sizes])
        ),
    }
    return IndexTable(
        chunk_names=base.chunk_names,
        chunk_ids=base.chunk_ids,
        offsets=base.offsets,
        sizes=image_sizes + raw_sizes,
        shapes=None,
        metadata=base.metadata,
        fields=fields,
    )


def tables() -> dict[str, IndexTable]:
    return {
        "fields": make_fields_table(14),
        "fixed": make_table(25, [(4, 3)] * 25),
        "same ndim": make_table(12, [(i, 2) for i in range(12)]),
        "ragged": make_table(
            9, [(), (0,), (5,), (2, 3), (1, 2, 3), (7,), (0, 0), (1,), (3, 1, 1, 2)]
        ),
        "no metadata": make_table(5, [(2,)] * 5, with_metadata=False),
        "empty": make_table(0, [], with_metadata=False),
    }


class IndexFormatTests:
    """Subclass as ``class TestMyIndex(IndexFormatTests)`` and set :attr:`index_format_class`."""

    index_format_class: ClassVar[type[IndexFormat]]
    configurations: ClassVar[tuple[dict[str, Any], ...]] = ({},)
    #: Whether the plugin is expected among installed plugins (its entry point is active).
    registered: ClassVar[bool] = True

    def formats(self) -> list[IndexFormat]:
        return [self.index_format_class(**c) for c in self.configurations]

    def test_name_and_filename(self) -> None:
        assert isinstance(self.index_format_class.name, str) and self.index_format_class.name
        filename = self.index_format_class.filename
        assert isinstance(filename, str) and "/" not in filename and filename != "manifest.json"

    def test_round_trip_with_declared_columns(self, tmp_path: Path) -> None:
        for n, index_format in enumerate(self.formats()):
            for name, table in tables().items():
                path = tmp_path / f"{n}-{name.replace(' ', '_')}-{index_format.filename}"
                index_format.write(table, path)
                again = index_format.read(path, table.metadata.specs)
                assert again == table, name
                assert again.chunk_ids.dtype == np.int32 and again.offsets.dtype == np.int64

    def test_missing_file_is_corrupt(self, tmp_path: Path) -> None:
        for index_format in self.formats():
            path = tmp_path / index_format.filename
            with pytest.raises(CorruptDatasetError, match=str(path).replace("\\", ".")):
                index_format.read(path, [])

    def test_garbage_file_is_corrupt_and_names_it(self, tmp_path: Path) -> None:
        path = tmp_path / "garbage"
        path.write_bytes(bytes(range(256)) * 8)
        for index_format in self.formats():
            with pytest.raises(CorruptDatasetError, match="garbage"):
                index_format.read(path, [])

    def test_columns_that_differ_from_the_manifest_are_corrupt(self, tmp_path: Path) -> None:
        table = tables()["fixed"]
        for index_format in self.formats():
            path = tmp_path / index_format.filename
            index_format.write(table, path)
            with pytest.raises(CorruptDatasetError, match="differ"):
                index_format.read(path, table.metadata.specs[:-1])

    def test_config_round_trips_and_pickles(self) -> None:
        for index_format in self.formats():
            config = json.loads(json.dumps(index_format.get_config()))
            assert self.index_format_class.from_config(config) == index_format
            assert pickle.loads(pickle.dumps(index_format)) == index_format

    def test_registered_and_round_trips_in_a_dataset(self, tmp_path: Path) -> None:
        if not self.registered:
            pytest.skip("not expected among installed plugins")
        assert plugins.plugin_class("index_format", self.index_format_class.name) is (
            self.index_format_class
        )
        arrays = [np.arange(i * 3, dtype=np.int16).reshape(i, 3) for i in range(6)]
        for n, index_format in enumerate(self.formats()):
            path = tmp_path / f"dataset{n}"
            with acumen.Writer(path, index_format=index_format, durable=False) as writer:
                for i, array in enumerate(arrays):
                    writer.add(array, i=i, text=TEXTS[i])
            assert (path / index_format.filename).is_file()
            with acumen.open(path) as ds:
                for i, array in enumerate(arrays):
                    got, metadata = ds[i]
                    np.testing.assert_array_equal(got, array)
                    assert metadata == {"i": i, "text": TEXTS[i]}
