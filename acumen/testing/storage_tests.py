"""Conformance tests every storage backend must pass."""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from acumen.abc.storage import Storage
from acumen.errors import CorruptDatasetError

FILE_SIZES = (0, 1, 4096, 100_003)


def _read_in_child(storage: Storage, ranges: list[tuple[int, int, int]], queue: Any) -> None:
    queue.put([bytes(storage.read(*r)) for r in ranges])


class StorageTests:
    """Subclass as ``class TestMyStorage(StorageTests)`` and set :attr:`storage_class`."""

    storage_class: ClassVar[type[Storage]]
    configurations: ClassVar[tuple[dict[str, Any], ...]] = ({},)

    @pytest.fixture
    def files(self, tmp_path: Path) -> list[tuple[str, bytes]]:
        rng = np.random.default_rng(0)
        made = []
        for n, size in enumerate(FILE_SIZES):
            data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
            path = tmp_path / f"chunk_{n}.chnk"
            path.write_bytes(data)
            made.append((str(path), data))
        return made

    def storages(self, files: list[tuple[str, bytes]]) -> list[Storage]:
        return [self.storage_class([p for p, _ in files], **c) for c in self.configurations]

    def ranges(self, files: list[tuple[str, bytes]]) -> list[tuple[int, int, int]]:
        rng = np.random.default_rng(1)
        found = []
        for chunk_id, (_, data) in enumerate(files):
            n = len(data)
            found += [(chunk_id, 0, 0), (chunk_id, 0, n), (chunk_id, n, 0)]
            if n > 2:
                found += [(chunk_id, 1, n - 2), (chunk_id, n - 1, 1)]
            for _ in range(20 if n > 2 else 0):
                start = int(rng.integers(0, n))
                found.append((chunk_id, start, int(rng.integers(0, n - start + 1))))
        return found

    @staticmethod
    def expected(files: list[tuple[str, bytes]], chunk_id: int, offset: int, size: int) -> bytes:
        return files[chunk_id][1][offset : offset + size]

    def test_name(self) -> None:
        assert isinstance(self.storage_class.name, str) and self.storage_class.name
        assert issubclass(self.storage_class, Storage)

    def test_reads_every_range(self, files: list[tuple[str, bytes]]) -> None:
        for storage in self.storages(files):
            with storage:
                for r in self.ranges(files):
                    got = storage.read(*r)
                    assert bytes(got) == self.expected(files, *r), r
                    np.frombuffer(got, np.uint8)  # usable as an array buffer

    def test_past_the_end_is_corrupt_and_names_the_file(self, files) -> None:
        for storage in self.storages(files):
            with storage:
                for chunk_id, (path, data) in enumerate(files):
                    for offset, size in ((len(data), 1), (0, len(data) + 1), (len(data) + 5, 0)):
                        if offset + size <= len(data):
                            continue
                        with pytest.raises(CorruptDatasetError, match=path.replace("\\", ".")):
                            storage.read(chunk_id, offset, size)

    def test_read_into_fills_scattered_buffers(self, files) -> None:
        rng = np.random.default_rng(3)
        for storage in self.storages(files):
            with storage:
                for chunk_id, offset, size in self.ranges(files):
                    cuts = np.sort(rng.integers(0, size + 1, 3)).tolist()
                    sizes = np.diff([0, *cuts, size]).tolist()  # some buffers empty
                    out = bytearray(b"\xee" * size)
                    view, buffers, start = memoryview(out), [], 0
                    for part in sizes:
                        buffers.append(view[start : start + part])
                        start += part
                    storage.read_into(chunk_id, offset, buffers)
                    assert bytes(out) == self.expected(files, chunk_id, offset, size)

    def test_read_into_many_buffers_and_past_the_end(self, files) -> None:
        path, data = files[3]
        for storage in self.storages(files):
            with storage:
                out = bytearray(3000)
                view = memoryview(out)
                storage.read_into(3, 7, [view[k : k + 1] for k in range(3000)])
                assert bytes(out) == data[7:3007]
                for offset, size in ((len(data) - 10, 11), (len(data) + 5, 1)):
                    buffers = [memoryview(bytearray(1)) for _ in range(size)]
                    with pytest.raises(CorruptDatasetError, match=path.replace("\\", ".")):
                        storage.read_into(3, offset, buffers)

    def test_read_runs_fills_each_run(self, files) -> None:
        for storage in self.storages(files):
            with storage:
                ranges = [r for r in self.ranges(files) if r[2]]
                outs = [bytearray(b"\xee" * size) for _, _, size in ranges]
                runs = [[memoryview(o)[: len(o) // 2], memoryview(o)[len(o) // 2 :]] for o in outs]
                storage.read_runs(
                    [r[0] for r in ranges], [r[1] for r in ranges], [r[2] for r in ranges], runs
                )
                for out, (chunk_id, offset, size) in zip(outs, ranges, strict=True):
                    assert bytes(out) == self.expected(files, chunk_id, offset, size)
                path, data = files[3]
                with pytest.raises(CorruptDatasetError, match=path.replace("\\", ".")):
                    storage.read_runs(
                        [3, 3], [0, len(data) - 1], [1, 2], [[bytearray(1)], [bytearray(2)]]
                    )

    def test_views_of_zero_copy_storages(self, files) -> None:
        for storage in self.storages(files):
            assert len(storage.views) == len(files)
            for chunk_id, (_, data) in enumerate(files):
                storage.read(chunk_id, 0, 0)
                view = storage.views[chunk_id]
                if not storage.zero_copy:
                    assert view is None
                    continue
                assert view.readonly and bytes(view) == data
            before = storage.views
            storage.close()
            assert storage.views is not before and storage.views == [None] * len(files)

    def test_reads_again_after_close(self, files) -> None:
        for storage in self.storages(files):
            r = (2, 10, 100)
            first = bytes(storage.read(*r))
            storage.close()
            assert bytes(storage.read(*r)) == first == self.expected(files, *r)
            storage.close()

    def test_pickles_by_paths_and_configuration(self, files) -> None:
        for storage in self.storages(files):
            storage.read(3, 0, 10)  # with handles open
            copy = pickle.loads(pickle.dumps(storage))
            assert type(copy) is type(storage)
            assert copy.paths == storage.paths
            assert copy.get_config() == storage.get_config()
            for r in self.ranges(files):
                assert bytes(copy.read(*r)) == self.expected(files, *r)
            copy.close()
            storage.close()

    def test_config_round_trips_through_json(self, files) -> None:
        for storage in self.storages(files):
            config = json.loads(json.dumps(storage.get_config()))
            assert config["name"] == self.storage_class.name
            again = self.storage_class([p for p, _ in files], **config["configuration"])
            assert again.get_config() == storage.get_config()
            again.close()
            storage.close()

    def test_threads_read_at_once(self, files) -> None:
        ranges = self.ranges(files) * 20
        for storage in self.storages(files):
            with storage, ThreadPoolExecutor(8) as pool:
                got = list(pool.map(lambda r, s=storage: bytes(s.read(*r)), ranges))
            assert got == [self.expected(files, *r) for r in ranges]

    @pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
    def test_reads_in_child_processes(self, files, method: str) -> None:
        if method not in multiprocessing.get_all_start_methods():
            pytest.skip(f"{method} is not available")
        context = multiprocessing.get_context(method)
        ranges = self.ranges(files)
        for storage in self.storages(files):
            storage.read(3, 0, 10)  # the parent has handles open when the child starts
            queue = context.Queue()
            child = context.Process(target=_read_in_child, args=(storage, ranges, queue))
            child.start()
            got = queue.get(timeout=60)
            child.join(60)
            assert child.exitcode == 0
            assert got == [self.expected(files, *r) for r in ranges]
            assert bytes(storage.read(3, 5, 10)) == self.expected(files, 3, 5, 10)
            storage.close()

    def test_no_descriptor_leak(self, files) -> None:
        if not os.path.isdir("/proc/self/fd"):
            pytest.skip("needs /proc")
        before = len(os.listdir("/proc/self/fd"))
        for _ in range(50):
            for storage in self.storages(files):
                for chunk_id in range(len(files)):
                    storage.read(chunk_id, 0, 0)
                storage.close()
        assert len(os.listdir("/proc/self/fd")) <= before
