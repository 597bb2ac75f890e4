"""The fast read paths agree with the plain ones: zero-copy views, gathered batches,
positional reads into the batch, writable copies, and bounded, reusable decoders."""

from __future__ import annotations

import multiprocessing
import pickle
import struct
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import lz4.frame
import numpy as np
import pytest
import xxhash
import zstandard

import acumen
from acumen import plugins
from acumen.errors import CorruptDatasetError
from acumen.testing.codec_tests import peak_while_refusing
from tests.conftest import CODECS, STORAGES

rng = np.random.default_rng(11)
SMALL = rng.normal(size=(500, 8, 4)).astype(np.float16)  # 64 bytes each


def write(path: Path, arrays, codec: str = "raw", chunk: int = 4096, **options) -> Path:
    with acumen.Writer(path, codec=codec, chunk_size_bytes=chunk, durable=False, **options) as w:
        for i, array in enumerate(arrays):
            w.add(array, label=i % 3)
    return path


def batches() -> list[np.ndarray]:
    picks = np.random.default_rng(5)
    return [
        picks.choice(500, 256, replace=False),  # random, distinct, over many chunk files
        picks.integers(0, 500, 300),  # with repeats
        np.arange(40, 200),  # adjacent samples: runs read at once
        np.arange(499, -1, -1),  # every sample, backwards
        np.array([3, 3, 3, 2, 4, -1, -500]),  # duplicates, unsorted, negative
        np.arange(10, 20),  # inside one chunk file
        np.array([7]),
        np.array([], dtype=np.int64),
    ]


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("codec", CODECS)
def test_read_batch_equals_per_sample_reads(tmp_path, codec, storage):
    root = write(tmp_path / "ds", SMALL, codec)
    with acumen.open(root, storage=storage) as ds:
        assert len(set(ds.table.chunk_ids.tolist())) > 5  # samples span many chunk files
        for indices in batches():
            want = np.stack([ds.read(int(i)) for i in indices]) if len(indices) else SMALL[:0]
            for threads in (None, 3):
                got = ds.read_batch(indices, threads=threads)
                assert got.shape == want.shape and got.dtype == want.dtype
                assert got.flags.writeable and got.tobytes() == want.tobytes()
                assert got.tobytes() == SMALL[indices].tobytes()


@pytest.mark.parametrize("storage", STORAGES)
def test_read_batch_of_large_samples_copied_row_by_row(tmp_path, storage):
    """Samples of 8 KiB and more are gathered one by one (see dataset._ROW_COPY_BYTES)."""
    large = np.random.default_rng(3).integers(0, 255, (500, 96, 96), dtype=np.uint8)  # 9 KiB
    root = write(tmp_path / "ds", large, chunk=40_000)  # 4 samples per chunk file
    with acumen.open(root, storage=storage) as ds:
        assert len(set(ds.table.chunk_ids.tolist())) > 100
        for indices in batches():
            got = ds.read_batch(indices)
            assert got.flags.writeable and got.tobytes() == large[indices].tobytes()


@pytest.mark.parametrize("storage", STORAGES)
def test_read_batch_of_one_chunk_and_of_unaligned_offsets(tmp_path, storage):
    root = write(tmp_path / "ds", SMALL, chunk=1 << 20)
    with acumen.open(root, storage=storage) as ds:
        assert set(ds.table.chunk_ids.tolist()) == {0}
        for indices in batches():
            assert ds.read_batch(indices).tobytes() == SMALL[indices].tobytes()
        # Offsets that are not multiples of the sample size take the run-by-run path.
        ds._aligned = False
        for indices in batches():
            assert ds.read_batch(indices).tobytes() == SMALL[indices].tobytes()


@pytest.mark.parametrize("storage", STORAGES)
def test_read_batch_with_verification(tmp_path, storage):
    root = write(tmp_path / "ds", SMALL, checksums="sample")
    for verify in ("chunk", "sample"):
        with acumen.open(root, storage=storage, verify=verify) as ds:
            for indices in batches():
                assert ds.read_batch(indices).tobytes() == SMALL[indices].tobytes()
    # A damaged chunk is found by a batch that touches it, and named.
    chunk = root / "chunks" / "chunk_1.chnk"
    data = bytearray(chunk.read_bytes())
    data[3] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with (
        acumen.open(root, storage=storage, verify="chunk") as ds,
        pytest.raises(CorruptDatasetError, match=r"chunk_1\.chnk"),
    ):
        ds.read_batch(np.arange(500))


@pytest.mark.parametrize("storage", STORAGES)
def test_batches_and_reads_after_close_and_unpickling(tmp_path, storage):
    root = write(tmp_path / "ds", SMALL)
    indices = batches()[0]
    ds = acumen.open(root, storage=storage)
    first = ds.read_batch(indices)
    view = ds.read(5)
    ds.close()
    assert ds.read_batch(indices).tobytes() == first.tobytes()  # reopened after close
    assert view.tobytes() == SMALL[5].tobytes()  # an array handed out stays readable
    again = pickle.loads(pickle.dumps(ds))
    assert again.read_batch(indices).tobytes() == first.tobytes()
    assert again.read(5).tobytes() == SMALL[5].tobytes()
    again.close()
    ds.close()


def _batch_in_child(ds, indices, queue) -> None:
    queue.put((ds.read_batch(indices).tobytes(), ds.read(9).tobytes()))


@pytest.mark.parametrize("storage", STORAGES)
def test_batches_in_a_forked_child(tmp_path, storage):
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("fork is not available")
    root = write(tmp_path / "ds", SMALL, "lz4" if storage == "seek" else "raw")
    indices = batches()[0]
    with acumen.open(root, storage=storage) as ds:
        ds.read_batch(indices)  # the parent has chunks open and rows cached
        ds.read(9)
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        child = context.Process(target=_batch_in_child, args=(ds, indices, queue))
        child.start()
        got = queue.get(timeout=60)
        child.join(60)
        assert child.exitcode == 0
        assert got == (SMALL[indices].tobytes(), SMALL[9].tobytes())


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("codec", CODECS)
def test_writable_copies(tmp_path, codec, storage):
    images = rng.integers(0, 256, (6, 40, 30, 3), dtype=np.uint8)
    root = write(tmp_path / "ds", images, codec, chunk=10_000)
    with acumen.open(root, storage=storage) as ds:
        for i in range(len(images)):
            view = ds.read(i)
            assert not view.flags.writeable
            for copy in (ds.read(i, copy=True), np.array(ds.read(i))):
                assert copy.flags.writeable and copy.flags.owndata
                assert copy.shape == images[i].shape and copy.tobytes() == images[i].tobytes()
                copy[:] = 0  # the caller's own: the file and later reads are untouched
            assert ds.read(i).tobytes() == images[i].tobytes()


@pytest.mark.parametrize("storage", STORAGES)
def test_variable_shapes_and_empty_samples(tmp_path, storage):
    arrays = [np.arange(n * 3, dtype=np.int32).reshape(n, 3) for n in (0, 1, 5, 0, 2)]
    root = write(tmp_path / "ds", arrays)
    with acumen.open(root, storage=storage) as ds:
        for i, array in enumerate(arrays):
            for got in (ds.read(i), ds.read(i, copy=True), ds[i][0]):
                assert got.shape == array.shape and got.tobytes() == array.tobytes()
        batch = ds.read_batch([4, 0, 2])
        assert [b.tobytes() for b in batch] == [arrays[k].tobytes() for k in (4, 0, 2)]
    empty = write(tmp_path / "empty", [np.zeros((0, 4), np.float32)] * 3)
    with acumen.open(empty, storage=storage) as ds:
        assert ds.read(1).shape == (0, 4) and ds.read_batch([0, 2]).shape == (2, 0, 4)


@pytest.mark.parametrize("storage", STORAGES)
def test_a_chunk_truncated_after_opening_is_corrupt(tmp_path, storage):
    root = write(tmp_path / "ds", SMALL, chunk=1 << 20)
    with acumen.open(root, storage=storage) as ds:
        chunk = root / "chunks" / "chunk_0.chnk"
        chunk.write_bytes(chunk.read_bytes()[:640])  # 10 samples left
        if storage == "mmap":
            return  # reading a mapping past a file's new end is a SIGBUS, not an error
        assert ds.read(9).tobytes() == SMALL[9].tobytes()
        with pytest.raises(CorruptDatasetError, match=r"sample 10: .*past the end"):
            ds.read(10)
        with pytest.raises(CorruptDatasetError, match="past the end"):
            ds.read_batch([1, 200])


# --- codecs: bounded, exact, reusable after errors, safe in threads -------------------
def lz4_frame(data: bytes, declared: int | None) -> bytes:
    """One lz4 frame of ``data`` (in blocks of at most 64 KiB) whose header declares
    ``declared`` (None: no content size)."""
    flags = 0x60 | (0x08 if declared is not None else 0)
    descriptor = bytes([flags, 0x40]) + (
        struct.pack("<Q", declared) if declared is not None else b""
    )
    check = (xxhash.xxh32_intdigest(descriptor) >> 8) & 0xFF
    body = b"".join(
        struct.pack("<I", len(block) | 0x80000000) + block  # stored uncompressed
        for block in (data[k : k + (64 << 10)] for k in range(0, len(data), 64 << 10))
    )
    return b"\x04\x22\x4d\x18" + descriptor + bytes([check]) + body + b"\0\0\0\0"


def test_lz4_frames_that_lie_or_overflow(tmp_path):
    codec = plugins.codec("lz4")
    data = bytes(range(256)) * 1024  # 256 KiB, several blocks
    assert codec.decode(lz4_frame(data, len(data)), len(data)) == data
    assert codec.decode(lz4_frame(data, None), len(data)) == data  # no declared size: fine
    hostile = {
        "declares less than it holds": (lz4_frame(data, 1000), 1000),
        "declares more than it holds": (lz4_frame(data, len(data) + 1), len(data) + 1),
        "holds more than the index says": (lz4_frame(data, None), 1000),
        "holds less than the index says": (lz4_frame(data, None), len(data) + 1),
        "trailing bytes": (lz4_frame(data, len(data)) + b"x", len(data)),
        "two frames": (lz4_frame(data, len(data)) * 2, len(data)),
        "truncated": (lz4_frame(data, len(data))[:-5], len(data)),
        "no end mark": (lz4_frame(data, len(data))[:-4], len(data)),
    }
    for name, (payload, size) in hostile.items():
        peak = peak_while_refusing(lambda: codec.decode(payload, size))  # noqa: B023
        assert peak < size + (1 << 20), f"{name}: {peak} bytes allocated for {size}"
        # The thread's decompression context is fit for the next frame.
        assert codec.decode(lz4_frame(data, len(data)), len(data)) == data, name


def test_zstd_frames_that_lie(tmp_path):
    codec = plugins.codec("zstd")
    data = bytes(range(256)) * 64
    plain = zstandard.ZstdCompressor(write_content_size=True).compress(data)
    unsized = zstandard.ZstdCompressor(write_content_size=False).compress(data)
    assert codec.decode(plain, len(data)) == data
    for payload, size, message in (
        (plain, len(data) - 1, f"decodes to {len(data)} bytes"),
        (unsized, len(data), "does not declare its size"),
        (plain[:-3], len(data), "does not decode"),
        (b"", 0, "does not decode"),
    ):
        with pytest.raises(CorruptDatasetError, match=message):
            codec.decode(payload, size)
    assert codec.decode(plain, len(data)) == data


@pytest.mark.parametrize("codec_name", ["lz4", "zstd", "gzip"])
def test_codecs_decode_in_threads_and_after_pickling(codec_name):
    codec = plugins.codec(codec_name)
    arrays = [rng.integers(0, 4, 1000 + 37 * k, dtype=np.uint8) for k in range(64)]
    payloads = [codec.encode(a) for a in arrays]
    damaged = bytearray(payloads[0])
    damaged[len(damaged) // 2] ^= 0xFF
    barrier = threading.Barrier(4)

    def work(k: int) -> bool:
        barrier.wait()
        for _ in range(20):
            for array, payload in zip(arrays[k::4], payloads[k::4], strict=True):
                if bytes(codec.decode(payload, array.nbytes)) != array.tobytes():
                    return False
                with pytest.raises(CorruptDatasetError):
                    codec.decode(bytes(damaged), arrays[0].nbytes)
        return True

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(work, range(4)))
    again = pickle.loads(pickle.dumps(codec))
    assert bytes(again.decode(payloads[3], arrays[3].nbytes)) == arrays[3].tobytes()


def test_lz4_payloads_of_acumen_declare_their_size(tmp_path):
    """The writer stores the content size, so a frame's header can be checked cheaply."""
    payload = plugins.codec("lz4").encode(np.zeros(1000, np.uint8))
    assert lz4.frame.get_frame_info(payload)["content_size"] == 1000
