"""Conformance tests every codec must pass."""

from __future__ import annotations

import json
import mmap
import pickle
import tracemalloc
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import acumen
from acumen import plugins
from acumen.abc.codec import Codec, array_bytes
from acumen.errors import CorruptDatasetError

DTYPES = (
    "|u1",
    "|i1",
    "<i2",
    "<u2",
    "<i4",
    "<i8",
    "<u8",
    "<f2",
    "<f4",
    "<f8",
    "<c8",
    "<c16",
    "|b1",
)
SHAPES = ((), (0,), (1,), (7,), (3, 5), (2, 3, 4), (4, 0, 2), (2, 2, 2, 3))


def peak_while_refusing(call: Any) -> int:
    """Bytes allocated at the peak while ``call()`` runs; it must raise
    :class:`CorruptDatasetError` (tracemalloc sees Python's and numpy's allocations)."""
    tracemalloc.start()
    try:
        with pytest.raises(CorruptDatasetError):
            call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


class CodecTests:
    """Subclass as ``class TestMyCodec(CodecTests)`` and set :attr:`codec_class`.

    Override :meth:`make_array` when the codec stores only some arrays (an image codec
    takes uint8 (H, W, C)), and :meth:`assert_decoded` for a lossy codec.
    """

    #: The codec under test.
    codec_class: ClassVar[type[Codec]]
    #: Configurations to test; each is passed as keyword arguments.
    configurations: ClassVar[tuple[dict[str, Any], ...]] = ({},)
    #: Dtypes and shapes :meth:`make_array` is asked for.
    dtypes: ClassVar[tuple[str, ...]] = DTYPES
    shapes: ClassVar[tuple[tuple[int, ...], ...]] = SHAPES
    #: Size of the "huge" sample, in bytes.
    huge_size: ClassVar[int] = 8 << 20
    #: Whether the plugin is expected among installed plugins (its entry point is active).
    registered: ClassVar[bool] = True
    #: Whether damage to a payload is always detected (a checksum, or a format that fails).
    #: Lossless compressing codecs should be; set False for a codec that cannot be.
    detects_damage: ClassVar[bool] = True

    # --- hooks for subclasses ---------------------------------------------------------
    def make_array(self, dtype: np.dtype, shape: tuple[int, ...], rng: np.random.Generator):
        """An array of that dtype and shape, or ``None`` if the codec does not store it."""
        size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        # Half random, half repetitive: compressible, but not trivially.
        data = rng.integers(0, 256, size, dtype=np.uint8)
        data[size // 2 :] = np.arange(size - size // 2, dtype=np.int64) % 7
        return data.view(dtype).reshape(shape) if dtype.itemsize else None

    def assert_decoded(self, original: np.ndarray, decoded: np.ndarray) -> None:
        """Lossless by default: every byte equal."""
        assert decoded.tobytes() == original.tobytes()

    def codecs(self) -> list[Codec]:
        return [self.codec_class(**config) for config in self.configurations]

    def round_trip(self, codec: Codec, array: np.ndarray) -> np.ndarray:
        payload = codec.encode(array)
        decoded = codec.decode(payload, array.nbytes)
        assert memoryview(decoded).nbytes == array.nbytes
        return np.frombuffer(decoded, array.dtype).reshape(array.shape)

    def arrays(self) -> list[np.ndarray]:
        rng = np.random.default_rng(0)
        made = []
        for dtype in self.dtypes:
            for shape in self.shapes:
                array = self.make_array(np.dtype(dtype), shape, rng)
                if array is not None:
                    made.append(array)
        assert made, "make_array returned None for every dtype and shape"
        return made

    # --- the contract -----------------------------------------------------------------
    def test_name(self) -> None:
        assert isinstance(self.codec_class.name, str) and self.codec_class.name
        assert issubclass(self.codec_class, Codec)

    def test_round_trip_every_dtype_and_shape(self) -> None:
        for codec in self.codecs():
            for array in self.arrays():
                self.assert_decoded(array, self.round_trip(codec, array))

    def test_empty_sample(self) -> None:
        empties = [a for a in self.arrays() if a.size == 0]
        for codec in self.codecs():
            for array in empties:
                assert self.round_trip(codec, array).size == 0

    def make_huge_array(self, rng: np.random.Generator) -> np.ndarray | None:
        """A sample of about :attr:`huge_size` bytes (``None``: the codec has no such)."""
        dtype = np.dtype(self.dtypes[0])
        return self.make_array(dtype, (self.huge_size // dtype.itemsize,), rng)

    def test_huge_sample(self) -> None:
        big = self.make_huge_array(np.random.default_rng(1))
        if big is None:
            pytest.skip("make_huge_array gives no array")
        for codec in self.codecs():
            self.assert_decoded(big, self.round_trip(codec, big))

    def test_decode_accepts_every_kind_of_buffer(self, tmp_path: Path) -> None:
        file = tmp_path / "payload"
        for codec in self.codecs():
            array = self.arrays()[-1]
            payload = bytes(array_bytes(codec.encode(array)))
            padded = b"\x00" * 13 + payload + b"\xff" * 7
            file.write_bytes(padded)
            buffers = [
                payload,
                bytearray(payload),
                memoryview(payload),
                memoryview(padded)[13 : 13 + len(payload)],  # a slice of a bigger buffer
            ]
            for buffer in buffers:
                self.assert_decoded(array, self._decode_copy(codec, buffer, array))
            with open(file, "rb") as handle:
                mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            view = memoryview(mapped)
            window = view[13 : 13 + len(payload)]  # what the mmap storage hands out
            got = self._decode_copy(codec, window, array)
            window.release()
            view.release()
            mapped.close()
            self.assert_decoded(array, got)

    @staticmethod
    def _decode_copy(codec: Codec, buffer: Any, array: np.ndarray) -> np.ndarray:
        decoded = codec.decode(buffer, array.nbytes)
        copy = np.frombuffer(decoded, array.dtype).reshape(array.shape).copy()
        if isinstance(decoded, memoryview):
            decoded.release()
        return copy

    def test_deterministic(self) -> None:
        for codec in self.codecs():
            array = self.arrays()[-1]
            assert bytes(array_bytes(codec.encode(array))) == bytes(
                array_bytes(codec.encode(array))
            )

    def test_config_round_trips_through_json(self) -> None:
        for codec in self.codecs():
            config = json.loads(json.dumps(codec.get_config()))
            assert config["name"] == self.codec_class.name
            again = self.codec_class.from_config(config)
            assert again == codec
            assert hash(again) == hash(codec)
            assert repr(again) == repr(codec)

    def test_pickles(self) -> None:
        for codec in self.codecs():
            array = self.arrays()[-1]
            copy = pickle.loads(pickle.dumps(codec))
            assert copy == codec
            payload = codec.encode(array)
            self.assert_decoded(
                array, np.frombuffer(copy.decode(payload, array.nbytes), array.dtype)
            )

    def test_wrong_size_is_corrupt(self) -> None:
        for codec in self.codecs():
            if codec.is_identity:
                continue  # identity codecs are checked by the reader when it opens
            array = next(a for a in self.arrays() if a.nbytes > 0)
            payload = codec.encode(array)
            for wrong in (array.nbytes + 1, max(0, array.nbytes - 1)):
                with pytest.raises(CorruptDatasetError):
                    codec.decode(payload, wrong)

    def test_decode_batch_is_decode_of_each(self) -> None:
        """``decode_batch`` (samples of one size into one buffer) gives what ``decode``
        gives for each, for small and large samples, and refuses what it refuses."""
        rng = np.random.default_rng(5)
        for codec in self.codecs():
            for size in (1, 700, 100 << 10):
                arrays = [self.make_array(np.dtype("u1"), (size,), rng) for _ in range(5)]
                if any(a is None for a in arrays):
                    continue
                payloads = [bytes(array_bytes(codec.encode(a))) for a in arrays]
                out = bytearray(5 * size)
                codec.decode_batch(payloads, size, memoryview(out))
                want = b"".join(bytes(codec.decode(p, size)) for p in payloads)
                assert bytes(out) == want
                self.assert_decoded(np.stack(arrays), np.frombuffer(out, np.uint8).reshape(5, -1))
                if codec.is_identity:
                    continue
                for damaged in (payloads[3][:-1], b""):
                    with pytest.raises(CorruptDatasetError):
                        codec.decode_batch([*payloads[:3], damaged], size, memoryview(out[:-size]))
                with pytest.raises(CorruptDatasetError):
                    codec.decode_batch(payloads[:2], size + 1, memoryview(bytearray(2 * size + 2)))

    #: Sizes a small payload is said to decode to (a hostile index).
    huge_declared_sizes: ClassVar[tuple[int, ...]] = (1 << 30, 1 << 40, 2**63, 2**64, 10**30)
    #: The most a codec may allocate while refusing such a payload.
    refusal_memory: ClassVar[int] = 16 << 20

    def test_a_small_payload_declaring_a_huge_size_is_refused(self) -> None:
        """A hostile index may declare any size: a payload of a few bytes said to hold
        1 GiB, 2**40 or 2**64 bytes is a CorruptDatasetError, refused before the codec
        allocates what the index declares (measured with tracemalloc, which sees Python's
        and numpy's allocators)."""
        for codec in self.codecs():
            if codec.is_identity:
                continue  # identity codecs are checked by the reader when it opens
            array = next(a for a in self.arrays() if a.nbytes > 0)
            payload = bytes(array_bytes(codec.encode(array)))
            for declared in self.huge_declared_sizes:
                peak = peak_while_refusing(lambda: codec.decode(payload, declared))  # noqa: B023
                assert peak < self.refusal_memory, (
                    f"{codec}: {peak} bytes allocated to refuse a {len(payload)}-byte payload "
                    f"said to hold {declared}"
                )

    def test_garbage_and_truncation_are_corrupt(self) -> None:
        for codec in self.codecs():
            if codec.is_identity:
                continue  # identity codecs are checked by the reader when it opens
            array = next(a for a in self.arrays() if a.nbytes > 16)
            payload = bytes(array_bytes(codec.encode(array)))
            rng = np.random.default_rng(2)
            bad = [
                payload[: len(payload) // 2],
                payload[:-1],
                b"",
                rng.integers(0, 256, len(payload), dtype=np.uint8).tobytes(),
            ]
            for damaged in bad:
                with pytest.raises(CorruptDatasetError):
                    codec.decode(damaged, array.nbytes)

    def test_every_damaged_byte_is_detected(self) -> None:
        """Flip each byte of a payload in turn: an error, or (rarely) the exact data."""
        for codec in self.codecs():
            if codec.is_identity or not self.detects_damage:
                continue
            array = next(a for a in self.arrays() if a.nbytes > 16)
            payload = bytearray(array_bytes(codec.encode(array)))
            silent = []
            for position in range(len(payload)):
                payload[position] ^= 0x5A
                try:
                    decoded = bytes(array_bytes(codec.decode(bytes(payload), array.nbytes)))
                except CorruptDatasetError:
                    pass
                else:
                    if decoded != array.tobytes():
                        silent.append(position)
                payload[position] ^= 0x5A
            assert not silent, f"{codec}: damage at bytes {silent[:10]} decoded to wrong data"

    def test_registered_and_round_trips_in_a_dataset(self, tmp_path: Path) -> None:
        if not self.registered:
            pytest.skip("not expected among installed plugins")
        assert plugins.plugin_class("codec", self.codec_class.name) is self.codec_class
        samples = [a for a in self.arrays() if a.dtype == self.arrays()[-1].dtype]
        for n, codec in enumerate(self.codecs()):
            path = tmp_path / f"dataset{n}"
            with acumen.Writer(path, codec=codec, durable=False) as writer:
                for i, array in enumerate(samples):
                    writer.add(array, i=i)
            with acumen.open(path) as ds:
                assert ds.codec == codec
                for i, array in enumerate(samples):
                    got, metadata = ds[i]
                    assert got.shape == array.shape and got.dtype == array.dtype
                    self.assert_decoded(array, got)
                    assert metadata == {"i": i}
