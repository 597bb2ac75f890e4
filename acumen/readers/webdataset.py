"""``webdataset``: a webdataset sample (the files of one key in a tar shard) as a sample with
fields, named by extension, and metadata, following webdataset's own decoding conventions.

- Labels (``cls``, ``cls2``, ``class``, ``count``, ``index``, ``inx``, ``id``): an int
  metadata value named by the extension. Text (``txt``, ``text``, ``transcript``): a str
  metadata value. JSON (``json``, ``jsn``): its top-level keys become metadata (lists and
  objects as JSON text).
- Images (``jpg``, ``jpeg``, ``png``, ``ppm``, ``pgm``, ``pbm``, ``pnm``, ``webp``, ``bmp``,
  ``tif``, ``tiff``, ``gif``): a bytes field holding the encoded file as it is in the shard,
  or, with ``decode_images``, a uint8 array decoded by Pillow (``true``: each image's own
  mode; ``"L"``, ``"RGB"``, ``"RGBA"``: converted to it).
- ``npy``: an array field (never unpickled). Anything else (``wav``, ``pth``, ``pyd``...):
  a bytes field, kept as it is: nothing is unpickled or run.

Every sample also gets its ``key``. ``ignore`` lists extensions to leave out. The items are
:class:`TarSample` s, made by the ``webdataset`` source (:mod:`acumen.convert.webdataset`):
the shard, the key and where each member's bytes are; the worker reads them.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

from acumen.abc.reader import Reader
from acumen.format.fields import check_field_name

LABELS = frozenset({"cls", "cls2", "class", "count", "index", "inx", "id"})
TEXTS = frozenset({"txt", "text", "transcript"})
JSONS = frozenset({"json", "jsn"})
IMAGES = frozenset(
    {"jpg", "jpeg", "png", "ppm", "pgm", "pbm", "pnm", "webp", "bmp", "tif", "tiff", "gif"}
)


class TarSample:
    """One webdataset sample: ``key`` in the tar file ``shard`` (``name``: as shown in
    errors), and each member's extension, data offset and size in the shard."""

    __slots__ = ("key", "members", "name", "shard")

    def __init__(
        self, shard: str, name: str, key: str, members: tuple[tuple[str, int, int], ...]
    ) -> None:
        self.shard = shard
        self.name = name
        self.key = key
        self.members = members

    def __repr__(self) -> str:
        return f"key {self.key!r} in {self.name}"

    def __reduce__(self) -> tuple:
        return (TarSample, (self.shard, self.name, self.key, self.members))

    @property
    def extensions(self) -> list[str]:
        return [ext for ext, _, _ in self.members]

    def read(self) -> dict[str, bytes]:
        """``{extension: bytes}`` of every member, in one read of the shard."""
        first = self.members[0][1]
        last = max(offset + size for _, offset, size in self.members)
        with open(self.shard, "rb") as file:  # (a few µs: no handle is kept open)
            file.seek(first)
            data = file.read(last - first)
        if len(data) != last - first:
            raise ValueError(f"{self.name} is shorter than when it was listed (truncated?)")
        return {ext: data[o - first : o - first + n] for ext, o, n in self.members}


class WebDatasetReader(Reader):
    name = "webdataset"

    def __init__(self, decode_images: bool | str = False, ignore: list[str] | None = None) -> None:
        if decode_images not in (False, True, "L", "RGB", "RGBA"):
            raise ValueError(
                f"decode_images must be false, true, 'L', 'RGB' or 'RGBA', got {decode_images!r}"
            )
        self.decode_images = decode_images
        self.ignore = list(ignore or [])
        self._image = None
        if decode_images:
            from acumen.readers.image import ImageReader

            self._image = ImageReader(None if decode_images is True else decode_images)

    @property
    def configuration(self) -> dict:
        return {"decode_images": self.decode_images, "ignore": self.ignore}

    def read(self, item: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        if not isinstance(item, TarSample):
            raise TypeError(
                f"the webdataset reader reads a webdataset source's samples, not "
                f"{type(item).__name__}"
            )
        fields: dict[str, Any] = {}
        metadata: dict[str, Any] = {"key": item.key}
        for ext, data in item.read().items():
            if ext in self.ignore:
                continue
            member = f"member {item.key}.{ext}"
            try:
                self._add(ext, data, fields, metadata, member)
            except ValueError as error:
                raise ValueError(f"{member}: {error}") from None
        if not fields:
            raise ValueError(
                f"key {item.key!r} has no data, only metadata ({', '.join(item.extensions)})"
            )
        return fields, metadata

    def _add(
        self, ext: str, data: bytes, fields: dict, metadata: dict[str, Any], member: str
    ) -> None:
        kind = ext.rsplit(".", 1)[-1].lower()
        if kind in LABELS:
            text = data.decode("utf-8", "replace").strip()
            try:
                _put(metadata, ext, int(text))
            except ValueError:
                raise ValueError(f"{text[:40]!r} is not an int label") from None
        elif kind in TEXTS:
            _put(metadata, ext, data.decode("utf-8"))
        elif kind in JSONS:
            found = json.loads(data)
            if not isinstance(found, dict):
                raise ValueError(f"holds JSON {type(found).__name__}, not an object of metadata")
            for name, value in found.items():
                if value is None:
                    raise ValueError(f"key {name!r} is null: metadata values cannot be null")
                if isinstance(value, (list, dict)):
                    value = json.dumps(value)
                _put(metadata, name, value)
        elif kind in IMAGES and self._image is not None:
            fields[check_field_name(ext)] = self._image.read(io.BytesIO(data))[0]
        elif kind == "npy":
            fields[check_field_name(ext)] = np.load(io.BytesIO(data), allow_pickle=False)
        else:
            fields[check_field_name(ext)] = data


def _put(metadata: dict[str, Any], name: str, value: Any) -> None:
    if name in metadata:
        raise ValueError(f"gives metadata {name!r}, which another member (or the key) gave")
    metadata[name] = value
