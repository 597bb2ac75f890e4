"""Where a dataset's chunk files are: each name's path inside the dataset, and its size.

Opening checks every chunk file the index names (present, a regular file, inside the
dataset), so this runs once per chunk file at every open and is kept to about one
``lstat`` each: a folder is resolved once for all the chunk files in it, and a folder many
chunk folders share (``chunks/``, where each append makes its own ``chunks/<token>/``) is
listed once instead of one ``lstat`` per chunk folder.
"""

from __future__ import annotations

import os
import stat
from collections import defaultdict
from pathlib import Path

import numpy as np

from acumen.errors import CorruptDatasetError, shorten
from acumen.files.local import stat_regular
from acumen.format.layout import resolve_inside

#: A folder holding at least this many of the chunk folders asked for is listed once.
LIST_AT = 16


def locate_chunks(root: Path, names: list[str]) -> tuple[list[str], np.ndarray]:
    """Each chunk name's path inside the dataset (``resolve_inside``), and the file's size
    (-1 when it is missing), with one ``lstat`` per chunk: a name ``DIR/FILE`` is inside
    when its folder resolves inside the dataset (resolved once per folder) and FILE is a
    regular file, not a link. A link, or any unusual name, gets the full ``resolve_inside``,
    and anything that is not a regular file (a FIFO, a device, a directory) is refused.
    """
    folders: dict[str, str] = {}
    _list_shared_folders(root, names, folders)
    paths: list[str] = []
    sizes = np.full(len(names), -1, dtype=np.int64)
    for k, name in enumerate(names):
        path = None
        head, _, tail = name.rpartition("/") if isinstance(name, str) else ("", "", "")
        if head and tail not in ("", ".", "..") and "\\" not in name and ":" not in tail:
            folder = _folder(root, head, folders)
            if folder:
                candidate = folder + os.sep + tail
                try:
                    info = os.lstat(candidate)
                except FileNotFoundError:
                    path = candidate
                except (OSError, ValueError):  # ValueError: a NUL byte; worded below
                    pass
                else:
                    if stat.S_ISREG(info.st_mode):
                        path, sizes[k] = candidate, info.st_size
        if path is None:
            path = str(resolve_inside(root, name, "chunk file"))
            try:
                sizes[k] = stat_regular(path, "chunk file").st_size
            except FileNotFoundError:
                pass
            except CorruptDatasetError:
                raise
            except OSError as error:  # a part of the name too long for the file system...
                raise CorruptDatasetError(
                    f"{shorten(path)}: chunk file cannot be looked up: {error.strerror}"
                ) from None
        paths.append(path)
    return paths, sizes


def _folder(root: Path, head: str, folders: dict[str, str]) -> str:
    """:func:`_folder_inside`, once per folder: ``folders`` keeps what it found."""
    folder = folders.get(head)
    if folder is None:
        folder = folders[head] = _folder_inside(root, head, folders)
    return folder


def _folder_inside(root: Path, head: str, folders: dict[str, str]) -> str:
    """The path of the chunk folder ``head`` if it resolves inside the dataset, else "": an
    append's ``chunks/<token>`` costs one ``lstat`` (a real folder in one that is inside)."""
    parent, _, leaf = head.rpartition("/")
    if parent and leaf not in ("", ".", ".."):
        above = _folder(root, parent, folders)
        if above:
            candidate = above + os.sep + leaf
            try:
                if stat.S_ISDIR(os.lstat(candidate).st_mode):
                    return candidate
            except (OSError, ValueError):
                pass
    try:
        return str(resolve_inside(root, head, "chunk file folder"))
    except CorruptDatasetError:  # reported by the caller as the full check words it
        return ""


def _list_shared_folders(root: Path, names: list[str], folders: dict[str, str]) -> None:
    """Into ``folders``: the chunk folders found real (not links) by one listing of the
    folder they share, when it holds at least :data:`LIST_AT` of them. What a listing does
    not show as a folder is left to :func:`_folder_inside`, which words the problem."""
    heads = {name.rpartition("/")[0] for name in names if isinstance(name, str)}
    shared: dict[str, list[str]] = defaultdict(list)
    for head in heads:
        parent, _, leaf = head.rpartition("/")
        if parent and leaf not in ("", ".", ".."):
            shared[parent].append(leaf)
    for parent, leaves in shared.items():
        if len(leaves) < LIST_AT:
            continue
        above = _folder(root, parent, folders)
        if not above:
            continue
        try:
            with os.scandir(above) as entries:
                real = {entry.name for entry in entries if entry.is_dir(follow_symlinks=False)}
        except OSError:
            continue
        for leaf in leaves:
            if leaf in real:
                folders[f"{parent}/{leaf}"] = above + os.sep + leaf
