"""The conformance kit every acumen codec passes."""

from __future__ import annotations

from acumen_blosc2.codec import Blosc2Codec

from acumen.testing import CodecTests


class TestBlosc2Codec(CodecTests):
    codec_class = Blosc2Codec
    configurations = (
        {},
        {"cname": "lz4", "filter": "bitshuffle"},
        {"cname": "zlib", "clevel": 9},
        {"filter": "noshuffle"},
        {"cname": "blosclz", "clevel": 0, "nthreads": 2},
    )
