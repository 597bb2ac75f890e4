"""What compressing codecs share: a level, and checks that a payload decodes to its size.

Each format has a hard limit on how many bytes one payload byte can decode to; a size the
index declares beyond it is refused before anything is allocated or inflated, so a tiny
payload cannot make a reader allocate what a hostile index says.
"""

from __future__ import annotations

from typing import ClassVar

from acumen.abc.codec import Codec
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


class LevelCodec(Codec):
    """A codec configured by a compression level alone, which only writing needs."""

    #: The levels the format accepts.
    LEVELS: ClassVar[range]

    def __init__(self, level: int) -> None:
        level = int(level)
        if level not in self.LEVELS:
            last = self.LEVELS.stop - 1
            raise ValueError(f"{self.name} level must be {self.LEVELS.start}..{last}, got {level}")
        self.level = level

    @property
    def configuration(self) -> dict:
        return {"level": self.level}

    @property
    def reading_configuration(self) -> dict:
        return {}  # the level only matters to writing
