"""A damaged or hostile ``index.arrow`` is an acumen error, never a crash inside pyarrow.

The ``arrow`` index is used in place of its memory map, so whatever of it is read without a
copy (text offsets, dictionary codes, the buffers' extents) must be checked before a value
is read through it. Two kinds of test show it:

* a sweep of single-bit flips over the whole file of two small datasets (one bit of every
  byte, every bit of every buffer of offsets or codes), each flipped file used in every way
  that reads the index (``ds[i]``, ``read``, ``metadata``, iteration, batches, views,
  ``ds.index``, ``check_index``, pickling, ``acumen.verify``) in a child process
  (``tests/arrow_flip_helpers.py``), so that a segfault is a signal the test sees;
* hand-made files with the damage named: text offsets decreasing or past their bytes,
  dictionary codes outside the dictionary, dictionary text offsets broken, validity bitmaps
  and buffers shorter than the declared length, a record batch longer than its buffers, a
  truncated file.

A flip inside a value's own bytes (an int's payload, a letter of a text) can only be seen by
a checksum of the index file; the sweep counts those (``different``) and does not fail on
them. ``ACUMEN_EVERY_BIT=1`` sweeps every bit of both files (minutes, for a report).
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

import acumen
from acumen.errors import CorruptDatasetError
from acumen.format import CHUNK_COLUMN
from acumen.index_formats.arrow_text import ArrowStringColumn
from acumen.read.index_checks import BLOCK
from acumen.verify import verify
from tests.dataset_edits import reseal

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO), "ACUMEN_PLUGINS": "builtin"}
NAMES = ["a", "bb", "ccc", "", "dddd", "é"]


def _varying(root: Path) -> None:
    """Six samples of one varying axis in two chunk files; int, float, str, bool metadata."""
    rng = np.random.default_rng(0)
    with acumen.Writer(root, index_format="arrow", durable=False, chunk_size_bytes=40) as writer:
        for i in range(6):
            array = rng.integers(0, 255, size=(2 + i % 3, 3), dtype=np.uint8)
            writer.add(array, label=7 * i - 3, score=i / 3, name=NAMES[i], ok=bool(i % 2))


def _ragged(root: Path) -> None:
    """Five samples whose number of dimensions varies (a list column with offsets)."""
    rng = np.random.default_rng(1)
    with acumen.Writer(root, index_format="arrow", durable=False) as writer:
        for i, shape in enumerate([(3,), (2, 2), (1, 2, 2), (4,), (2, 1)]):
            writer.add(rng.integers(0, 255, size=shape, dtype=np.uint8), name="x" * i)


DATASETS = {"varying": _varying, "ragged": _ragged}


def _in_place_buffers(path: Path) -> list[tuple[int, int]]:
    """(start, end) in the file of each buffer of offsets or codes: text and list offsets,
    dictionary codes and the dictionary's text offsets."""
    found = []
    with pa.memory_map(str(path)) as mapped:
        base = mapped.read_buffer().address
        mapped.seek(0)
        batch = ipc.open_file(mapped).get_batch(0)

        def visit(array: pa.Array) -> None:
            kind = array.type
            if pa.types.is_dictionary(kind):
                found.append(array.buffers()[1])
                visit(array.dictionary)
            elif pa.types.is_string(kind) or pa.types.is_large_list(kind):
                found.append(array.buffers()[1])

        for column in batch.columns:
            visit(column)
        return [(b.address - base, b.address - base + b.size) for b in found if b is not None]


def _flips(path: Path) -> list[tuple[int, int]]:
    """One bit of every byte (bit ``position % 8``: each bit in turn along the file) and
    every bit of the buffers used in place as offsets or codes; every bit of every byte
    with ``ACUMEN_EVERY_BIT=1``."""
    size = path.stat().st_size
    if os.environ.get("ACUMEN_EVERY_BIT") == "1":
        return [(p, 1 << b) for p in range(size) for b in range(8)]
    flips = {(p, 1 << (p % 8)) for p in range(size)}
    for start, end in _in_place_buffers(path):
        flips |= {(p, 1 << b) for p in range(start, end) for b in range(8)}
    return sorted(flips)


Result = tuple[int, int, str, str]  # position, mask, outcome, detail


def _sweep(clean: Path, work: Path, flips: list[tuple[int, int]]) -> list[Result]:
    """Each flip's (position, mask, outcome, detail), from children that go on after a
    crash with the next flip; a child killed by a signal marks its flip ``crash``, one that
    runs out of time ``hang``."""
    results: list[Result] = []
    todo = list(flips)
    while todo:
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(clean, work)
        spec = json.dumps({"work": str(work), "flips": todo})
        try:
            done = subprocess.run(
                [sys.executable, "-m", "tests.arrow_flip_helpers"],
                input=spec,
                cwd=REPO,
                env=ENV,
                capture_output=True,
                text=True,
                timeout=300,
            )
            stdout, code, stderr = done.stdout, done.returncode, done.stderr
        except subprocess.TimeoutExpired as expired:
            stdout, code, stderr = (expired.stdout or b"").decode(), "hang", ""
        lines = [line.split(" ", 4)[1:] for line in stdout.splitlines() if line.startswith("FLIP ")]
        results += [(int(p), int(m), outcome, detail) for p, m, outcome, detail in lines]
        todo = todo[len(lines) :]
        if todo and code == 0:
            raise AssertionError(f"the child stopped early without a crash: {stderr[-2000:]}")
        if todo:
            position, mask = todo.pop(0)
            results.append((position, mask, "crash" if code != "hang" else "hang", f"{code}"))
    return results


def _sweep_on_two_cores(clean: Path, work: Path, flips: list[tuple[int, int]]) -> list[Result]:
    """:func:`_sweep` of every other flip in each of two children at once."""

    def half(k: int) -> list[Result]:
        return _sweep(clean, work.with_name(f"{work.name}{k}"), flips[k::2])

    with ThreadPoolExecutor(2) as pool:
        return sorted(result for part in pool.map(half, [0, 1]) for result in part)


@pytest.mark.parametrize("kind", list(DATASETS))
def test_no_bit_flip_of_an_arrow_index_crashes_or_escapes(tmp_path: Path, kind: str) -> None:
    """Every flipped file gives the clean answers, an acumen error naming the dataset, or
    (a value's own bytes flipped) different values: never a crash, never another error."""
    clean = tmp_path / kind
    DATASETS[kind](clean)
    flips = _flips(clean / "index.arrow")
    results = _sweep_on_two_cores(clean, tmp_path / "work", flips)
    assert len(results) == len(flips)
    counts = Counter(outcome for _, _, outcome, _ in results)
    bad = [r for r in results if r[2] not in ("same", "error", "different")]
    print(f"{kind}: {len(flips)} flips: {dict(counts)}")
    assert not bad, f"{len(bad)} of {len(flips)} crashed or escaped ({dict(counts)}): {bad[:8]}"


# --- hand-made damage -------------------------------------------------------------------

BLOCK_ROWS = BLOCK + 8  # past the first block: opening does not check these rows
BAD = BLOCK + 3


def _long(root: Path) -> list[str]:
    """A dataset of ``BLOCK_ROWS`` one-byte samples with a text column; its texts."""
    texts = [f"t{i % 100}" for i in range(BLOCK_ROWS)]
    with acumen.Writer(root, index_format="arrow", durable=False) as writer:
        for i, text in enumerate(texts):
            writer.add(np.array([i % 256], np.uint8), name=text)
    return texts


def _batch(root: Path) -> pa.RecordBatch:
    """The index's record batch, read into memory (not mapped: the file is rewritten)."""
    return ipc.open_file(pa.py_buffer((root / "index.arrow").read_bytes())).get_batch(0)


def _replace(root: Path, name: str, array: pa.Array) -> None:
    """Rewrite index.arrow with column ``name`` replaced; pyarrow's writer keeps the
    buffers as they are, damage included."""
    batch = _batch(root)
    names = batch.schema.names
    columns = [array if n == name else c for n, c in zip(names, batch.columns, strict=True)]
    batch = pa.RecordBatch.from_arrays(columns, schema=batch.schema)
    with (
        pa.OSFile(str(root / "index.arrow"), "wb") as sink,
        ipc.new_file(sink, batch.schema) as writer,
    ):
        writer.write_batch(batch)
    reseal(root)  # valid checksums, as a hostile author writes them: the row checks must tell


def _text_with_offsets(column: pa.Array, edit: dict[int, int]) -> pa.Array:
    """``column`` (string) with the offsets at the given positions set, bytes unchanged."""
    _, offsets, data = column.buffers()
    values = np.frombuffer(offsets, np.int32)[: len(column) + 1].copy()
    for position, value in edit.items():
        values[position] = value
    return pa.Array.from_buffers(pa.string(), len(column), [None, pa.py_buffer(values), data])


# Offsets edited -> the rows whose text is then outside the bytes. A decreasing offset
# also moves the start of the next row, inside the bytes: that row's text is wrong, and only
# a checksum of the file could tell (the rows read below leave it out).
TEXT_DAMAGE = {
    "decreasing": (lambda size, o: {BAD + 1: o[BAD] - 1}, [BAD]),
    "past the bytes": (lambda size, o: {BAD + 1: size + 10**6}, [BAD, BAD + 1]),
    "negative": (lambda size, o: {BAD + 1: -(2**31)}, [BAD, BAD + 1]),
}


@pytest.mark.parametrize("case", list(TEXT_DAMAGE))
def test_damaged_text_offsets_fail_their_rows_only(tmp_path: Path, case: str) -> None:
    """Text offsets used in place and damaged past the first block: the dataset opens, the
    damaged rows are errors naming the index file, the sample and the column, on every path
    that reads them (reads, metadata, views, the index frame, pickles); the others read."""
    root = tmp_path / "ds"
    texts = _long(root)
    column = _batch(root).column("name")
    offsets = np.frombuffer(column.buffers()[1], np.int32)
    edit, damaged = TEXT_DAMAGE[case]
    _replace(root, "name", _text_with_offsets(column, edit(column.buffers()[2].size, offsets)))
    index = root / "index.arrow"
    with acumen.open(root) as ds:
        for i in (0, BAD - 1, BAD + 2, BLOCK_ROWS - 1):
            assert ds[i][1] == {"name": texts[i]} and ds.metadata(i) == {"name": texts[i]}
        for i in damaged:
            expected = f"{index}: sample {i}: metadata column 'name' has its text at bytes"
            copy = pickle.loads(pickle.dumps(ds))
            for read in (ds.__getitem__, ds.read, ds.metadata, copy.metadata):
                with pytest.raises(CorruptDatasetError) as caught:
                    read(i)
                assert str(caught.value).startswith(expected)
        for use in (lambda: ds.index, lambda: list(ds), lambda: ds.read_batch([0, BAD])):
            with pytest.raises(CorruptDatasetError, match=f"sample {damaged[0]}: metadata column"):
                use()
        with pytest.raises(CorruptDatasetError, match=re.escape(str(index))):
            ds.select([0, damaged[0]])
        with pytest.raises(CorruptDatasetError, match=re.escape(str(index))):
            ds.filter("name == 't1'")
        view = ds.select([BAD + 2, 0])
        assert [m for _, m in view] == [{"name": texts[BAD + 2]}, {"name": texts[0]}]
        problems = ds.check_index()
    assert [p.split(": ")[1] for p in problems] == [f"sample {i}" for i in damaged]
    report = verify(root, jobs=1, progress=False)
    assert report.problems == problems


def test_a_text_column_is_checked_before_pyarrow_reads_it() -> None:
    """What hands the array to pyarrow (numpy, lists, taking rows, arrow) checks it first;
    a slice of sound rows still reads."""
    sound = pa.array(["ab", "c", "", "def"])
    broken = _text_with_offsets(sound, {2: 99})  # rows 1 and 2 lie past the bytes
    column = ArrowStringColumn(broken, "somewhere/index.arrow")
    assert column.damaged_rows(0, 4).tolist() == [False, True, True, False]
    assert column.damaged_rows(3, 4) is None and column.item(3) == "def"
    for use in (np.asarray, ArrowStringColumn.tolist, list, pa.array):
        with pytest.raises(CorruptDatasetError, match=r"^somewhere/index[.]arrow: "):
            use(column)
    with pytest.raises(CorruptDatasetError, match=r"\(row 2\) has its text at bytes 99..3 of 6"):
        column[[0, 2]]
    assert column[[3, 0]].tolist() == ["def", "ab"]
    assert np.asarray(column[3:]).tolist() == ["def"] and column[:1].tolist() == ["ab"]
    wrapped = _text_with_offsets(sound, {2: 2**31 - 1, 3: -(2**31)})  # no int32 wrap-around
    assert ArrowStringColumn(wrapped).damaged_rows(0, 4).tolist() == [False, True, True, True]


def _chunk_column(root: Path, ids: list[int] | None = None, names: pa.Array | None = None):
    column = _batch(root).column(CHUNK_COLUMN)
    indices = pa.array(ids, pa.int32()) if ids is not None else column.indices
    dictionary = names if names is not None else column.dictionary
    return pa.DictionaryArray.from_arrays(indices, dictionary, safe=False)


def test_chunk_ids_outside_the_dictionary(tmp_path: Path) -> None:
    """Dictionary codes used in place: one outside the dictionary is its sample's error (the
    index frame included), in the first block an error at open."""
    root = tmp_path / "ds"
    _long(root)
    ids = [0] * BLOCK_ROWS
    ids[BAD] = 7
    _replace(root, CHUNK_COLUMN, _chunk_column(root, ids))
    with acumen.open(root) as ds:
        assert ds.read(BAD + 1).tolist() == [(BAD + 1) % 256]
        for read in (ds.read, lambda i: ds.index):
            with pytest.raises(CorruptDatasetError, match=f"sample {BAD} names no chunk file"):
                read(BAD)
    ids[BAD], ids[5] = 0, -1
    _replace(root, CHUNK_COLUMN, _chunk_column(root, ids))
    with pytest.raises(CorruptDatasetError, match="sample 5 names no chunk file"):
        acumen.open(root)


CHUNK_NAME_DAMAGE = {  # the offsets of the two chunk names, given the bytes' size
    "offsets past the bytes": lambda size: [0, size + 50, size],
    "offsets decreasing": lambda size: [3, 1, size],
    "offsets negative": lambda size: [0, -5, size],
    "not UTF-8": None,
    "empty": lambda size: [0],
}


@pytest.mark.parametrize("case", list(CHUNK_NAME_DAMAGE))
def test_damaged_chunk_names_are_refused_at_open(tmp_path: Path, case: str) -> None:
    """The chunk file names (a dictionary of text, one per chunk file) are checked whole at
    open, before pyarrow decodes them: O(chunk files)."""
    root = tmp_path / "ds"
    _varying(root)
    names = _batch(root).column(CHUNK_COLUMN).dictionary
    _, offsets, data = names.buffers()
    if CHUNK_NAME_DAMAGE[case] is None:
        data = pa.py_buffer(b"\xff" + data.to_pybytes()[1:])
        values = np.frombuffer(offsets, np.int32)[:3]
    else:
        values = np.array(CHUNK_NAME_DAMAGE[case](data.size), np.int32)
    damaged = pa.Array.from_buffers(
        pa.string(), len(values) - 1, [None, pa.py_buffer(values), data]
    )
    _replace(root, CHUNK_COLUMN, _chunk_column(root, names=damaged))
    with pytest.raises(CorruptDatasetError) as caught:
        acumen.open(root)
    assert str(caught.value).startswith(f"{root / 'index.arrow'}: column 'ai:chunk_name'")
    assert not verify(root, jobs=1, progress=False).ok


# --- the file's own structure: what pyarrow's reader and its cheap validation refuse -------


def _q(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}q", *values)


def _patched(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) == 1, f"{old.hex()} found {data.count(old)} times"
    return data.replace(old, new)


def _structure_damage(root: Path) -> dict[str, bytes]:
    """index.arrow of the ``varying`` dataset with its record batch's metadata edited: each
    buffer is an (offset, length) pair of int64 in it, each column a (length, null count)."""
    path = root / "index.arrow"
    data = path.read_bytes()
    with pa.memory_map(str(path)) as mapped:
        batch = ipc.open_file(mapped).get_batch(0)
        ids = batch.column(0).buffers()[1]  # the first buffer of the body
        name = batch.column("name").buffers()[1]
        offsets = (name.address - ids.address, name.size)  # the text offsets' entry
        n = batch.num_rows
    label = batch.schema.get_field_index("label")
    nodes = data.index(_q(n, 0) * batch.num_columns)  # one (length, nulls) per column
    buffers = data.index(_q(0, 0, 0, ids.size))  # no validity bitmap, then the ids
    rows = data.rfind(_q(n), 0, buffers)  # the batch's own length, before its buffers
    cases = {
        "a buffer shorter than its rows": _patched(data, _q(*offsets), _q(offsets[0], 8)),
        "a buffer past its batch": _patched(data, _q(*offsets), _q(offsets[0] + 4096, 24)),
        "a buffer past the file": _patched(data, _q(*offsets), _q(offsets[0], 1 << 40)),
        "a buffer at a negative offset": _patched(data, _q(*offsets), _q(-8, offsets[1])),
    }
    nulls = bytearray(data)
    nulls[nodes + 16 * label : nodes + 16 * label + 16] = _q(n, 1)  # and no validity bitmap
    cases["nulls without a validity bitmap"] = bytes(nulls)
    longer = bytearray(data)
    longer[rows : rows + 8] = _q(n + 1000)
    for column in range(batch.num_columns):
        longer[nodes + 16 * column : nodes + 16 * column + 8] = _q(n + 1000)
    cases["a batch longer than its buffers"] = bytes(longer)
    return cases


def test_damaged_file_structure_is_refused_at_open(tmp_path: Path) -> None:
    clean = tmp_path / "clean"
    _varying(clean)
    for case, data in _structure_damage(clean).items():
        root = tmp_path / case.replace(" ", "_")
        shutil.copytree(clean, root)
        (root / "index.arrow").write_bytes(data)
        reseal(root)
        with pytest.raises(CorruptDatasetError) as caught:
            acumen.open(root)
        assert str(caught.value).startswith(f"{root / 'index.arrow'}: "), case
        assert not verify(root, jobs=1, progress=False).ok, case


def test_a_truncated_index_is_refused_at_open(tmp_path: Path) -> None:
    """Cut at every fifth length and at each of the footer's: pyarrow checks each buffer's
    extent against the file before a value is mapped, so no read goes past the end of the
    file (no SIGBUS; a file cut under a live reader's map is another matter)."""
    root = tmp_path / "ds"
    _varying(root)
    data = (root / "index.arrow").read_bytes()
    for length in sorted({*range(0, len(data), 5), *range(len(data) - 64, len(data))}):
        (root / "index.arrow").write_bytes(data[:length])
        reseal(root)
        with pytest.raises(CorruptDatasetError, match=r"index[.]arrow: "):
            acumen.open(root)
