"""``bytes``: a file's bytes kept as they are (an encoded JPEG, a WAV), in one bytes field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from acumen.abc.reader import Reader
from acumen.format.fields import check_field_name


class BytesReader(Reader):
    name = "bytes"

    def __init__(self, field: str = "data") -> None:
        self.field = check_field_name(field)

    @property
    def configuration(self) -> dict:
        return {"field": self.field}

    def read(self, item: Any) -> tuple[dict[str, bytes], dict[str, Any]]:
        if hasattr(item, "read"):  # a file object: an item at a URL, fetched
            return {self.field: bytes(item.read())}, {}
        return {self.field: Path(item).read_bytes()}, {}
