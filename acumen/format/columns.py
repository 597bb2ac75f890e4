"""The ``ai:`` columns of an index: their names, their types and their text forms.

Every index format lays out the same reserved columns (docs/format.md §4): the chunk file,
byte offset and byte size of each sample, its shape (one-array datasets) or each field's
size and shape (multi-field datasets), and optionally each record's checksum; every other
column is metadata. The original ``index.csv`` stores a shape as Python tuple text
(``"(4, 3)"``, ``"(5,)"``, ``"()"``), parsed here strictly, in linear time, never with
``eval``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from acumen.errors import CorruptDatasetError, quote

CHUNK_COLUMN = "ai:chunk_name"
OFFSET_COLUMN = "ai:offset_bytes"
SIZE_COLUMN = "ai:size_bytes"
SHAPE_COLUMN = "ai:shape"
RESERVED_COLUMNS = (CHUNK_COLUMN, OFFSET_COLUMN, SIZE_COLUMN, SHAPE_COLUMN)
RESERVED_PREFIX = "ai:"
FIELD_SIZE_PREFIX = SIZE_COLUMN + ":"  # ai:size_bytes:<field>
FIELD_SHAPE_PREFIX = SHAPE_COLUMN + ":"  # ai:shape:<field>
CHECKSUM_COLUMN = "ai:xxh3_64"  # optional: each record's payload checksum, as signed int64

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
#: The largest dimension an index may name: more elements than any file can hold, and
#: small enough that sums of element counts stay exact in int64.
MAX_DIMENSION = 2**62
_MAX_DIGITS = len(str(MAX_DIMENSION))  # a dimension of more digits is too large


def size_column(values: object) -> np.ndarray:
    """A size column as int32 (when given so) or int64, contiguous."""
    array = np.asarray(values)
    if array.dtype == np.int32:
        return np.ascontiguousarray(array)
    return np.ascontiguousarray(array, dtype=np.int64)


def narrow_sizes(sizes: np.ndarray) -> np.ndarray:
    """Sizes as int32 when every one fits (half the memory), else as they are.

    A negative size (a damaged index, refused by the row checks) is kept as it is, never
    wrapped around. Code adding offsets and sizes or multiplying counts works in int64
    whatever this gives.
    """
    if sizes.dtype == np.int64 and (
        not len(sizes) or (sizes.max() <= INT32_MAX and sizes.min() >= -INT32_MAX)
    ):
        return sizes.astype(np.int32)
    return sizes


def field_names_of(column_names: Sequence[str]) -> list[str]:
    """The fields of a multi-field index, from its ``ai:size_bytes:<field>`` columns."""
    return [c[len(FIELD_SIZE_PREFIX) :] for c in column_names if c.startswith(FIELD_SIZE_PREFIX)]


def check_reserved_columns(column_names: Sequence[str], source: str) -> list[str]:
    """Check an index has the reserved columns its layout needs; return its field names
    (empty for a one-array dataset)."""
    field_names = field_names_of(column_names)
    required = [CHUNK_COLUMN, OFFSET_COLUMN, SIZE_COLUMN]
    if not field_names:
        required.append(SHAPE_COLUMN)
    for name in field_names:
        required += [FIELD_SIZE_PREFIX + name, FIELD_SHAPE_PREFIX + name]
    missing = [c for c in required if c not in column_names]
    if missing:
        raise CorruptDatasetError(f"{source}: index lacks the column(s) {quote(missing)}")
    return field_names


def format_shape(shape: tuple[int, ...]) -> str:
    """Tuple text exactly as the original writer produced it (``str(tuple)``)."""
    return str(tuple(int(d) for d in shape))


def parse_shape(text: str) -> tuple[int, ...]:
    """Parse tuple text such as ``"(4, 3)"``; raise ``ValueError`` on anything else.

    A hand parser, not a pattern: each character is looked at a bounded number of times,
    so hostile text (a long run of spaces, digits or commas) is refused in linear time.
    Accepted: non-negative ASCII integers between parentheses, separated by commas, with
    any whitespace around the tokens and an optional trailing comma (needed for one).
    """
    if not isinstance(text, str):
        raise ValueError(f"not a shape: {text!r}")
    body = text.strip()
    if len(body) < 2 or body[0] != "(" or body[-1] != ")":
        raise ValueError(f"not a shape: {text!r}")
    parts = body[1:-1].split(",")
    last = parts.pop()  # after the last comma: blank, unless there is no trailing comma
    if last and not last.isspace():
        if not parts:
            raise ValueError(f"not a shape: {text!r} (a one-element tuple needs a trailing comma)")
        parts.append(last)
    return tuple(_dimension(part, text) for part in parts)


def _dimension(part: str, text: str) -> int:
    """One comma-separated token of a shape's text: ASCII digits, spaces around them."""
    digits = part.strip()
    # isdigit alone would take other scripts' digits and superscripts; int() takes "1_0".
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"not a shape: {text!r}")
    if len(digits) > _MAX_DIGITS:
        digits = digits.lstrip("0") or "0"
    value = int(digits) if len(digits) <= _MAX_DIGITS else MAX_DIMENSION + 1
    if value > MAX_DIMENSION:
        raise ValueError(f"not a shape: {text!r} (a dimension beyond 2**62)")
    return value
