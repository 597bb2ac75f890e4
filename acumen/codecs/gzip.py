"""``gzip``: one complete gzip member per sample, as the original reader's ``use_gzip``."""

from __future__ import annotations

import gzip
import zlib

import numpy as np

from acumen.abc.codec import Buffer, array_bytes
from acumen.codecs._limits import (
    HEADER_CHECK_ABOVE,
    LevelCodec,
    beyond_ratio,
    size_mismatch,
    undecodable,
)

_GZIP_WBITS = 16 + zlib.MAX_WBITS
#: Deflate codes at most 258 bytes (one match) in 2 bits: 1032 bytes per payload byte.
MAX_RATIO = 1032


class GzipCodec(LevelCodec):
    name = "gzip"
    # zlib inflates with the GIL released: threads pay even for 1 KiB samples (measured
    # on 2 cores, 1.7x; a sample takes 5 us to inflate, 2 us of Python around it).
    threads_from_bytes = 0
    LEVELS = range(10)

    def __init__(self, level: int = 6) -> None:
        super().__init__(level)

    def encode(self, array: np.ndarray) -> Buffer:
        # mtime=0 keeps output deterministic: the same samples give the same bytes.
        return gzip.compress(array_bytes(array), compresslevel=self.level, mtime=0)

    def decode(self, payload: Buffer, decoded_size: int) -> Buffer:
        if decoded_size > MAX_RATIO * len(payload):
            raise beyond_ratio(self.name, len(payload), decoded_size, MAX_RATIO)
        if decoded_size > HEADER_CHECK_ABOVE:
            # The trailer's ISIZE is the size modulo 2**32: a mismatch is refused uninflated.
            recorded = int.from_bytes(payload[-4:], "little")
            if recorded != decoded_size & 0xFFFFFFFF:
                raise size_mismatch(self.name, f"{recorded} (mod 2**32)", decoded_size)
        inflater = zlib.decompressobj(_GZIP_WBITS)
        try:
            # Bounded: never inflate more than one byte past what the index declares.
            data = inflater.decompress(payload, decoded_size + 1)
        except zlib.error as error:
            raise undecodable(self.name, error) from None
        if inflater.eof and len(data) == decoded_size and not inflater.unused_data:
            return data
        if len(data) > decoded_size:
            raise size_mismatch(self.name, f"more than {decoded_size}", decoded_size)
        if not inflater.eof:
            raise size_mismatch(self.name, f"a truncated stream of {len(data)}", decoded_size)
        got = len(data) if not inflater.unused_data else f"{len(data)} (plus trailing bytes)"
        raise size_mismatch(self.name, got, decoded_size)
