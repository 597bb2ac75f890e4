"""Index segments merged as a dataset grows by appends, so that opening stays cheap.

Each append adds one segment; left alone, a dataset appended to a thousand times would
read a thousand index files at every open. Segments are instead kept in tiers, as in a
log-structured merge tree: a segment's tier is ``floor(log_FANOUT(rows))``, and when an
append leaves ``FANOUT`` segments at the end of the list whose tier is at most the last
one's, they are merged into one segment (of the next tier, which may cascade) in the same
commit. A dataset of n rows then has at most ``(FANOUT - 1)`` segments per tier, O(log n)
in all, and each row is rewritten once per tier it climbs: O(log n) times, amortized over
the appends. The version's first segment (usually the first write, the big one) is never
merged; nothing is rewritten in place: the merged segment is a new file, the small ones
stay for the older versions that name them (until ``acumen vacuum``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from acumen.errors import CorruptDatasetError
from acumen.format.checksums import file_checksum
from acumen.format.index_concat import concat_tables
from acumen.format.index_table import IndexTable
from acumen.format.layout import resolve_inside
from acumen.format.manifest import Manifest
from acumen.format.versions import Segment
from acumen.index_formats.segments import read_segment

#: Segments of one tier that are merged into one of the next.
FANOUT = 8


def tier(rows: int) -> int:
    """The tier of a segment of ``rows`` rows: segments of one tier differ at most FANOUT x."""
    return int(math.log(max(rows, 1), FANOUT) + 1e-9)


def merge_span(rows: Sequence[int], fanout: int = FANOUT) -> int:
    """How many of the last segments (of ``rows`` each) to merge into one: 0 for none. The
    first segment is never part of a merge."""
    groups = [[n] for n in rows[1:]]  # each group becomes one segment
    while len(groups) >= fanout:
        last = tier(sum(groups[-1]))
        run = 0
        for group in reversed(groups):
            if tier(sum(group)) > last:
                break
            run += 1
        if run < fanout:
            break
        merged = [n for group in groups[-run:] for n in group]
        groups[-run:] = [merged]
    span = len(groups[-1]) if groups else 0
    return span if span > 1 else 0


def merged_table(
    root: Path, newest: Manifest, older: Sequence[Segment], table: IndexTable, index_format: Any
) -> IndexTable:
    """The rows of the ``older`` segments of ``newest`` (each checked against its checksum:
    a damaged segment is never copied into a new one) followed by ``table``'s."""
    tables = []
    for segment in older:
        path = resolve_inside(root, segment.file, "index segment")
        expected = newest.files.get(segment.file)
        if expected is None or file_checksum(path, "index segment") != expected:
            raise CorruptDatasetError(
                f"{path}: index segment differs from the checksum its version records (or it "
                "has none): run `acumen verify`; nothing of this append was committed"
            )
        tables.append(read_segment(root, newest, segment, index_format))
    tables.append(table)
    field_names = [entry["name"] for entry in newest.fields] if newest.fields else None
    return concat_tables(tables, field_names, [s.file for s in older] + ["this append"])
