"""The codec contract: turns one sample's bytes into a payload and back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from acumen.abc.plugin import Plugin

# Anything that supports the buffer protocol: bytes, bytearray, memoryview, mmap slices.
Buffer = bytes | bytearray | memoryview


class Codec(Plugin, ABC):
    """Encodes each sample on its own, so any sample decodes without its neighbours (O(1)).

    ``decode`` is told how many bytes the sample holds (the index knows its shape and the
    dataset its dtype). It must return exactly that many bytes or raise
    :class:`acumen.errors.CorruptDatasetError`; never allocate more than that, so a hostile
    payload cannot exhaust memory.
    """

    #: True when payloads are the sample bytes themselves, so readers may skip ``decode``
    #: and hand out zero-copy views.
    is_identity: ClassVar[bool] = False

    @abstractmethod
    def encode(self, data: Buffer) -> Buffer:
        """Return the payload stored in the chunk file for these sample bytes."""

    @abstractmethod
    def decode(self, payload: Buffer, decoded_size: int) -> Buffer:
        """Return the sample bytes (exactly ``decoded_size`` of them) for a payload."""
