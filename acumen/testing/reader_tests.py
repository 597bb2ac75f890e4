"""Conformance tests every reader (``acumen convert``'s ``[reader]``) must pass.

A reader turns one item of a conversion's source (usually a file's path) into
``(sample, metadata)``. Conversions build it from its configuration in each worker process
(a local pool or Dask), so the kit checks what that needs: exact reads, metadata of the
allowed types, a configuration that round-trips through JSON and rebuilds the same reader in
a fresh process, refusals that are exceptions, and, for an installed reader, a real
``acumen.convert`` whose dataset reads back what the reader read.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import acumen
from acumen import plugins
from acumen.abc.reader import Reader

#: One item for the kit: (item, the sample it reads as, the metadata it reads as).
ReaderCase = tuple[Any, Any, dict[str, Any]]

_METADATA_TYPES = (bool, int, float, str, np.bool_, np.integer, np.floating, np.str_)
_BUFFERS = (bytes, bytearray, memoryview)


def listed_items(items: list[Any]) -> Iterator[Any]:
    """A ``callable`` conversion source that yields ``items`` (the kit's conversions)."""
    yield from items


def _read_all(reader_class: type[Reader], jobs: list[tuple[dict, list[Any]]]) -> list[list]:
    """Rebuild each reader from its config and read its items (run in a fresh process)."""
    return [
        [reader_class.from_config(config).read(item) for item in items] for config, items in jobs
    ]


def assert_same_sample(expected: Any, got: Any, where: str = "") -> None:
    """The same kind of sample: fields by name, bytes equal, arrays of equal dtype (byte
    order aside), shape and values (bit for bit)."""
    if isinstance(expected, Mapping):
        assert isinstance(got, Mapping), f"{where}: a dict of fields expected, got {type(got)}"
        assert list(got) == list(expected), f"{where}: fields {list(got)} != {list(expected)}"
        for name in expected:
            assert_same_sample(expected[name], got[name], f"{where} field {name!r}")
        return
    if isinstance(expected, _BUFFERS):
        assert isinstance(got, _BUFFERS), f"{where}: bytes expected, got {type(got)}"
        assert bytes(got) == bytes(expected), f"{where}: other bytes"
        return
    expected = np.asarray(expected)
    assert isinstance(got, np.ndarray), f"{where}: an ndarray expected, got {type(got)}"
    canonical = expected.dtype.newbyteorder("<")  # byte order aside (pickling may change it)
    assert got.dtype.newbyteorder("<") == canonical, f"{where}: dtype {got.dtype}"
    assert got.shape == expected.shape, f"{where}: shape {got.shape} != {expected.shape}"
    assert got.astype(canonical).tobytes() == expected.astype(canonical).tobytes(), (
        f"{where}: other values"
    )


def assert_stored(expected: Any, got: Any, where: str = "") -> None:
    """What a dataset gives back for a sample read as ``expected``: the same, except that an
    array may come back in the dataset's dtype when it casts to it safely (the writer's
    rule for samples after the first)."""
    if isinstance(expected, Mapping):
        assert isinstance(got, Mapping), f"{where}: a dict of fields expected, got {type(got)}"
        for name in expected:
            assert_stored(expected[name], got[name], f"{where} field {name!r}")
        return
    if isinstance(expected, np.ndarray) and isinstance(got, np.ndarray):
        assert np.can_cast(expected.dtype, got.dtype, "safe"), f"{where}: {got.dtype}"
        expected = expected.astype(got.dtype)
    assert_same_sample(expected, got, where)


def check_sample(sample: Any, where: str) -> None:
    """A sample is an ndarray, bytes, or a dict of named ndarrays and bytes."""
    if isinstance(sample, Mapping):
        assert sample, f"{where}: a sample with no fields"
        for name, value in sample.items():
            assert isinstance(name, str), f"{where}: field name {name!r} is not a str"
            assert isinstance(value, (np.ndarray, *_BUFFERS)), (
                f"{where}: field {name!r} is a {type(value).__name__}, not an ndarray or bytes"
            )
        return
    assert isinstance(sample, (np.ndarray, *_BUFFERS)), (
        f"{where}: the sample is a {type(sample).__name__}, not an ndarray, bytes or a dict"
    )


def check_metadata(metadata: Any, where: str) -> None:
    """Metadata is a dict of str keys (not ``ai:...``) to int, float, bool or str."""
    assert isinstance(metadata, dict), f"{where}: metadata is a {type(metadata).__name__}"
    for key, value in metadata.items():
        assert isinstance(key, str) and not key.startswith("ai:"), f"{where}: key {key!r}"
        assert isinstance(value, _METADATA_TYPES), (
            f"{where}: metadata {key!r} is a {type(value).__name__}"
        )


class ReaderTests:
    """Subclass as ``class TestMyReader(ReaderTests)``, set :attr:`reader_class` and
    implement :meth:`make_items`.

    The items of one configuration are converted together into one dataset, as a
    conversion would: give them one dtype (or later dtypes that cast safely to the
    first's), the same fields and the same metadata keys.
    """

    #: The reader under test.
    reader_class: ClassVar[type[Reader]]
    #: Configurations to test; each is passed as keyword arguments.
    configurations: ClassVar[tuple[dict[str, Any], ...]] = ({},)
    #: Whether the plugin is expected among installed plugins (its entry point is active).
    registered: ClassVar[bool] = True

    # --- hooks for subclasses ---------------------------------------------------------
    def make_items(self, folder: Path, reader: Reader) -> list[ReaderCase]:
        """Items for ``reader`` (files made in the empty ``folder``, ids, URLs...), each
        with the sample and the metadata ``reader.read(item)`` must return."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_items")

    def make_bad_items(self, folder: Path, reader: Reader) -> list[Any]:
        """Items ``reader`` must refuse with an exception (default: a missing file)."""
        return [str(folder / "no-such-file")]

    def assert_sample(self, expected: Any, got: Any, where: str) -> None:
        """Exact by default; override for a reader that is not (a lossy decoder)."""
        assert_same_sample(expected, got, where)

    # --- helpers ----------------------------------------------------------------------
    def readers(self) -> list[Reader]:
        return [self.reader_class(**config) for config in self.configurations]

    def cases(self, tmp_path: Path) -> list[tuple[Reader, list[ReaderCase]]]:
        """Each configuration's reader and its items, made in a folder of their own."""
        made = []
        for n, reader in enumerate(self.readers()):
            folder = tmp_path / f"items-{n}"
            folder.mkdir()
            items = self.make_items(folder, reader)
            assert items, f"make_items gave no items for {reader!r}"
            made.append((reader, items))
        return made

    # --- the contract -----------------------------------------------------------------
    def test_name(self) -> None:
        assert isinstance(self.reader_class.name, str) and self.reader_class.name
        assert issubclass(self.reader_class, Reader)

    def test_reads_every_item(self, tmp_path: Path) -> None:
        for reader, items in self.cases(tmp_path):
            for n, (item, sample, metadata) in enumerate(items):
                where = f"{reader!r} item {n} ({item!r})"
                result = reader.read(item)
                assert isinstance(result, tuple) and len(result) == 2, (
                    f"{where}: read must return (sample, metadata), got {type(result)}"
                )
                check_sample(result[0], where)
                check_metadata(result[1], where)
                self.assert_sample(sample, result[0], where)
                assert result[1] == metadata, f"{where}: metadata {result[1]} != {metadata}"

    def test_reads_the_same_twice(self, tmp_path: Path) -> None:
        for reader, items in self.cases(tmp_path):
            for item, _, _ in items:
                first, again = reader.read(item), reader.read(item)
                assert_same_sample(first[0], again[0], repr(item))
                assert first[1] == again[1]

    def test_refuses_bad_items_and_reads_on(self, tmp_path: Path) -> None:
        for n, (reader, items) in enumerate(self.cases(tmp_path)):
            bad_folder = tmp_path / f"bad-{n}"
            bad_folder.mkdir()
            for bad in self.make_bad_items(bad_folder, reader):
                with pytest.raises(Exception):  # noqa: B017 - any exception: the item is skipped
                    reader.read(bad)
            item, sample, _ = items[0]
            self.assert_sample(sample, reader.read(item)[0], f"{reader!r} after a refusal")

    def test_config_round_trips_and_pickles(self, tmp_path: Path) -> None:
        for reader, items in self.cases(tmp_path):
            config = json.loads(json.dumps(reader.get_config()))
            rebuilt = self.reader_class.from_config(config)
            assert rebuilt == reader and hash(rebuilt) == hash(reader)
            assert repr(rebuilt) == repr(reader)
            copy = pickle.loads(pickle.dumps(reader))
            assert copy == reader
            item, sample, _ = items[0]
            # (equality compares configurations: a setting left out of it shows here)
            self.assert_sample(sample, rebuilt.read(item)[0], f"{reader!r} from its config")
            self.assert_sample(sample, copy.read(item)[0], f"{reader!r} unpickled")

    def test_rebuilt_from_its_config_in_a_fresh_process(self, tmp_path: Path) -> None:
        """What a conversion's worker does: import the class, build it from the config."""
        cases = self.cases(tmp_path)
        jobs = [(r.get_config(), [item for item, _, _ in items]) for r, items in cases]
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            results = pool.submit(_read_all, self.reader_class, jobs).result(timeout=120)
        for (reader, items), got in zip(cases, results, strict=True):
            for n, ((_, sample, metadata), (read, read_metadata)) in enumerate(
                zip(items, got, strict=True)
            ):
                self.assert_sample(sample, read, f"{reader!r} item {n} in a fresh process")
                assert read_metadata == metadata

    def test_registered_and_converts(self, tmp_path: Path) -> None:
        if not self.registered:
            pytest.skip("not expected among installed plugins")
        name = self.reader_class.name
        assert plugins.plugin_class("reader", name) is self.reader_class
        for n, (reader, items) in enumerate(self.cases(tmp_path)):
            listed = [os.fspath(i) if isinstance(i, os.PathLike) else i for i, _, _ in items]
            try:
                json.dumps(listed)
            except TypeError:
                pytest.skip("items that are not JSON cannot be listed in a conversion config")
            output = tmp_path / f"converted-{n}"
            acumen.convert(
                {
                    "source": {
                        "callable": f"{__name__}:listed_items",
                        "arguments": {"items": listed},
                        "path_metadata": False,
                    },
                    "reader": reader.get_config(),
                    "output": {"path": str(output)},
                    "run": {"on_error": "raise"},
                },
                progress=False,
            )
            with acumen.open(output) as ds:
                assert len(ds) == len(items)
                for i, (item, _, _) in enumerate(items):
                    sample, metadata = reader.read(item)
                    got, got_metadata = ds[i]
                    assert_stored(sample, got, f"{reader!r} sample {i} of {output}")
                    assert got_metadata == metadata
