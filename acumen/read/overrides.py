"""``acumen.open``'s ``dtype=``, ``codec=`` / ``use_gzip=`` and ``index_format=``.

They exist for original acumenindexer datasets, which record none of it. A dataset with a
manifest says how to read it, so there an explicit value must agree with the manifest (and
then changes nothing) or is refused with an :class:`ArgumentConflictError` that says what
the manifest holds and how to convert: read bytes as another type would be silently
wrong, and a codec's error on sound data would read as damage.

Agreement is judged on what changes reading: dtypes by ``np.dtype`` equality (byte order
as stored), plugins by name, and by :attr:`Plugin.reading_configuration` when a
configuration is given (a zstd level does not matter to decoding, a dictionary does).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from acumen import plugins
from acumen.abc.plugin import Plugin
from acumen.errors import ArgumentConflictError, quote
from acumen.format.dtypes import storage_dtype
from acumen.plugins import PluginSpec


@dataclass(frozen=True)
class OpenOverrides:
    """What the caller of ``acumen.open`` said about reading (None: nothing)."""

    dtype: Any = None
    codec: PluginSpec | None = None
    index_format: PluginSpec | None = None
    use_gzip: bool | None = None

    @classmethod
    def given(
        cls,
        dtype: Any = None,
        codec: PluginSpec | None = None,
        use_gzip: bool | None = None,
        index_format: PluginSpec | None = None,
    ) -> OpenOverrides:
        """The arguments as given; ``use_gzip`` is the original's flag for a codec."""
        if use_gzip is not None:
            implied = "gzip" if use_gzip else "raw"
            if codec is not None and spec_name(codec) != implied:
                raise ValueError(
                    f"use_gzip={use_gzip} contradicts codec={spec_name(codec)!r}; give one of them"
                )
            codec = codec if codec is not None else implied
        if dtype is not None:
            storage_dtype(dtype)  # a dtype that is none is the caller's error, here
        return cls(dtype, codec, index_format, use_gzip)

    # --- original datasets: the arguments are all there is -----------------------------
    def original_codec(self) -> Plugin:
        return plugins.codec(self.codec if self.codec is not None else "raw")

    def original_index_format(self) -> Plugin:
        return plugins.index_format(self.index_format if self.index_format is not None else "csv")

    # --- datasets with a manifest: the arguments must agree with it --------------------
    def check_index_format(self, root: Path, held: Plugin, file: str) -> None:
        if self.index_format is None or agrees(self.index_format, held, plugins.index_format):
            return
        name = spec_name(self.index_format)
        raise conflict(
            root,
            f"index_format={quote(self.index_format)}",
            f"index format {quote(held.name)}{_configured(held)} (in {file})",
            f"open it without index_format=; to rewrite the index as {name}: "
            f"acumen recode {root} DESTINATION --index {name}",
        )

    def check_array(self, root: Path, dtype: np.dtype, codec: Plugin) -> None:
        """A one-array dataset: the manifest's dtype and codec."""
        if self.dtype is not None and storage_dtype(self.dtype) != dtype:
            wanted = storage_dtype(self.dtype)
            raise conflict(
                root,
                f"dtype={quote(_dtype_text(self.dtype))}",
                f"dtype {dtype}",
                f"open it without dtype= and convert what you read: ds.read(i).astype('{wanted}')",
            )
        if self.codec is not None and not agrees(self.codec, codec, plugins.codec):
            raise self._codec_conflict(root, f"codec {quote(codec.name)}{_configured(codec)}")

    def check_fields(self, root: Path, fields: Sequence[Any]) -> None:
        """A multi-field dataset: each field holds its own dtype and codec (``FieldReader``)."""
        if self.dtype is not None:
            wanted = storage_dtype(self.dtype)
            others = [f for f in fields if f.dtype != wanted]
            if others:
                raise conflict(
                    root,
                    f"dtype={quote(_dtype_text(self.dtype))}",
                    ", ".join(f"field {f.name!r} holds dtype {f.dtype}" for f in others)
                    + " (each field has its own dtype and codec)",
                    "open it without dtype= and convert what you read: "
                    f"ds.read(i)[{others[0].name!r}].astype('{wanted}')",
                )
        if self.codec is not None:
            others = [f for f in fields if not agrees(self.codec, f.codec, plugins.codec)]
            if others:
                raise self._codec_conflict(
                    root,
                    ", ".join(
                        f"field {f.name!r} holds codec {quote(f.codec.name)}{_configured(f.codec)}"
                        for f in others
                    ),
                )

    def _codec_conflict(self, root: Path, holds: str) -> ArgumentConflictError:
        name = spec_name(self.codec)
        argument, value = ("codec", quote(self.codec))
        if self.use_gzip is not None:
            argument, value = ("use_gzip", str(self.use_gzip))
        return conflict(
            root,
            f"{argument}={value}",
            holds,
            f"open it without {argument}= (the manifest says how to read it); for a copy in "
            f"{name}: acumen recode {root} DESTINATION --codec {name}",
        )


def spec_name(spec: PluginSpec) -> str | None:
    """The plugin name a spec gives: a name, a config's ``name``, an instance's."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, Mapping):
        name = spec.get("name")
        return name if isinstance(name, str) else None
    return getattr(spec, "name", None)


def agrees(given: PluginSpec, held: Plugin, make: Callable[[PluginSpec], Plugin]) -> bool:
    """Does ``given`` read as ``held`` does? A name (or a config without ``configuration``)
    agrees by name; a configuration or an instance must also agree on what changes reading."""
    if spec_name(given) != held.name:
        return False
    if isinstance(given, str) or (isinstance(given, Mapping) and "configuration" not in given):
        return True
    return make(given).reading_configuration == held.reading_configuration


def conflict(root: Path, given: str, holds: str, remedy: str) -> ArgumentConflictError:
    return ArgumentConflictError(
        f"{root}: {given} disagrees with its manifest, which holds {holds}; {remedy}"
    )


def _configured(plugin: Plugin) -> str:
    return f" {quote(plugin.configuration)}" if plugin.configuration else ""


def _dtype_text(dtype: Any) -> str:
    return dtype if isinstance(dtype, str) else str(np.dtype(dtype))
