"""acumen: many small samples in a few large chunk files, read back in O(1).

>>> import acumen
>>> with acumen.Writer("my_data", codec="zstd") as writer:
...     writer.add(array, label=3)
>>> ds = acumen.open("my_data")
>>> array, metadata = ds[0]
"""

from acumen._version import __version__
from acumen.convert import ConfigError, ConversionError, convert
from acumen.errors import (
    AcumenError,
    ArgumentConflictError,
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
from acumen.write.split import split_into_chunks
from acumen.write.writer import Writer

__all__ = [
    "AcumenError",
    "ArgumentConflictError",
    "ConfigError",
    "ConversionError",
    "CorruptDatasetError",
    "Dataset",
    "DatasetExistsError",
    "DatasetNotFoundError",
    "DatasetWriteError",
    "IncompleteDatasetError",
    "ManifestError",
    "PluginConflictError",
    "PluginLoadError",
    "PluginNotFoundError",
    "SampleError",
    "Writer",
    "__version__",
    "convert",
    "open",
    "split_into_chunks",
]
