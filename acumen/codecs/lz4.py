"""``lz4``: LZ4 frame format, one frame per sample; the fastest to decode."""

from __future__ import annotations

import threading

import lz4.frame
import numpy as np

from acumen.abc.codec import Buffer, array_bytes
from acumen.codecs._limits import (
    HEADER_CHECK_ABOVE,
    LevelCodec,
    beyond_ratio,
    size_mismatch,
    undecodable,
)

_decompress_chunk = lz4.frame.decompress_chunk
# One decompression context per thread, shared by every lz4 codec: a context is reusable
# once a frame is complete, and dropped after anything else (a reset context, after a
# frame left part-way, refuses an empty frame: "ERROR_frameSize_wrong", lz4 4.4).
# Contexts hold no codec state, so codecs still pickle by their configuration; a forked
# child keeps its thread's context.
_contexts = threading.local()
#: An LZ4 sequence of n bytes decodes to fewer than 255 * n bytes (a token, an offset and
#: match-length bytes of 255 each); literals are 1:1, frame and block headers add bytes.
MAX_RATIO = 255
_HAS_CONTENT_SIZE = 0x08  # bit of the frame descriptor's FLG byte


class Lz4Codec(LevelCodec):
    name = "lz4"
    # decompress_chunk releases the GIL, but a 1 KiB frame takes under 1 us: Python's share
    # around it holds the GIL (measured on 2 cores, 0.7x with 2 threads).
    threads_from_bytes = 32 << 10
    LEVELS = range(lz4.frame.COMPRESSIONLEVEL_MAX + 1)

    def __init__(self, level: int = 0) -> None:
        super().__init__(level)

    def encode(self, array: np.ndarray) -> Buffer:
        # The content checksum makes a damaged payload an error, not wrong data.
        return lz4.frame.compress(
            array_bytes(array), compression_level=self.level, store_size=True, content_checksum=True
        )

    def decode(self, payload: Buffer, decoded_size: int) -> Buffer:
        # The output buffer is allocated at decoded_size: refuse what the frame cannot hold.
        if decoded_size > MAX_RATIO * len(payload):
            raise beyond_ratio(self.name, len(payload), decoded_size, MAX_RATIO)
        if decoded_size > HEADER_CHECK_ABOVE:
            _check_content_size(payload, decoded_size)
        try:
            context = _contexts.context
        except AttributeError:
            context = _contexts.context = lz4.frame.create_decompression_context()
        try:
            # Bounded: the output buffer holds decoded_size bytes and decoding stops when it
            # is full, whatever the frame header declares (LZ4 itself checks a declared
            # content size against what the blocks hold when the frame ends).
            data, used, complete = _decompress_chunk(context, payload, decoded_size)
        except RuntimeError as error:
            del _contexts.context
            raise undecodable(self.name, error) from None
        if complete and used == len(payload) and len(data) == decoded_size:
            return data
        if not complete:
            del _contexts.context
            raise size_mismatch(
                self.name, _what_it_holds(payload, data, decoded_size), decoded_size
            )
        if used != len(payload):
            raise size_mismatch(self.name, f"{len(data)} (plus trailing bytes)", decoded_size)
        raise size_mismatch(self.name, len(data), decoded_size)


def _check_content_size(payload: Buffer, decoded_size: int) -> None:
    """Refuse a frame whose header records another content size (magic 4 bytes, FLG, BD,
    then the size as 8 little-endian bytes when FLG says so)."""
    if len(payload) >= 14 and payload[4] & _HAS_CONTENT_SIZE:
        declared = int.from_bytes(payload[6:14], "little")
        if declared != decoded_size:
            raise size_mismatch(Lz4Codec.name, declared, decoded_size)


def _what_it_holds(payload: Buffer, data: bytes, decoded_size: int) -> object:
    """For the error message of a frame that did not end: the size its header declares
    (when it says one and differs), else what decoding stopped at."""
    try:
        declared = lz4.frame.get_frame_info(payload)["content_size"]
    except (RuntimeError, KeyError, ValueError):
        declared = 0
    if declared and declared != decoded_size:
        return declared
    if len(data) == decoded_size:
        return f"more than {decoded_size}"
    return f"a truncated frame of {len(data)}"
