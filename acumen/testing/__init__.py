"""A conformance kit for plugin authors: subclass, set one attribute, get the whole suite.

::

    from acumen.testing import CodecTests

    class TestMyCodec(CodecTests):
        codec_class = MyCodec
        configurations = [{}, {"level": 9}]

There is one class per plugin kind: :class:`CodecTests`, :class:`StorageTests`,
:class:`IndexFormatTests` and :class:`ReaderTests`. acumen's own plugins are tested through
these same classes. Needs pytest.
"""

from acumen.testing.codec_tests import CodecTests
from acumen.testing.index_format_tests import IndexFormatTests
from acumen.testing.reader_tests import ReaderTests
from acumen.testing.storage_tests import StorageTests

__all__ = ["CodecTests", "IndexFormatTests", "ReaderTests", "StorageTests"]
