"""The contracts every plugin implements: codec, storage backend, index format, reader.

The core only ever talks to these classes, never to a concrete plugin.
"""

from acumen.abc.codec import Codec
from acumen.abc.index_format import IndexFormat
from acumen.abc.plugin import Plugin
from acumen.abc.reader import Reader
from acumen.abc.storage import Storage

__all__ = ["Codec", "IndexFormat", "Plugin", "Reader", "Storage"]
