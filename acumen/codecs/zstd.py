"""``zstd``: Zstandard, one frame per sample; fast to decode, good ratios.

Small samples compress poorly on their own: with ``dictionary_size`` set, the codec trains a
dictionary on the first ``train_samples`` samples, the dataset stores it (the configuration
names the file), and every frame is compressed and decoded with it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import zstandard

from acumen.abc.codec import Buffer, Codec, array_bytes
from acumen.codecs._limits import beyond_ratio, size_mismatch, undecodable
from acumen.errors import CorruptDatasetError
from acumen.files.local import read_regular_bytes
from acumen.format.layout import resolve_inside

logger = logging.getLogger(__name__)

_frame_content_size = zstandard.frame_content_size
#: A zstd block decodes to at most 128 KiB and takes at least 4 bytes (an RLE block).
MAX_RATIO = (128 << 10) // 4
#: decode_batch decodes samples smaller than this in one call for many frames; larger ones
#: one by one: measured (147 KiB images), the many-frame call's one large buffer (page
#: faults, then a copy) cost 386 us a sample against 264 (1 KiB samples: 4 us against 5).
MANY_FRAMES_BELOW = 32 << 10


class ZstdCodec(Codec):
    name = "zstd"
    # Frames decode with the GIL released: 147 KiB images 1.7-2.1x on 2 threads; 1 KiB
    # samples (many frames in one GIL-free call per thread) 1.3x on a quiet machine.
    threads_from_bytes = 0

    def __init__(
        self,
        level: int = 3,
        dictionary_size: int = 0,
        train_samples: int = 1000,
        dictionary: str | None = None,
    ) -> None:
        level = int(level)
        if not -(2**17) <= level <= zstandard.MAX_COMPRESSION_LEVEL:
            raise ValueError(f"zstd level must be at most {zstandard.MAX_COMPRESSION_LEVEL}")
        if int(dictionary_size) < 0 or int(train_samples) < 1:
            raise ValueError("zstd dictionary_size must be >= 0 and train_samples >= 1")
        self.level = level
        self.dictionary_size = int(dictionary_size)
        self.train_samples = int(train_samples)
        self.dictionary = dictionary
        self._dictionary: zstandard.ZstdCompressionDict | None = None
        self._trained = dictionary is not None
        # zstandard contexts are not thread-safe: one per thread.
        self._local = threading.local()

    @property
    def configuration(self) -> dict:
        if not self.dictionary_size and self.dictionary is None:
            return {"level": self.level}
        return {
            "level": self.level,
            "dictionary_size": self.dictionary_size,
            "train_samples": self.train_samples,
            "dictionary": self.dictionary,
        }

    @property
    def reading_configuration(self) -> dict:
        # Frames compressed with a dictionary decode only with it; the level, the size
        # and the samples it was trained on only matter to writing.
        return {"dictionary": self.dictionary} if self.dictionary is not None else {}

    # --- dictionary -------------------------------------------------------------------
    def training_samples(self) -> int:
        return self.train_samples if self.dictionary_size and not self._trained else 0

    def train(self, arrays: list[np.ndarray], resource_prefix: str) -> None:
        self._trained = True
        samples = [bytes(array_bytes(a)) for a in arrays if a.nbytes]
        try:
            trained = zstandard.train_dictionary(self.dictionary_size, samples)
        except zstandard.ZstdError as error:
            # Too few or too small samples to learn from: frames go without a dictionary.
            logger.info("no zstd dictionary trained on %d samples: %s", len(samples), error)
            return
        self._use_dictionary(trained.as_bytes())
        self.dictionary = f"{resource_prefix}zstd.dict"

    def resources(self) -> dict[str, bytes]:
        if self.dictionary is None or self._dictionary is None:
            return {}
        return {self.dictionary: self._dictionary.as_bytes()}

    def open_resources(self, root: Path) -> None:
        if self.dictionary is None:
            return
        path = resolve_inside(root, self.dictionary, "zstd dictionary")
        try:
            self._use_dictionary(read_regular_bytes(path, "zstd dictionary"))
        except FileNotFoundError:
            raise CorruptDatasetError(f"{path}: the zstd dictionary is missing") from None

    def _use_dictionary(self, data: bytes) -> None:
        self._dictionary = zstandard.ZstdCompressionDict(data)
        self._local = threading.local()

    # --- frames -----------------------------------------------------------------------
    def _compressor(self) -> zstandard.ZstdCompressor:
        compressor = getattr(self._local, "compressor", None)
        if compressor is None:
            # The frame checksum (xxhash) makes a damaged payload an error, not wrong data.
            compressor = zstandard.ZstdCompressor(
                level=self.level,
                write_content_size=True,
                write_checksum=True,
                dict_data=self._dictionary,
            )
            self._local.compressor = compressor
        return compressor

    def _decompressor(self) -> zstandard.ZstdDecompressor:
        try:
            return self._local.decompressor
        except AttributeError:
            decompressor = zstandard.ZstdDecompressor(dict_data=self._dictionary)
            self._local.decompressor = decompressor
            return decompressor

    def encode(self, array: np.ndarray) -> Buffer:
        return self._compressor().compress(array_bytes(array))

    def decode(self, payload: Buffer, decoded_size: int) -> Buffer:
        try:
            # The one-shot decompress allocates what the header declares: check it first.
            declared = _frame_content_size(payload)
            if declared == decoded_size:
                if decoded_size > MAX_RATIO * len(payload):  # the header may lie: 2**40
                    raise beyond_ratio(self.name, len(payload), decoded_size, MAX_RATIO)
                try:
                    decompressor = self._local.decompressor
                except AttributeError:
                    decompressor = self._decompressor()
                data = decompressor.decompress(payload)
                if len(data) == decoded_size:
                    return data
                raise size_mismatch(self.name, len(data), decoded_size)
        except zstandard.ZstdError as error:
            raise undecodable(self.name, error) from None
        if declared in (-1, zstandard.CONTENTSIZE_UNKNOWN):  # (frame_content_size says -1)
            raise undecodable(self.name, ValueError("the frame does not declare its size"))
        raise size_mismatch(self.name, declared, decoded_size)

    def decode_batch(self, payloads: Sequence[Buffer], decoded_size: int, out: memoryview) -> None:
        # zstandard's decoder of many frames: one call, a loop in C with the GIL released.
        # Every frame must declare decoded_size and hold at most MAX_RATIO per byte, as
        # decode asks; anything else (and any error) goes one by one, to say what is wrong.
        count = len(payloads)
        if not count or not decoded_size or decoded_size >= MANY_FRAMES_BELOW:
            super().decode_batch(payloads, decoded_size, out)
            return
        try:
            declared = np.fromiter(map(_frame_content_size, payloads), np.int64, count)
            lengths = np.fromiter(map(len, payloads), np.int64, count)
            if (declared != decoded_size).any() or (lengths * MAX_RATIO < decoded_size).any():
                raise zstandard.ZstdError("a frame to decode on its own")
            sizes = np.full(count, decoded_size, np.uint64)
            frames = self._decompressor().multi_decompress_to_buffer(
                payloads, decompressed_sizes=sizes.tobytes(), threads=1
            )
        except zstandard.ZstdError:
            super().decode_batch(payloads, decoded_size, out)
            return
        ends = range(decoded_size, (count + 1) * decoded_size, decoded_size)
        for _ in map(
            out.__setitem__, map(slice, range(0, count * decoded_size, decoded_size), ends), frames
        ):
            pass

    # --- pickling: the configuration, plus a trained dictionary for worker processes --
    def __getstate__(self) -> dict:
        dictionary = self._dictionary.as_bytes() if self._dictionary is not None else None
        return {"configuration": self.configuration, "trained": self._trained, "data": dictionary}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state["configuration"])
        self._trained = state["trained"]
        if state["data"] is not None:
            self._use_dictionary(state["data"])
