"""Shared checks for compressing codecs: a decoded payload must have the declared size."""

from __future__ import annotations

from acumen.errors import CorruptDatasetError


def size_mismatch(codec: str, got: object, expected: int) -> CorruptDatasetError:
    return CorruptDatasetError(f"{codec} payload decodes to {got} bytes, the index says {expected}")


def undecodable(codec: str, error: Exception) -> CorruptDatasetError:
    return CorruptDatasetError(f"{codec} payload does not decode: {error}")
