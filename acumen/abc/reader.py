"""The reader contract: turns one source item (usually a file path) into a sample."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from acumen.abc.plugin import Plugin


class Reader(Plugin, ABC):
    """Reads one item for a conversion: ``read(item) -> (sample, metadata)``.

    ``sample`` is an array, or a dict of arrays and bytes (a sample with fields);
    ``metadata`` a dict of int/float/bool/str. Readers run in worker processes, so they
    must pickle (their configuration is enough). Raise any exception for an unreadable
    item: the conversion stops or skips it, naming the item and the error.
    """

    @abstractmethod
    def read(self, item: Any) -> tuple[Any, dict[str, Any]]:
        """The sample and metadata for one item."""
