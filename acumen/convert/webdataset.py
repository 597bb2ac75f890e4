"""``[source] webdataset = "shards/*.tar"``: webdataset tar shards, one item per key.

The shards are taken in sorted path order (a glob), and each one's members in tar order:
only the 512-byte headers are read here (a local tar file is seeked past each member's
data), so listing a shard costs little whatever its size. Consecutive members that share a
key (webdataset's convention: ``dir/000123.jpg``, ``dir/000123.cls``: the key is the path up
to the first dot of the file name, the extension the rest) make one item, a
:class:`~acumen.readers.webdataset.TarSample` that says where each member's bytes are; the
worker that writes the part reads them. A problem with a shard (not a tar file, compressed,
a member without an extension, a key split across the shard) names the shard and the member.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from acumen.errors import AcumenError
from acumen.readers.webdataset import TarSample

_NAME = re.compile(r"^((?:.*/|)[^./][^.]*)\.([^/]*)$")  # (key, extension), as webdataset splits


class ShardError(AcumenError, ValueError):
    """A shard that is not a webdataset shard: the message names it and the member."""


def shard_samples(path: Path, name: str) -> Iterator[TarSample]:
    """The samples of one shard, in order (``name``: the shard as errors show it)."""
    try:
        tar = tarfile.open(path, mode="r:")  # noqa: SIM115 (closed below)
    except tarfile.ReadError as error:
        compressed = path.suffix.lower() in (".gz", ".tgz", ".bz2", ".xz", ".zst")
        hint = (
            ": compressed shards cannot be read member by member; decompress them first"
            if compressed
            else ""
        )
        raise ShardError(f"{name}: not an uncompressed tar file ({error}){hint}") from None
    seen: set[str] = set()
    key: str | None = None
    members: list[tuple[str, int, int]] = []
    with tar:
        while True:
            try:
                info = tar.next()
            except tarfile.TarError as error:
                raise ShardError(f"{name}: damaged after {len(seen)} keys: {error}") from None
            if info is None:
                break
            tar.members = []  # (the tar keeps every header it read otherwise)
            if not info.isfile():
                continue
            found = _NAME.match(info.name)
            if found is None:
                raise ShardError(
                    f"{name}: member {info.name} has no extension: webdataset names its files "
                    "KEY.EXTENSION"
                )
            member_key, ext = found.group(1), found.group(2)
            if member_key != key:
                if key is not None:
                    yield TarSample(str(path), name, key, tuple(members))
                if member_key in seen:
                    raise ShardError(
                        f"{name}: member {info.name}: key {member_key!r} appears again after "
                        "other keys (a key's files must be consecutive in the shard)"
                    )
                seen.add(member_key)
                key, members = member_key, []
            if any(e == ext for e, _, _ in members):
                raise ShardError(f"{name}: member {info.name}: a second .{ext} for its key")
            members.append((ext, info.offset_data, info.size))
    if key is not None:
        yield TarSample(str(path), name, key, tuple(members))


def webdataset_items(
    shards: Iterator[str], root: Path, path_metadata: str | None
) -> Iterator[tuple[TarSample, dict[str, Any]]]:
    """Every shard's samples (``shards``: their paths, in order), with the shard's path
    relative to ``root`` as metadata ``path_metadata``."""
    for shard in shards:
        path = Path(shard)
        name = path.relative_to(root).as_posix() if path.is_relative_to(root) else shard
        metadata = {path_metadata: name} if path_metadata else {}
        for sample in shard_samples(path, name):
            yield sample, dict(metadata)
