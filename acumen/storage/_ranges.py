"""The error every storage raises when the index points past the end of a chunk file."""

from __future__ import annotations

from acumen.errors import CorruptDatasetError


def past_end(path: str, offset: int, size: int, file_size: int) -> CorruptDatasetError:
    return CorruptDatasetError(
        f"{path}: bytes {offset}..{offset + size} are past the end of the file "
        f"({file_size} bytes): the chunk file is truncated or the index is wrong"
    )
