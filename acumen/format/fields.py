"""Samples made of several named fields (image and mask, sequence and lengths, a file's bytes).

Each field has its own dtype and codec. A record's payload is the concatenation of its
fields' payloads, in the manifest's field order, so one record stays in one chunk (read
together cheaply) while each field can still be read alone from its byte range.
A field of type ``bytes`` holds a bytes object kept as it is (an encoded JPEG, a WAV file).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from acumen.errors import quote
from acumen.format.dtypes import dtype_to_json

FIELD_TYPES = ("array", "bytes")

_FIELD_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
BYTES_DTYPE = np.dtype("|u1")
BYTES_TYPES = (bytes, bytearray, memoryview)


class Codec(Protocol):
    """What a field needs of its codec (an :class:`acumen.abc.codec.Codec`; named here
    by its one method used, as the format layer does not import the plugin contracts)."""

    def get_config(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class FieldSpec:
    """One field: its name, type (``array`` or ``bytes``), dtype and codec."""

    name: str
    type: str
    dtype: np.dtype | None  # None: the first sample fixes it (arrays only)
    codec: Codec

    def to_json(self, shape: tuple[int, ...] | None) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "dtype": dtype_to_json(self.dtype if self.dtype is not None else BYTES_DTYPE),
            "codec": self.codec.get_config(),
            "shape": list(shape) if shape is not None else None,
        }


def check_field_name(name: object) -> str:
    if not isinstance(name, str) or not _FIELD_NAME.match(name):
        raise ValueError(
            f"field name {quote(name)} must be letters, digits, '_', '.' or '-' (not starting "
            "with '.' or '-')"
        )
    return name
