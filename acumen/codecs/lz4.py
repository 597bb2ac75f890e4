"""``lz4``: LZ4 frame format, one frame per sample; the fastest to decode."""

from __future__ import annotations

import lz4.frame
import numpy as np

from acumen.abc.codec import Buffer, Codec, array_bytes
from acumen.codecs._checks import size_mismatch, undecodable


class Lz4Codec(Codec):
    name = "lz4"

    def __init__(self, level: int = 0) -> None:
        level = int(level)
        if not 0 <= level <= lz4.frame.COMPRESSIONLEVEL_MAX:
            raise ValueError(f"lz4 level must be 0..{lz4.frame.COMPRESSIONLEVEL_MAX}, got {level}")
        self.level = level

    @property
    def configuration(self) -> dict:
        return {"level": self.level}

    def encode(self, array: np.ndarray) -> Buffer:
        # The content checksum makes a damaged payload an error, not wrong data.
        return lz4.frame.compress(
            array_bytes(array), compression_level=self.level, store_size=True, content_checksum=True
        )

    def decode(self, payload: Buffer, decoded_size: int) -> Buffer:
        try:
            declared = lz4.frame.get_frame_info(payload)["content_size"]
            if declared != decoded_size:  # checked before allocating anything
                raise size_mismatch(self.name, declared, decoded_size)
            # Bounded: a frame whose blocks hold more than its header says stops here.
            decompressor = lz4.frame.LZ4FrameDecompressor()
            data = decompressor.decompress(payload, max_length=decoded_size + 1)
        except RuntimeError as error:
            raise undecodable(self.name, error) from None
        if len(data) != decoded_size or not decompressor.eof:
            got = len(data) if len(data) <= decoded_size else f"more than {decoded_size}"
            raise size_mismatch(self.name, got, decoded_size)
        return data
