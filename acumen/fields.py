"""Samples made of several named fields (image and mask, sequence and lengths, a file's bytes).

Each field has its own dtype and codec. A record's payload is the concatenation of its
fields' payloads, in the manifest's field order, so one record stays in one chunk (read
together cheaply) while each field can still be read alone from its byte range.
A field of type ``bytes`` holds a bytes object kept as it is (an encoded JPEG, a WAV file).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from acumen import plugins
from acumen.abc.codec import Codec
from acumen.encoding import storage_dtype
from acumen.errors import SampleError, quote

FIELD_TYPES = ("array", "bytes")
_FIELD_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
BYTES_DTYPE = np.dtype("|u1")
BYTES_TYPES = (bytes, bytearray, memoryview)


@dataclass(frozen=True)
class FieldSpec:
    """One field: its name, type (``array`` or ``bytes``), dtype and codec."""

    name: str
    type: str
    dtype: np.dtype | None  # None: the first sample fixes it (arrays only)
    codec: Codec

    def to_json(self, shape: tuple[int, ...] | None) -> dict[str, Any]:
        from acumen.manifest import dtype_to_json

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


def field_specs(fields: Mapping[str, Any], default_codec: Codec) -> list[FieldSpec]:
    """Fields from a writer's ``fields=`` argument.

    Each value is a dtype (``"float32"``), ``"bytes"``, or a dict with ``dtype`` (or
    ``"type": "bytes"``) and optionally ``codec`` (a name or config dict).
    """
    specs = []
    for name, spec in fields.items():
        check_field_name(name)
        codec: Any = default_codec
        if isinstance(spec, Mapping):
            unknown = set(spec) - {"dtype", "type", "codec"}
            if unknown:
                raise ValueError(f"field {name!r}: unknown keys {sorted(unknown)}")
            kind = spec.get("type", "array")
            dtype = spec.get("dtype")
            codec = spec.get("codec", default_codec)
        elif isinstance(spec, str) and spec == "bytes":
            kind, dtype = "bytes", None
        else:
            kind, dtype = "array", spec
        if kind not in FIELD_TYPES:
            raise ValueError(f"field {name!r}: type must be one of {FIELD_TYPES}, got {kind!r}")
        if kind == "bytes":
            if dtype is not None and np.dtype(dtype) != BYTES_DTYPE:
                raise ValueError(f"field {name!r}: a bytes field has no dtype to choose")
            dtype = BYTES_DTYPE
        codec = plugins.codec(codec)
        if codec is default_codec:  # each field gets its own instance (own dictionary...)
            codec = type(codec).from_config(codec.get_config())
        specs.append(
            FieldSpec(name, kind, storage_dtype(dtype) if dtype is not None else None, codec)
        )
    if not specs:
        raise ValueError("fields= needs at least one field")
    return specs


def infer_field_specs(sample: Mapping[str, Any], default_codec: Codec, position: int) -> list:
    """Fields from the first sample: bytes values make bytes fields, the rest arrays."""
    if not sample:
        raise SampleError(f"sample {position}: an empty dict has no fields")
    inferred: dict[str, Any] = {}
    for name, value in sample.items():
        try:
            check_field_name(name)
        except ValueError as error:
            raise SampleError(f"sample {position}: {error}") from None
        inferred[name] = "bytes" if isinstance(value, BYTES_TYPES) else {"dtype": None}
    return field_specs(inferred, default_codec)
