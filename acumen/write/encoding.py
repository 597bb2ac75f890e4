"""Turning one sample's array into the payload a chunk file stores.

Runs in the writer's process or in a worker process, so it holds nothing but the dtype
and the codec (both picklable).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from acumen import plugins
from acumen.abc.codec import Buffer, Codec
from acumen.errors import SampleError
from acumen.format.dtypes import storage_dtype
from acumen.format.fields import BYTES_DTYPE, BYTES_TYPES, FIELD_TYPES, FieldSpec, check_field_name


def check_safe_cast(safe_cast: bool | str) -> None:
    """The Writer's ``safe_cast``: how an array of another dtype is cast to a given one."""
    if safe_cast is not True and safe_cast is not False and safe_cast != "values":
        raise ValueError(f"safe_cast must be False, True or 'values', got {safe_cast!r}")


class SampleEncoder:
    """Checks, casts and encodes arrays; the first array fixes the dtype unless one is given.

    With an explicit ``dtype`` every array is cast to it: with ``safe_cast=False`` as told
    (``astype``, as the original did); with ``"values"`` only when every value survives
    (see :func:`lost_values`); with ``True`` only when numpy calls the cast safe, as
    without a ``dtype``, where later arrays must cast safely to the first array's dtype.
    """

    def __init__(self, codec: Codec, dtype: Any = None, safe_cast: bool | str = False) -> None:
        check_safe_cast(safe_cast)
        self.codec = codec
        # "unsafe": astype as told; "values": refuse lost values; "safe": numpy's rule.
        self.casting = "safe"
        if dtype is not None and safe_cast == "values":
            self.casting = "values"
        elif dtype is not None and safe_cast is False:
            self.casting = "unsafe"
        self.dtype: np.dtype | None = storage_dtype(dtype) if dtype is not None else None

    def encode(self, array: Any, sample: int | str) -> tuple[Buffer, tuple[int, ...]]:
        """Return ``(payload, shape)`` for one sample; errors name the sample."""
        prepared = self.prepare(array, sample)
        return self.encode_prepared(prepared, sample), prepared.shape

    def prepare(self, array: Any, sample: int | str) -> np.ndarray:
        """Check and cast one sample (the first fixes an open dtype): C-contiguous, on-disk
        dtype, ready for the codec."""
        array = np.asarray(array)
        if array.dtype.hasobject:
            raise SampleError(
                f"sample {sample}: the array has object dtype, which holds Python objects, not "
                "bytes; convert it to a numeric dtype (e.g. np.asarray(x, dtype=np.float32))"
            )
        if self.dtype is None:
            try:
                self.dtype = storage_dtype(array.dtype)
            except SampleError as error:
                raise SampleError(f"sample {sample}: {error}") from None
        if array.dtype != self.dtype:
            if self.casting == "values":
                array = self._cast_values(array, sample)
            elif self.casting == "safe" and not np.can_cast(array.dtype, self.dtype, "safe"):
                raise SampleError(
                    f"sample {sample}: dtype {array.dtype} does not cast safely to the dataset's "
                    f"dtype {self.dtype} (set by the first sample); pass dtype= to cast"
                )
            else:
                array = array.astype(self.dtype)
        if not array.flags.c_contiguous:
            array = array.copy(order="C")  # (np.ascontiguousarray would make 0-d arrays 1-d)
        return array

    def _cast_values(self, array: np.ndarray, sample: int | str) -> np.ndarray:
        """``array`` cast to the dataset's dtype, refused when a value does not survive."""
        assert self.dtype is not None
        source = array.dtype
        problem = dropped_imaginary(array, self.dtype)
        if problem is None:
            if array.dtype.kind == "c" and self.dtype.kind != "c":
                array = array.real  # no imaginary part: cast without numpy's warning
            with np.errstate(over="ignore", invalid="ignore"):  # reported below, by value
                cast = array.astype(self.dtype)
            problem = lost_values(array, cast)
        if problem is None:
            return cast
        raise SampleError(
            f"sample {sample}: casting {source} to the dataset's dtype {self.dtype} loses "
            f"values: {problem}; keep them with a wider dtype= (None keeps each sample's own), "
            f"or cast anyway with safe_cast=False or an explicit dtype=np.{self.dtype.name}"
        )

    def encode_prepared(self, array: np.ndarray, sample: int | str) -> Buffer:
        """The codec's payload for a prepared array."""
        try:
            return self.codec.encode(array)
        except (TypeError, ValueError) as error:
            raise SampleError(
                f"sample {sample}: codec '{self.codec.name}' cannot store this array "
                f"({array.dtype}, shape {array.shape}): {error}"
            ) from None


def dropped_imaginary(array: np.ndarray, target: np.dtype) -> str | None:
    """What a cast of complex values to a real ``target`` would drop, or None."""
    if array.dtype.kind != "c" or target.kind == "c":
        return None
    flat = np.flatnonzero(array.imag)
    if not len(flat):
        return None
    return f"{_value_at(array, flat[0])} has an imaginary part, which {target} cannot hold"


def lost_values(array: np.ndarray, cast: np.ndarray) -> str | None:
    """The first value of ``array`` that ``cast`` (the same values, another dtype) does not
    hold, described; None when all are held.

    Rounding a float to a coarser float is what the narrower dtype means and passes (a tiny
    value may round to 0); a float out of the target's range (it becomes inf) is lost, and
    from any other dtype (integers, or floats cast to integers) every value must come back
    exactly. NaN and inf stay themselves between floats; from floats to integers they are
    lost.
    """
    if array.dtype.kind in "fc" and cast.dtype.kind in "fc":
        if not np.isinf(cast).any():  # the common case: one pass over the cast
            return None
        lost = np.isinf(cast) & np.isfinite(array)
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            lost = cast.astype(array.dtype) != array
    flat = np.flatnonzero(lost)
    if not len(flat):
        return None
    k = flat[0]
    became = cast.reshape(-1)[k].item()
    problem = f"{_value_at(array, k)} becomes {became!r}"
    if cast.dtype.kind == "f" and np.isinf(became):
        problem += f" ({cast.dtype} holds at most ±{float(np.finfo(cast.dtype).max):g})"
    return problem


def _value_at(array: np.ndarray, k: int) -> str:
    """``array``'s value at flat position ``k`` and where it is, for a message."""
    value = array.reshape(-1)[k].item()
    if array.ndim == 0:
        return repr(value)
    where = np.unravel_index(k, array.shape)
    index = int(where[0]) if array.ndim == 1 else tuple(int(i) for i in where)
    return f"{value!r} (at index {index})"


class RecordEncoder:
    """Encodes a whole sample: one array, or a dict of fields (see :mod:`acumen.format.fields`).

    With ``fields=None`` the first sample decides: an array makes a one-array dataset, a
    dict makes one field per key (bytes values make ``bytes`` fields). Dtypes left open are
    fixed by the first sample too; :meth:`snapshot`/:meth:`restore` undo that when the
    sample is then refused.
    """

    def __init__(
        self,
        codec: Codec,
        dtype: Any = None,
        fields: list | None = None,
        safe_cast: bool | str = False,
    ) -> None:
        check_safe_cast(safe_cast)
        self.codec = codec
        self.safe_cast = safe_cast
        self.dtype = storage_dtype(dtype) if dtype is not None else None  # refused early
        self.fields = fields
        self._single: SampleEncoder | None = None
        self._encoders: list[SampleEncoder] = []
        self._decided = False
        if fields is not None:
            self._use_fields(fields)

    @property
    def multi_field(self) -> bool:
        return self.fields is not None

    @property
    def single(self) -> SampleEncoder | None:
        """The encoder of a one-array dataset (None until the first sample, or with fields)."""
        return self._single

    def _use_fields(self, fields: list) -> None:
        self.fields = fields
        self._encoders = [SampleEncoder(f.codec, f.dtype, self.safe_cast) for f in fields]
        self._decided = True

    def field_dtypes(self) -> list[np.dtype | None]:
        """The dtype of each field (one for a one-array dataset); None where still open."""
        if self._single is not None:
            return [self._single.dtype]
        if self._encoders:
            return [encoder.dtype for encoder in self._encoders]
        return [self.dtype]

    def snapshot(self) -> tuple:
        single_dtype = self._single.dtype if self._single is not None else None
        return (
            self._decided,
            self.fields,
            self._single,
            single_dtype,
            [e.dtype for e in self._encoders],
        )

    def restore(self, state: tuple) -> None:
        decided, fields, single, single_dtype, dtypes = state
        if single is not None:
            single.dtype = single_dtype
        if not decided:
            self._decided, self.fields, self._single, self._encoders = False, None, None, []
            return
        self.fields, self._single = fields, single
        for encoder, dtype in zip(self._encoders, dtypes, strict=False):
            encoder.dtype = dtype

    def codecs(self) -> list[Codec]:
        """The codec of each field (one for a one-array dataset), once decided."""
        if self._single is not None:
            return [self._single.codec]
        return [f.codec for f in self.fields or []]

    def train(self, samples: list[list[np.ndarray]]) -> None:
        """Let each codec that asks for it learn from prepared samples (a list per sample, a
        array per field); its resources are named ``codecs/<field>.`` (``codecs/data.``)."""
        if not samples:
            return
        names = [f.name for f in self.fields] if self.multi_field else ["data"]
        for k, (name, codec) in enumerate(zip(names, self.codecs(), strict=True)):
            if codec.training_samples():
                codec.train([arrays[k] for arrays in samples], f"codecs/{name}.")

    def encode(
        self, sample: Any, position: int | str
    ) -> tuple[list[Buffer], list[tuple[int, ...]]]:
        """Return the payload of each field and each field's shape."""
        arrays = self.prepare(sample, position)
        return self.encode_prepared(arrays, position), [a.shape for a in arrays]

    def encode_prepared(self, arrays: list[np.ndarray], position: int | str) -> list[Buffer]:
        if self._single is not None:
            return [self._single.encode_prepared(arrays[0], position)]
        return [
            encoder.encode_prepared(array, f"{position} field {field.name!r}")
            for field, encoder, array in zip(self.fields, self._encoders, arrays, strict=True)
        ]

    def prepare(self, sample: Any, position: int | str) -> list[np.ndarray]:
        """Check and cast every field of a sample, without encoding."""
        if not self._decided:
            self._decide(sample, position)
        if self._single is not None:
            if isinstance(sample, Mapping):
                raise SampleError(
                    f"sample {position}: a dict of fields, but this dataset holds one array "
                    "per sample (set by the first sample)"
                )
            return [self._single.prepare(sample, position)]
        return self._prepare_fields(sample, position)

    def _decide(self, sample: Any, position: int | str) -> None:
        if isinstance(sample, Mapping):
            self._use_fields(infer_field_specs(sample, self.codec, position))
        else:
            self._single = SampleEncoder(self.codec, self.dtype, self.safe_cast)
            self._decided = True

    def _prepare_fields(self, sample: Any, position: int | str) -> list[np.ndarray]:
        if not isinstance(sample, Mapping):
            raise SampleError(
                f"sample {position}: one array, but this dataset's samples are dicts of the "
                f"fields {[f.name for f in self.fields]}"
            )
        if sample.keys() != {f.name for f in self.fields}:
            names = {f.name for f in self.fields}
            raise SampleError(
                f"sample {position}: fields differ from the dataset's (missing "
                f"{sorted(names - sample.keys())}, unexpected {sorted(set(sample) - names)})"
            )
        arrays = []
        for field, encoder in zip(self.fields, self._encoders, strict=True):
            value = sample[field.name]
            label = f"{position} field {field.name!r}"
            if field.type == "bytes":
                if not isinstance(value, BYTES_TYPES):
                    raise SampleError(
                        f"sample {label}: a bytes field takes bytes, got {type(value).__name__}"
                    )
                value = np.frombuffer(memoryview(value).cast("B"), np.uint8)
            arrays.append(encoder.prepare(value, label))
        return arrays


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
