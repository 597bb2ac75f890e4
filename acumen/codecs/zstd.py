"""``zstd``: Zstandard, one frame per sample; fast to decode, good ratios."""

from __future__ import annotations

import threading

import numpy as np
import zstandard

from acumen.abc.codec import Buffer, Codec, array_bytes
from acumen.codecs._checks import size_mismatch, undecodable


class ZstdCodec(Codec):
    name = "zstd"

    def __init__(self, level: int = 3) -> None:
        level = int(level)
        if not -(2**17) <= level <= zstandard.MAX_COMPRESSION_LEVEL:
            raise ValueError(f"zstd level must be at most {zstandard.MAX_COMPRESSION_LEVEL}")
        self.level = level
        # zstandard contexts are not thread-safe: one per thread.
        self._local = threading.local()

    @property
    def configuration(self) -> dict:
        return {"level": self.level}

    def _compressor(self) -> zstandard.ZstdCompressor:
        compressor = getattr(self._local, "compressor", None)
        if compressor is None:
            # The frame checksum (xxhash) makes a damaged payload an error, not wrong data.
            compressor = zstandard.ZstdCompressor(
                level=self.level, write_content_size=True, write_checksum=True
            )
            self._local.compressor = compressor
        return compressor

    def _decompressor(self) -> zstandard.ZstdDecompressor:
        decompressor = getattr(self._local, "decompressor", None)
        if decompressor is None:
            decompressor = self._local.decompressor = zstandard.ZstdDecompressor()
        return decompressor

    def encode(self, array: np.ndarray) -> Buffer:
        return self._compressor().compress(array_bytes(array))

    def decode(self, payload: Buffer, decoded_size: int) -> Buffer:
        try:
            declared = zstandard.frame_content_size(payload)
            if declared == zstandard.CONTENTSIZE_UNKNOWN:
                raise undecodable(self.name, ValueError("the frame does not declare its size"))
            if declared != decoded_size:  # checked before allocating anything
                raise size_mismatch(self.name, declared, decoded_size)
            data = self._decompressor().decompress(payload)
        except zstandard.ZstdError as error:
            raise undecodable(self.name, error) from None
        if len(data) != decoded_size:
            raise size_mismatch(self.name, len(data), decoded_size)
        return data

    def __getstate__(self) -> dict:
        return {"level": self.level}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)
