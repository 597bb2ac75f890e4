"""The contracts every plugin implements: codec, storage backend, index format.

The core only ever talks to these classes, never to a concrete plugin.
"""

from acumen.abc.codec import Codec
from acumen.abc.index_format import IndexFormat
from acumen.abc.plugin import Plugin
from acumen.abc.storage import Storage

__all__ = ["Codec", "IndexFormat", "Plugin", "Storage"]
