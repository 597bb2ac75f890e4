"""``blosc2``: one Blosc2 chunk per sample, shuffled by the array's item size.

A payload is a chunk in the Blosc2 chunk format (``blosc2.compress2``), followed by the
CRC-32 of that chunk as 4 little-endian bytes. Blosc2 chunks carry no checksum of their
own: without the trailer a flipped bit decodes, for most compressors, to wrong data
instead of an error.
"""

from __future__ import annotations

import operator
import struct
import zlib
from typing import Any

import blosc2
import numpy as np

from acumen.abc.codec import Buffer, Codec, array_bytes
from acumen.errors import CorruptDatasetError

#: Configuration name -> blosc2 compressor.
CNAMES = {
    "blosclz": blosc2.Codec.BLOSCLZ,
    "lz4": blosc2.Codec.LZ4,
    "lz4hc": blosc2.Codec.LZ4HC,
    "zlib": blosc2.Codec.ZLIB,
    "zstd": blosc2.Codec.ZSTD,
}
#: Configuration name -> blosc2 filter applied before compressing.
FILTERS = {
    "shuffle": blosc2.Filter.SHUFFLE,
    "bitshuffle": blosc2.Filter.BITSHUFFLE,
    "noshuffle": blosc2.Filter.NOFILTER,
}

_CRC = struct.Struct("<I")
#: The smallest payload: a chunk header and the checksum.
_MIN_PAYLOAD = blosc2.MIN_HEADER_LENGTH + _CRC.size


def _integer(key: str, value: Any) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        return operator.index(value)
    except TypeError:
        raise ValueError(f"blosc2 {key} must be an integer, got {value!r}") from None


class Blosc2Codec(Codec):
    """Blosc2, shuffled at the array's item size: what lets it compress float arrays.

    ``cname`` is the compressor ("blosclz", "lz4", "lz4hc", "zlib", "zstd"), ``clevel``
    its level 0..9, ``filter`` "shuffle" (bytes), "bitshuffle" or "noshuffle", and
    ``nthreads`` the threads blosc2 uses inside one sample.
    """

    name = "blosc2"

    def __init__(
        self, cname: str = "zstd", clevel: int = 5, filter: str = "shuffle", nthreads: int = 1
    ) -> None:
        if cname not in CNAMES:
            raise ValueError(f"blosc2 cname must be one of {', '.join(CNAMES)}, got {cname!r}")
        clevel = _integer("clevel", clevel)
        if not 0 <= clevel <= 9:
            raise ValueError(f"blosc2 clevel must be 0..9, got {clevel}")
        if filter not in FILTERS:
            raise ValueError(f"blosc2 filter must be one of {', '.join(FILTERS)}, got {filter!r}")
        nthreads = _integer("nthreads", nthreads)
        if nthreads < 1:
            raise ValueError(f"blosc2 nthreads must be at least 1, got {nthreads}")
        self.cname = cname
        self.clevel = clevel
        self.filter = filter
        self.nthreads = nthreads

    @property
    def configuration(self) -> dict[str, Any]:
        return {
            "cname": self.cname,
            "clevel": self.clevel,
            "filter": self.filter,
            "nthreads": self.nthreads,
        }

    def encode(self, array: np.ndarray) -> Buffer:
        data = array_bytes(array)
        if data.nbytes > blosc2.MAX_BUFFERSIZE:
            raise ValueError(
                f"blosc2 stores samples of at most {blosc2.MAX_BUFFERSIZE} bytes, "
                f"this one has {data.nbytes}"
            )
        typesize = array.dtype.itemsize
        chunk = blosc2.compress2(
            data,
            codec=CNAMES[self.cname],
            clevel=self.clevel,
            # The shuffle regroups the bytes of each item: it needs the item size.
            typesize=typesize if 1 <= typesize <= blosc2.MAX_TYPESIZE else 1,
            filters=[FILTERS[self.filter]],
            filters_meta=[0],
            nthreads=self.nthreads,
        )
        return chunk + _CRC.pack(zlib.crc32(chunk))

    def decode(self, payload: Buffer, decoded_size: int) -> Buffer:
        # Views released on the way out, even on error: a memory-mapped chunk file cannot
        # close while a view of it is alive.
        with memoryview(payload) as given, given.cast("B") as view:
            if view.nbytes < _MIN_PAYLOAD:
                raise CorruptDatasetError(
                    f"blosc2 payload has {view.nbytes} bytes, fewer than the {_MIN_PAYLOAD} "
                    "of a chunk header and its checksum"
                )
            with view[: -_CRC.size] as chunk:
                (expected,) = _CRC.unpack(view[-_CRC.size :])
                if zlib.crc32(chunk) != expected:
                    raise CorruptDatasetError("blosc2 payload is damaged: its CRC-32 differs")
                return self._decompress(chunk, decoded_size)

    def _decompress(self, chunk: memoryview, decoded_size: int) -> bytes:
        try:
            declared, cbytes, _ = blosc2.get_cbuffer_sizes(chunk)
        except (ValueError, RuntimeError) as error:
            raise CorruptDatasetError(f"blosc2 payload does not decode: {error}") from None
        if cbytes != chunk.nbytes:
            raise CorruptDatasetError(
                f"blosc2 chunk header says {cbytes} compressed bytes, the payload has "
                f"{chunk.nbytes}"
            )
        if declared != decoded_size:  # checked before decompress2 allocates `declared` bytes
            raise CorruptDatasetError(
                f"blosc2 payload decodes to {declared} bytes, the index says {decoded_size}"
            )
        try:
            data = blosc2.decompress2(chunk, nthreads=self.nthreads)
        except (ValueError, RuntimeError) as error:
            raise CorruptDatasetError(f"blosc2 payload does not decode: {error}") from None
        if len(data) != decoded_size:
            raise CorruptDatasetError(
                f"blosc2 payload decodes to {len(data)} bytes, the index says {decoded_size}"
            )
        return data
