"""Hostile values in a dataset's files: refused with acumen's errors, never a crash, never
an allocation of what a hostile file declares, never a message that echoes it whole.

Every hostile file is made here, from a small dataset written by the test.
"""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path
from typing import Any

import lz4.frame
import numpy as np
import pytest
import xxhash

import acumen
from acumen import plugins
from acumen.errors import CorruptDatasetError
from tests.dataset_edits import edit_index, manifest_of, save_manifest

TIB = 1 << 40


def write(root: Path, codec: Any = "raw", index_format: str = "csv", n: int = 3) -> Path:
    with acumen.Writer(root, codec=codec, index_format=index_format, durable=False) as writer:
        for i in range(n):
            writer.add(np.full((2, 3), i, np.int32), i=i, name=f"s{i}")
    return root


def peak_while(call) -> int:
    """Bytes allocated at the peak while ``call`` runs (it must raise CorruptDatasetError)."""
    tracemalloc.start()
    try:
        with pytest.raises(CorruptDatasetError):
            call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# --- item 13: a payload declaring more than it can hold is refused unallocated ------------
def lz4_frame_of_16_bytes() -> bytes:
    """A 16-byte lz4 frame holding one byte: magic, descriptor (no content size), one
    uncompressed block of 1 byte, end mark."""
    descriptor = bytes([0x60, 0x40])  # version 01, independent blocks; 64 KiB blocks
    check = (xxhash.xxh32_intdigest(descriptor) >> 8) & 0xFF
    block = struct.pack("<I", 0x80000001) + b"\0"  # an uncompressed block of 1 byte
    return b"\x04\x22\x4d\x18" + descriptor + bytes([check]) + block + b"\0\0\0\0"


def test_lz4_frame_of_16_bytes_said_to_hold_a_tib_is_refused_unallocated():
    frame = lz4_frame_of_16_bytes()
    assert len(frame) == 16
    assert lz4.frame.decompress(frame) == b"\0"
    codec = plugins.codec("lz4")
    assert peak_while(lambda: codec.decode(frame, TIB)) < 1 << 20


@pytest.mark.parametrize("codec", ["lz4", "zstd", "gzip"])
@pytest.mark.parametrize("declared", [1 << 30, TIB, 2**63, 2**64])
def test_every_codec_refuses_a_small_payload_said_to_hold_more(codec, declared):
    """The same input for each codec: the same error (zstd and gzip already refused it;
    gzip with 2**63 or more escaped as OverflowError)."""
    payload = bytes(plugins.codec(codec).encode(np.zeros(16, np.uint8)))
    assert peak_while(lambda: plugins.codec(codec).decode(payload, declared)) < 1 << 20


def zstd_frame_declaring(declared: int) -> bytes:
    """A zstd frame of one RLE block (4 zero bytes) whose header declares ``declared``."""
    header = b"\x28\xb5\x2f\xfd" + bytes([0xC0, 7 << 3]) + struct.pack("<Q", declared)
    return header + struct.pack("<I", 1 | (1 << 1) | (4 << 3))[:3] + b"\0"


def test_zstd_frame_whose_header_agrees_with_a_huge_index_is_refused_unallocated():
    """The header and the index agree on 2**40 bytes: the one-shot decompressor would
    allocate them; 18 bytes of zstd cannot hold that much."""
    frame = zstd_frame_declaring(TIB)
    codec = plugins.codec("zstd")
    assert peak_while(lambda: codec.decode(frame, TIB)) < 1 << 20


def test_lz4_frame_whose_header_disagrees_is_refused_before_decoding():
    """Past the ratio bound's reach (a 1 MiB payload may hold 255 MiB), a large declared
    size is checked against the frame header before the output is allocated."""
    payload = bytes(plugins.codec("lz4").encode(np.zeros(8 << 20, np.uint8)))
    declared = 200 * len(payload)  # within 255 per byte, not what the header says
    codec = plugins.codec("lz4")
    assert peak_while(lambda: codec.decode(payload, declared)) < 1 << 20


def test_gzip_trailer_that_disagrees_is_refused_uninflated():
    payload = bytes(plugins.codec("gzip").encode(np.zeros(8 << 20, np.uint8)))
    codec = plugins.codec("gzip")
    assert peak_while(lambda: codec.decode(payload, (8 << 20) + 4096)) < 1 << 20


@pytest.mark.parametrize("codec", ["lz4", "zstd", "gzip"])
def test_the_most_compressible_payload_still_decodes(codec):
    """The ratio bounds are the formats' own: 64 MiB of zeros decodes in every codec."""
    zeros = np.zeros(64 << 20, np.uint8)
    instance = plugins.codec(codec)
    payload = instance.encode(zeros)
    assert memoryview(instance.decode(payload, zeros.nbytes)).nbytes == zeros.nbytes


@pytest.mark.parametrize("codec", ["lz4", "zstd", "gzip"])
@pytest.mark.parametrize("storage", ["mmap", "seek"])
def test_reading_a_sample_whose_index_declares_a_tib(tmp_path, codec, storage):
    """The dataset's index says the sample is (2**40,) uint8: an error naming the sample."""
    root = tmp_path / "ds"
    with acumen.Writer(root, codec=codec, durable=False) as writer:
        writer.add(np.zeros(16, np.uint8))
        writer.add(np.ones(16, np.uint8))
    edit_index(root, 0, "ai:shape", f"({TIB},)")
    manifest = manifest_of(root)
    manifest["shape"] = None
    save_manifest(root, manifest)
    with acumen.open(root, storage) as dataset:
        peak = peak_while(lambda: dataset[0])
        assert dataset.read(1).tolist() == [1] * 16
    assert peak < 1 << 20
