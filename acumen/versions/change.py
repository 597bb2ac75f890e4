"""What a delete and a compaction share: the claim they hold, the files they write, the
rule for a commit that landed first.

An operation writes only new files, named by a token of its own (``_deletions/<token>.npy``,
``_index/<token>.<ext>``, ``chunks/<token>/``), while ``_writers/<token>/`` holds its claim
so that ``acumen vacuum`` leaves those files alone. It commits with
:func:`acumen.write.versioning.commit_change`; when it fails before its version is
committed, its files go and so does its claim. A process killed mid-way leaves its claim
behind, dead: ``vacuum`` then removes the claim and the token's files.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acumen.errors import CommitConflictError
from acumen.files.claim import Claim, claim_new_folder
from acumen.files.remote import is_url, local_path
from acumen.format.index_table import IndexTable
from acumen.format.layout import MANIFEST_FILE
from acumen.format.manifest import Manifest
from acumen.format.version_files import load_version
from acumen.format.versions import DELETIONS_DIR, SEGMENTS_DIR, list_versions, new_token
from acumen.write.append import WRITERS_DIR, release_claim, write_new_file
from acumen.write.versioning import as_versioned, index_plugin_of, newest_manifest


def dataset_root(path: str | os.PathLike[str], command: str) -> Path:
    """The folder of the local dataset at ``path`` (its folder or its manifest)."""
    if is_url(path):
        raise ValueError(f"{path}: acumen {command} changes local datasets only, for now")
    root = Path(local_path(path))
    if root.is_file() and root.name == MANIFEST_FILE:
        root = root.parent
    return root


@dataclass
class Operation:
    """A delete or a compaction under way: the version it started from, its token, its
    claim (held in ``_writers/<token>/``), the dataset's index format."""

    root: Path
    base: Manifest
    token: str
    claim: Claim
    index_format: Any

    @classmethod
    def start(cls, root: Path, kind: str, newest: Manifest | None = None) -> Operation:
        """Claim a token, then take the newest version (made version 1 if the dataset never
        changed): a version committed after the claim is one ``vacuum`` leaves alone."""
        token = new_token()
        claim = claim_new_folder(root / WRITERS_DIR / token, kind)
        try:
            newest = newest_manifest(root) if newest is None else newest
            index_format = index_plugin_of(newest, root)
            base = as_versioned(root, newest, index_format)
        except BaseException:
            release_claim(claim)
            raise
        return cls(root, base, token, claim, index_format)

    @property
    def version(self) -> int:
        return self.base.versioned.version  # type: ignore[union-attr]

    @property
    def chunk_folder(self) -> str:
        return f"chunks/{self.token}"

    @property
    def deletion_file(self) -> str:
        return f"{DELETIONS_DIR}/{self.token}.npy"

    @property
    def segment_file(self) -> str:
        return f"{SEGMENTS_DIR}/{self.token}.{self.index_format.filename.rsplit('.', 1)[1]}"

    def write_bytes(self, name: str, data: bytes) -> str:
        """``data`` as the new file ``name`` (fsynced, renamed into place); its checksum."""

        def write(temporary: Path) -> None:
            with open(temporary, "wb") as file:
                file.write(data)

        return self._write_file(name, write, "deletion vector")

    def write_segment(self, table: IndexTable) -> tuple[str, str]:
        """``table`` as this operation's index segment; (its name, its checksum)."""
        name = self.segment_file
        return name, self._write_file(
            name, lambda temporary: self.index_format.write(table, temporary), "index segment"
        )

    def _write_file(self, name: str, write: Any, what: str) -> str:
        return write_new_file(self.root, name, write, what)

    def finish(self) -> None:
        """Committed (or nothing to commit): the claim goes."""
        release_claim(self.claim)

    def fail(self) -> None:
        """Something went wrong: unless a version names them (the commit landed before the
        error), this operation's files go, then its claim. What cannot be removed stays for
        ``vacuum``, with the claim (a dead one, once this process ends)."""
        if self._committed():
            release_claim(self.claim)
            return
        try:
            shutil.rmtree(self.root / self.chunk_folder, ignore_errors=False)
        except FileNotFoundError:
            pass
        except OSError:
            self.claim.abandon()
            return
        for folder in (DELETIONS_DIR, SEGMENTS_DIR):
            for path in (self.root / folder).glob(f"*{self.token}*"):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        release_claim(self.claim)

    def _committed(self) -> bool:
        """Whether a version after the base names a file of this operation."""
        for number in list_versions(self.root):
            if number <= self.version:
                continue
            with contextlib.suppress(Exception):  # unreadable: not ours to judge here
                manifest = load_version(self.root, number)
                if any(self.token in name for name in manifest.files):
                    return True
        return False


def operations_since(root: Path, base: int, newest: int) -> list[tuple[int, str]]:
    """(version, operation) of every version after ``base`` up to ``newest``."""
    return [
        (n, load_version(root, n).versioned.operation)  # type: ignore[union-attr]
        for n in range(base + 1, newest + 1)
    ]


def require_only_appends(root: Path, what: str, base: int, newest: Manifest) -> None:
    """Positions of ``base`` hold in ``newest`` only if every version since only appended;
    else a :class:`CommitConflictError` naming both versions and what landed."""
    number = newest.versioned.version  # type: ignore[union-attr]
    others = [(n, op) for n, op in operations_since(root, base, number) if op != "append"]
    if others:
        landed = ", ".join(f"version {n} ({op})" for n, op in others)
        raise CommitConflictError(
            f"{root}: {what} was made on version {base}, but {landed} landed meanwhile "
            f"(newest: version {number}): sample positions changed; nothing was committed: "
            "run it again on the newest version"
        )
