"""The index-format contract: how the per-sample offset table is stored on disk."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from acumen.abc.plugin import Plugin

if TYPE_CHECKING:
    from acumen.format import ColumnSpec, IndexTable


class IndexFormat(Plugin, ABC):
    """Writes an :class:`~acumen.format.IndexTable` to one file and reads it back.

    ``read`` gets the metadata columns the manifest declares (``None`` for an original
    acumenindexer dataset, which declares none) so it can restore their types exactly.
    Any problem with the file is a :class:`acumen.errors.CorruptDatasetError` naming it.
    """

    #: The file name inside the dataset folder, e.g. ``index.csv``.
    filename: ClassVar[str]

    @abstractmethod
    def write(self, table: IndexTable, path: Path) -> None:
        """Write the whole index to ``path``."""

    @abstractmethod
    def read(self, path: Path, columns: Sequence[ColumnSpec] | None) -> IndexTable:
        """Read the index at ``path``."""
