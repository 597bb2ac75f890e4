"""The codec contract: turns one sample's bytes into a payload and back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from acumen.abc.plugin import Plugin

#: Samples this large go into a batch with numpy's copy, which releases the GIL (a
#: memoryview's holds it, page faults of a new batch included).
_NUMPY_COPY_FROM = 64 << 10

# Anything that supports the buffer protocol: bytes, bytearray, memoryview, mmap slices.
Buffer = bytes | bytearray | memoryview


def array_bytes(data: Any) -> memoryview:
    """The C-order bytes of an array (or any buffer) as a flat byte view, copying only
    when the array is not contiguous."""
    if isinstance(data, np.ndarray):
        if data.flags.c_contiguous:
            try:
                return data.data.cast("B")  # no copy; fails for dtypes with no buffer format
            except (TypeError, ValueError, NotImplementedError):
                pass
        return memoryview(np.ascontiguousarray(data).reshape(-1).view(np.uint8))
    return memoryview(data).cast("B")


class Codec(Plugin, ABC):
    """Encodes each sample on its own, so any sample decodes without its neighbours (O(1)).

    ``encode`` gets the sample as a C-contiguous, little-endian ndarray, so codecs that
    need the shape (images) have it; byte-oriented codecs take ``array_bytes(array)``.
    ``decode`` is told how many bytes the sample holds (the index knows its shape and the
    dataset its dtype). It must return exactly that many bytes or raise
    :class:`acumen.errors.CorruptDatasetError`; never allocate more than that, so a hostile
    payload cannot exhaust memory. ``decoded_size`` comes from the index, which may be
    hostile too (``2**40``, ``2**64``): refuse a size the payload cannot hold (the format's
    largest ratio, the size its header records) before allocating it. The conformance kit
    checks both (``acumen.testing.CodecTests``).
    """

    #: True when payloads are the sample bytes themselves, so readers may skip ``decode``
    #: and hand out zero-copy views.
    is_identity: ClassVar[bool] = False

    @abstractmethod
    def encode(self, array: np.ndarray) -> Buffer:
        """Return the payload stored in the chunk file for this sample.

        Raise ``ValueError`` or ``TypeError`` for an array the codec cannot store (the
        writer reports it with the sample's number).
        """

    @abstractmethod
    def decode(self, payload: Buffer, decoded_size: int) -> Buffer:
        """Return the sample bytes (exactly ``decoded_size`` of them) for a payload."""

    #: Decoding a sample of at least this many bytes releases the GIL for most of its time,
    #: so a batch of such samples decodes faster on several threads; None: it never does
    #: (a codec that decodes in Python). Readers pick their default thread count from it.
    threads_from_bytes: ClassVar[int | None] = None

    def decode_batch(self, payloads: Sequence[Buffer], decoded_size: int, out: memoryview) -> None:
        """Decode each payload into its ``decoded_size`` bytes of ``out`` (a writable byte
        view of ``len(payloads) * decoded_size`` bytes), in turn: a batch of samples of one
        shape. The same result and errors as :meth:`decode` of each; a codec with a
        decoder for many payloads at once (with the GIL released) overrides it. A reader
        that gets an error decodes the payloads one by one to name the sample."""
        decode = self.decode
        if decoded_size >= _NUMPY_COPY_FROM:  # numpy copies (and faults pages in) GIL-free
            rows = np.frombuffer(out, np.uint8).reshape(len(payloads), decoded_size)
            for row, payload in zip(rows, payloads, strict=True):
                np.copyto(row, np.frombuffer(decode(payload, decoded_size), np.uint8))
            return
        start = 0
        for payload in payloads:
            out[start : start + decoded_size] = decode(payload, decoded_size)
            start += decoded_size

    # --- optional: codecs that learn from the data (zstd dictionaries) -----------------
    def training_samples(self) -> int:
        """How many samples the codec wants to see before its first ``encode`` (0: none).

        The writer then holds back that many samples, calls :meth:`train`, stores
        :meth:`resources` in the dataset, and encodes. The configuration must name the
        resources afterwards, so the manifest records them.
        """
        return 0

    def train(self, arrays: list[np.ndarray], resource_prefix: str) -> None:
        """Learn from the first samples; name resources starting with ``resource_prefix``."""

    def resources(self) -> dict[str, bytes]:
        """Files to store in the dataset: relative path -> content."""
        return {}

    def open_resources(self, root: Path) -> None:
        """Load what :meth:`resources` stored, from the dataset folder ``root``."""
