"""Shared checks for compressing codecs: a decoded payload must have the declared size.

Each format has a hard limit on how many bytes one payload byte can decode to; a size the
index declares beyond it is refused before anything is allocated or inflated, so a tiny
payload cannot make a reader allocate what a hostile index says.
"""

from __future__ import annotations

from acumen.errors import CorruptDatasetError

#: Above this declared size, codecs also read the size their frame header records before
#: allocating (below it the check would cost more than the allocation it saves).
HEADER_CHECK_ABOVE = 1 << 20


def size_mismatch(codec: str, got: object, expected: int) -> CorruptDatasetError:
    return CorruptDatasetError(f"{codec} payload decodes to {got} bytes, the index says {expected}")


def undecodable(codec: str, error: Exception) -> CorruptDatasetError:
    return CorruptDatasetError(f"{codec} payload does not decode: {error}")


def beyond_ratio(codec: str, payload_size: int, expected: int, ratio: int) -> CorruptDatasetError:
    """The index declares more bytes than ``payload_size`` bytes of the format can hold."""
    return CorruptDatasetError(
        f"{codec} payload of {payload_size} bytes cannot decode to the {expected} bytes the "
        f"index says ({codec} decodes at most {ratio} bytes per payload byte)"
    )
