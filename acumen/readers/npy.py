"""``npy``: one ``.npy`` file per sample (``np.save``); never unpickles.

A conversion reads thousands of small files that share one header (the same dtype and
shape): ``np.load`` parses each header with ``ast.literal_eval`` (a compile per file, a
third of its time on a 1 KiB array). Here a header is parsed once (by numpy's own parser)
and its exact bytes are remembered; a file whose header is byte for byte one seen before
takes the dtype and shape parsed then, and its data is read straight into the array.
Anything else (another header version, an object dtype, a short file, a file object, a
``.npz`` or a pickle) goes to ``np.load``, which reads it or raises its own error.
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np

from acumen.abc.reader import Reader

_MAGIC = b"\x93NUMPY"
_PREFIX = 4096  # read at once: the whole of a small file, or its header and first bytes
_KNOWN_LIMIT = 64  # headers remembered per process (a conversion has one, or a few)
_known: dict[bytes, tuple[tuple[int, ...], bool, np.dtype]] = {}


class NpyReader(Reader):
    name = "npy"

    def read(self, item: Any) -> tuple[np.ndarray, dict[str, Any]]:
        if isinstance(item, (str, os.PathLike)):
            array = read_npy_file(item)
            if array is not None:
                return array, {}
        # allow_pickle=False: a .npy holding Python objects is refused, not executed.
        return np.load(item, allow_pickle=False), {}


def read_npy_file(path: str | os.PathLike[str]) -> np.ndarray | None:
    """The array of a ``.npy`` file of format version 1.0 or 2.0 without object dtype, as
    ``np.load`` gives it; None for any other file (``np.load`` then reads it or says why)."""
    with open(path, "rb", buffering=0) as file:
        head = file.read(_PREFIX)
        if head[:6] != _MAGIC or head[6:8] not in (b"\x01\x00", b"\x02\x00"):
            return None
        if head[6] == 1:
            start = 10 + int.from_bytes(head[8:10], "little")
        else:
            start = 12 + int.from_bytes(head[8:12], "little")
        if start > len(head):
            return None
        header = head[:start]
        known = _known.get(header)
        if known is None:
            known = _parse(header)
            if known is None:
                return None
        shape, fortran, dtype = known
        array = np.empty(shape[::-1] if fortran else shape, dtype)
        target = (
            memoryview(array.reshape(-1).view(np.uint8)) if array.size else memoryview(bytearray())
        )
        size = target.nbytes
        have = min(size, len(head) - start)
        target[:have] = head[start : start + have]
        while have < size:
            got = file.readinto(target[have:])
            if not got:
                return None  # a short file: np.load says how short
            have += got
    return array.transpose() if fortran else array


def _parse(header: bytes) -> tuple[tuple[int, ...], bool, np.dtype] | None:
    """numpy's own reading of a header (its size limit and checks included); remembered."""
    fp = io.BytesIO(header[8:])
    try:
        if header[6] == 1:
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
    except ValueError:
        return None  # np.load raises it again, in its own words
    if dtype.hasobject or dtype.subdtype is not None or dtype.itemsize == 0:
        return None  # refused by np.load(allow_pickle=False), or rare: np.load reads it
    found = (tuple(shape), bool(fortran), dtype)
    if len(_known) < _KNOWN_LIMIT:
        _known[header] = found
    return found
