"""acumen: many small samples in a few large chunk files, read back in O(1).

>>> import acumen
>>> with acumen.Writer("my_data", codec="zstd") as writer:
...     writer.add(array, label=3)
>>> ds = acumen.open("my_data")
>>> array, metadata = ds[0]

``import acumen`` stays light (every DataLoader worker pays for it): what only writes
(``acumen.Writer``, ``acumen.split_into_chunks``, ``acumen.concat``), ``acumen.open_many``,
``acumen.Mixture``, ``acumen.shuffle_report``, ``acumen.chunk_shuffle_order`` and conversion
(``acumen.convert``, ``acumen.ConfigError``, ``acumen.ConversionError``) load on first use.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from acumen._version import __version__
from acumen.errors import (
    AcumenError,
    ArgumentConflictError,
    CommitConflictError,
    CorruptDatasetError,
    DatasetExistsError,
    DatasetNotFoundError,
    DatasetWriteError,
    IncompleteDatasetError,
    ManifestError,
    PluginConflictError,
    PluginLoadError,
    PluginNotFoundError,
    SampleError,
)
from acumen.read.dataset import Dataset
from acumen.read.opening import open_dataset as open

if TYPE_CHECKING:
    from acumen.convert import ConfigError, ConversionError, convert
    from acumen.read.many import ConcatDataset, open_many
    from acumen.read.mixture import Mixture
    from acumen.read.order import chunk_shuffle_order
    from acumen.read.shuffle_report import ShuffleReport, shuffle_report
    from acumen.versions.compact import compact
    from acumen.versions.concat import concat
    from acumen.versions.delete import delete
    from acumen.versions.vacuum import vacuum
    from acumen.write.split import split_into_chunks
    from acumen.write.writer import Writer

__all__ = [
    "AcumenError",
    "ArgumentConflictError",
    "CommitConflictError",
    "ConcatDataset",
    "ConfigError",
    "ConversionError",
    "CorruptDatasetError",
    "Dataset",
    "DatasetExistsError",
    "DatasetNotFoundError",
    "DatasetWriteError",
    "IncompleteDatasetError",
    "ManifestError",
    "Mixture",
    "PluginConflictError",
    "PluginLoadError",
    "PluginNotFoundError",
    "SampleError",
    "ShuffleReport",
    "Writer",
    "__version__",
    "chunk_shuffle_order",
    "compact",
    "concat",
    "convert",
    "delete",
    "open",
    "open_many",
    "shuffle_report",
    "split_into_chunks",
    "vacuum",
]

# Loaded on first use (PEP 562): the module that defines each name.
_LAZY = {
    "ConcatDataset": "acumen.read.many",
    "ConfigError": "acumen.convert.config",
    "ConversionError": "acumen.convert.parts",
    "chunk_shuffle_order": "acumen.read.order",
    "Mixture": "acumen.read.mixture",
    "concat": "acumen.versions.concat",
    "convert": "acumen.convert.run",
    "open_many": "acumen.read.many",
    "shuffle_report": "acumen.read.shuffle_report",
    "ShuffleReport": "acumen.read.shuffle_report",
    "split_into_chunks": "acumen.write.split",
    "Writer": "acumen.write.writer",
    "compact": "acumen.versions.compact",
    "delete": "acumen.versions.delete",
    "vacuum": "acumen.versions.vacuum",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    if name != "convert":  # ``convert`` is the _Package property's
        globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """acumen's module type: ``acumen.convert`` is the function, never the subpackage.

    Importing the subpackage ``acumen.convert`` (``from acumen.convert import load_config``)
    makes the import system set the package's attribute ``convert`` to that subpackage;
    eagerly importing it in this file used to rebind the name to the function afterwards. Now
    that it loads lazily, this property keeps ``acumen.convert`` the function whatever was
    imported first, and a value someone sets (a test's monkeypatch) still wins.
    """

    @property
    def convert(self) -> Any:
        if "convert" in self.__dict__:
            return self.__dict__["convert"]
        return __getattr__("convert")

    @convert.setter
    def convert(self, value: Any) -> None:
        if isinstance(value, types.ModuleType) and value.__name__ == "acumen.convert":
            return  # the import system binding the subpackage; the name stays the function
        self.__dict__["convert"] = value

    @convert.deleter
    def convert(self) -> None:
        self.__dict__.pop("convert", None)


sys.modules[__name__].__class__ = _Package
