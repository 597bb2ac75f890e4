"""Per-sample metadata, held as typed columns.

A column has one of four types, recorded in the manifest so every index format (CSV
included) gives values back with the type they were written with:

``int`` (int64), ``float`` (float64; NaN allowed), ``bool``, ``str``.

The first sample fixes each column's type (or the writer is told it up front); a later value
of another type is refused, never absorbed by changing the column, which would change what
the earlier samples read back (``1`` as ``1.0``). An int in a float column is taken: it reads
back as that number in the column's type (``2.0``), if float64 holds it exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from acumen.errors import CorruptDatasetError, SampleError, quote
from acumen.format.columns import RESERVED_PREFIX

COLUMN_TYPES = ("int", "float", "bool", "str")
NUMPY_DTYPES = {"int": np.int64, "float": np.float64, "bool": np.bool_, "str": object}


@dataclass(frozen=True)
class ColumnSpec:
    """A metadata column's name and type, as the manifest declares it."""

    name: str
    type: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type}


def _kind_of(value: object) -> str | None:
    """The column type a single value belongs to, or None if no column can hold it."""
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "int"
    if isinstance(value, (float, np.floating)):
        return "float"
    if isinstance(value, str):
        return "str"
    return None


def accepts(column: str, value: str) -> bool:
    """Whether a column of type ``column`` takes a value of type ``value``.

    Only its own type, and an int in a float column (it reads back as ``2.0``: the number
    written, in the column's type). A float is refused in an int column: making the column
    float would change what every earlier sample reads back (``1`` as ``1.0``).
    """
    return column == value or (column == "float" and value == "int")


def column_type_of_dtype(dtype: np.dtype) -> str:
    """The column type for a numpy/pandas column dtype read from an index file."""
    kind = getattr(dtype, "kind", "O")
    if kind == "b":
        return "bool"
    if kind in ("i", "u"):
        return "int"
    if kind == "f":
        return "float"
    return "str"


def metadata_specs(
    present: list[str],
    dtype_of: Callable[[str], object],
    columns: Sequence[ColumnSpec] | None,
    source: str,
) -> list[ColumnSpec]:
    """The metadata columns of an index file: as the manifest declares them (which must
    match the file's), or inferred from the file's column dtypes for an original dataset."""
    if columns is None:
        return [ColumnSpec(name, column_type_of_dtype(dtype_of(name))) for name in present]
    if present != [spec.name for spec in columns]:
        raise CorruptDatasetError(
            f"{source}: metadata columns {quote(present)} differ from the manifest's "
            f"{quote([spec.name for spec in columns])}"
        )
    return list(columns)


class MetadataTable:
    """Columns of metadata, one value per sample; a dict is built only for the row asked."""

    __slots__ = ("_columns", "_items", "_n", "specs")

    def __init__(self, n: int, columns: Mapping[str, np.ndarray], specs: Sequence[ColumnSpec]):
        self._n = n
        self.specs = list(specs)
        self._columns = {spec.name: columns[spec.name] for spec in self.specs}
        self._items = [(name, col.item) for name, col in self._columns.items()]

    @classmethod
    def empty(cls, n: int) -> MetadataTable:
        return cls(n, {}, [])

    def __len__(self) -> int:
        return self._n

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self.specs]

    def raw_column(self, name: str) -> Any:
        """The column as stored (possibly a lazy column an index format provides); slicing
        it gives what ``np.asarray`` turns into values."""
        return self._columns[name]

    def column(self, name: str) -> np.ndarray:
        # A column may be any array-like with ``item``, ``dtype``, ``len``, iteration and
        # ``[indices]`` (an index format's lazy text column); asked for, it is a numpy array.
        return np.asarray(self._columns[name])

    def row(self, i: int) -> dict[str, object]:
        """Sample ``i``'s metadata as plain Python values."""
        return {name: item(i) for name, item in self._items}

    def take(self, indices: np.ndarray) -> MetadataTable:
        return MetadataTable(
            len(indices), {k: v[indices] for k, v in self._columns.items()}, self.specs
        )

    def __getstate__(self) -> tuple:
        return (self._n, self._columns, self.specs)

    def __setstate__(self, state: tuple) -> None:
        self.__init__(*state)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MetadataTable):
            return NotImplemented
        if self.specs != other.specs or len(self) != len(other):
            return False
        for name, col in self._columns.items():
            theirs = other._columns[name]
            if col.dtype == object:
                if list(col) != list(theirs):
                    return False
            elif not np.array_equal(col, theirs, equal_nan=col.dtype.kind == "f"):
                return False
        return True


class MetadataCollector:
    """Gathers metadata sample by sample for a writer, checking each value as it comes.

    The first sample fixes the column names and types (or ``declared`` does, before any
    sample: a conversion's parts get the types its first item gave); every later sample
    must have the same keys, and values of the column's type. Values must be int, float,
    bool or str (numpy scalars of those kinds too); an int goes into a float column, but a
    column never changes type: metadata comes back with the types it was written with.
    """

    def __init__(
        self,
        declared: Sequence[ColumnSpec] | None = None,
        origin: str = "",
        existing: Sequence[ColumnSpec] | None = None,
        rows_before: int = 0,
    ) -> None:
        """``existing``: the columns of a dataset this one's samples are appended to (every
        sample needs them; the first sample may add columns, ``float`` or ``str`` only when
        there are ``rows_before`` older rows that will read them as missing)."""
        self._existing = list(existing) if existing is not None else None
        self._rows_before = rows_before
        self._names: list[str] | None = None
        self._keyset: frozenset[str] = frozenset()
        self._values: dict[str, list] = {}
        self._appenders: dict[str, Any] = {}
        self._plain: dict[str, type] = {}
        self._kinds: dict[str, str] = {}
        self._first: int | str = 0  # the first sample's label (it fixed the columns)
        self._origin: str | None = None  # what declared the columns, if not the first sample
        self._exotic: set[str] = set()  # columns given values not of their plain type
        self._n = 0
        if declared is not None:
            origin = origin or "the declared metadata types"
            for spec in declared:
                _check_name(spec.name, origin)
                if spec.type not in COLUMN_TYPES:
                    raise SampleError(
                        f"{origin}: metadata {spec.name!r} has type {spec.type!r}; a column's "
                        f"type is one of {', '.join(COLUMN_TYPES)}"
                    )
            self._columns(declared)
            self._origin = origin

    def add(self, metadata: Mapping[str, object], sample: int | str) -> None:
        if self._names is None:
            self._start(metadata, sample)
        elif metadata.keys() != self._keyset:
            missing = sorted(self._keyset - metadata.keys())
            extra = sorted(set(metadata.keys()) - self._keyset)
            theirs = "the first sample's" if self._origin is None else f"those of {self._origin}"
            raise SampleError(
                f"sample {sample}: metadata keys differ from {theirs} "
                f"(missing {missing}, unexpected {extra}); every sample needs the same keys"
            )
        plain = self._plain
        appenders = self._appenders
        exotic: list[str] | None = None  # columns given a value not of their plain type
        try:
            for name, value in metadata.items():
                kind = type(value)
                if kind is not plain[name]:
                    self._check_value(name, value, sample)
                    exotic = exotic or []
                    exotic.append(name)
                elif kind is str:
                    if not value.isascii():
                        _check_text(name, value, sample)
                elif kind is int and not _INT64_MIN <= value <= _INT64_MAX:
                    raise _int64_overflow(name, value, sample)
                appenders[name](value)
        except BaseException:
            # A refused sample leaves no trace: take back the values appended before.
            for values in self._values.values():
                if len(values) > self._n:
                    values.pop()
            if self._n == 0 and (self._origin is None or self._existing is not None):
                self._names = None  # nor do its keys become the columns
            raise
        if exotic:
            self._exotic.update(exotic)
        self._n += 1

    def _start(self, metadata: Mapping[str, object], sample: int | str) -> None:
        """The first sample: its keys and its values' types become the columns."""
        for name in metadata:
            _check_name(name, f"sample {sample}")
        kinds = {}
        for name, value in metadata.items():
            kind = _kind_of(value)
            if kind is None:
                raise _unstorable(name, value, sample, None)
            if kind == "int" and not _INT64_MIN <= int(value) <= _INT64_MAX:  # type: ignore[call-overload]
                raise _int64_overflow(name, value, sample)
            kinds[name] = kind
        specs = [ColumnSpec(name, kind) for name, kind in kinds.items()]
        if self._existing is not None:
            specs = self._appended_columns(kinds, sample)
            self._origin = "the dataset"
        self._columns(specs)
        self._first = sample

    def _appended_columns(self, kinds: dict[str, str], sample: int | str) -> list[ColumnSpec]:
        """The dataset's columns, then those the first appended sample adds."""
        existing = self._existing or []
        missing = [spec.name for spec in existing if spec.name not in kinds]
        if missing:
            raise SampleError(
                f"sample {sample}: metadata lacks the dataset's columns {missing}; every "
                "appended sample needs the columns the dataset has"
            )
        known = {spec.name for spec in existing}
        added = [ColumnSpec(name, kind) for name, kind in kinds.items() if name not in known]
        for spec in added:
            if self._rows_before and spec.type not in ("float", "str"):
                raise SampleError(
                    f"sample {sample}: metadata {spec.name!r} is a new column of type "
                    f"{spec.type}, and the dataset's {self._rows_before} samples before it "
                    "would have no value; a column added later must be float (NaN for "
                    "missing) or str (empty for missing)"
                )
        return existing + added

    def _columns(self, specs: Sequence[ColumnSpec]) -> None:
        self._names = [spec.name for spec in specs]
        self._keyset = frozenset(self._names)
        self._kinds = {spec.name: spec.type for spec in specs}
        self._values = {name: [] for name in self._names}
        self._appenders = {name: values.append for name, values in self._values.items()}
        self._plain = {spec.name: _PLAIN[spec.type] for spec in specs}

    def _check_value(self, name: str, value: object, sample: int | str) -> None:
        """Check a value that is not of its column's plain type (a numpy scalar, an int in
        a float column, or a value the column refuses)."""
        kind = _kind_of(value)
        column = self._kinds[name]
        if kind is None:
            raise _unstorable(name, value, sample, column)
        if kind == "str":
            _check_text(name, value, sample)
        if kind == "int" and not _INT64_MIN <= int(value) <= _INT64_MAX:  # type: ignore[call-overload]
            raise _int64_overflow(name, value, sample)
        if not accepts(column, kind):
            raise self._wrong_type(name, value, kind, sample)
        if kind == "int" and int(float(value)) != int(value):  # type: ignore[call-overload]
            raise SampleError(
                f"sample {sample}: metadata {name!r} = {value} is an int too large for the "
                f"float column it is in (float64 would store {float(value)!r}); give it as "  # type: ignore[arg-type]
                "a float if that is what you mean"
            )

    def _wrong_type(self, name: str, value: object, kind: str, sample: int | str) -> SampleError:
        column = self._kinds[name]
        if self._existing is not None:
            return SampleError(
                f"sample {sample}: metadata {name!r} is {kind} ({quote(value)}) but the "
                f"dataset's column is {column}; a column holds one type"
            )
        if self._origin is None:
            fixed = f"earlier samples gave {column} (first at sample {self._first})"
        else:
            fixed = f"{self._origin} made it {column}"
        message = (
            f"sample {sample}: metadata {name!r} is {kind} ({quote(value)}) but {fixed}; "
            "a column holds one type"
        )
        if column == "int" and kind == "float":
            message += (
                " (metadata reads back with the types it was written with: an int column "
                f"does not turn float). If {name!r} holds floats (or NaN for missing values), "
            )
            if self._origin is None:
                message += (
                    "give floats from the first sample on (1.0, not 1), or declare the column "
                    f"first (Writer's metadata_types={{{name!r}: 'float'}})"
                )
            else:
                message += f"make it float from the start: {self._origin} must give float"
        return SampleError(message)

    def finish(self) -> MetadataTable:
        specs = [ColumnSpec(name, self._kinds[name]) for name in self._names or []]
        columns = {}
        for spec in specs:
            values = self._values[spec.name]
            exotic = spec.name in self._exotic  # some values were not of the plain type
            if spec.type == "str":
                texts = [str(v) for v in values] if exotic else values  # np.str_ -> str
                column = np.empty(len(texts), dtype=object)
                column[:] = texts
                columns[spec.name] = column
                continue
            if spec.type == "float" and exotic:
                values = _widen_floats(values)
            columns[spec.name] = np.array(values, dtype=NUMPY_DTYPES[spec.type])
        return MetadataTable(self._n, columns, specs)


_PLAIN = {"int": int, "float": float, "bool": bool, "str": str}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _int64_overflow(name: str, value: object, sample: int | str) -> SampleError:
    return SampleError(f"sample {sample}: metadata {name!r} = {value} does not fit in int64")


def _widen_floats(values: list) -> list:
    """float32/float16 scalars as the float64 of their shortest text, as pandas writes them.

    ``np.float32(0.1)`` becomes ``0.1`` (not ``0.10000000149011612``): what the user meant,
    and byte for byte what the original wrote.
    """
    narrow = (np.float16, np.float32)
    if not any(type(v) in narrow for v in values):
        return values
    return [float(str(v)) if type(v) in narrow else v for v in values]


def _check_text(name: str, value: object, sample: int | str, where: str = "") -> None:
    """Index files are UTF-8: refuse text that cannot be encoded (lone surrogates)."""
    try:
        str(value).encode("utf-8")
    except UnicodeEncodeError as error:
        raise SampleError(
            f"{where or f'sample {sample}'}: metadata {name!r} = {value!r} is not valid "
            f"Unicode text ({error.reason} at position {error.start}) and cannot be written "
            "to an index"
        ) from None


def _check_name(name: object, where: str) -> None:
    if not isinstance(name, str):
        raise SampleError(f"{where}: metadata key {name!r} is not a string")
    _check_text("key", name, 0, where)
    if name.startswith(RESERVED_PREFIX):
        raise SampleError(
            f"{where}: metadata key {name!r} uses the reserved prefix "
            f"'{RESERVED_PREFIX}' (acumen's own index columns); rename it"
        )
    if not name:
        raise SampleError(f"{where}: a metadata key is the empty string")


def _unstorable(name: str, value: object, sample: int | str, column: str | None) -> SampleError:
    hint = ""
    if value is None:
        hint = " (use float('nan') for a missing number)"
        if column not in (None, "float"):
            hint += f"; NaN goes in a float column, and this one is {column}"
    return SampleError(
        f"sample {sample}: metadata {name!r} = {value!r} ({type(value).__name__}) cannot be "
        f"stored in an index; allowed: int, float, bool, str{hint}"
    )
