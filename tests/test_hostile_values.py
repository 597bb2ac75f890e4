"""Hostile values in a dataset's files: refused with acumen's errors, never a crash, never
an allocation of what a hostile file declares, never a message that echoes it whole.

Every hostile file is made here, from a small dataset written by the test.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import lz4.frame
import numpy as np
import pytest
import xxhash

import acumen
import acumen.verify
from acumen import plugins
from acumen.errors import AcumenError, CorruptDatasetError, ManifestError
from acumen.testing.codec_tests import peak_while_refusing
from tests.dataset_edits import edit_index, manifest_of, reseal, save_manifest

TIB = 1 << 40


def write(root: Path, codec: Any = "raw", index_format: str = "csv", n: int = 3) -> Path:
    with acumen.Writer(root, codec=codec, index_format=index_format, durable=False) as writer:
        for i in range(n):
            writer.add(np.full((2, 3), i, np.int32), i=i, name=f"s{i}")
    return root


# --- item 13: a payload declaring more than it can hold is refused unallocated ------------
def lz4_frame_of_16_bytes() -> bytes:
    """A 16-byte lz4 frame holding one byte: magic, descriptor (no content size), one
    uncompressed block of 1 byte, end mark."""
    descriptor = bytes([0x60, 0x40])  # version 01, independent blocks; 64 KiB blocks
    check = (xxhash.xxh32_intdigest(descriptor) >> 8) & 0xFF
    block = struct.pack("<I", 0x80000001) + b"\0"  # an uncompressed block of 1 byte
    return b"\x04\x22\x4d\x18" + descriptor + bytes([check]) + block + b"\0\0\0\0"


def test_lz4_frame_of_16_bytes_said_to_hold_a_tib_is_refused_unallocated():
    frame = lz4_frame_of_16_bytes()
    assert len(frame) == 16
    assert lz4.frame.decompress(frame) == b"\0"
    codec = plugins.codec("lz4")
    assert peak_while_refusing(lambda: codec.decode(frame, TIB)) < 1 << 20


@pytest.mark.parametrize("codec", ["lz4", "zstd", "gzip"])
@pytest.mark.parametrize("declared", [1 << 30, TIB, 2**63, 2**64])
def test_every_codec_refuses_a_small_payload_said_to_hold_more(codec, declared):
    """The same input for each codec: the same error (zstd and gzip already refused it;
    gzip with 2**63 or more escaped as OverflowError)."""
    payload = bytes(plugins.codec(codec).encode(np.zeros(16, np.uint8)))
    assert peak_while_refusing(lambda: plugins.codec(codec).decode(payload, declared)) < 1 << 20


def zstd_frame_declaring(declared: int) -> bytes:
    """A zstd frame of one RLE block (4 zero bytes) whose header declares ``declared``."""
    header = b"\x28\xb5\x2f\xfd" + bytes([0xC0, 7 << 3]) + struct.pack("<Q", declared)
    return header + struct.pack("<I", 1 | (1 << 1) | (4 << 3))[:3] + b"\0"


def test_zstd_frame_whose_header_agrees_with_a_huge_index_is_refused_unallocated():
    """The header and the index agree on 2**40 bytes: the one-shot decompressor would
    allocate them; 18 bytes of zstd cannot hold that much."""
    frame = zstd_frame_declaring(TIB)
    codec = plugins.codec("zstd")
    assert peak_while_refusing(lambda: codec.decode(frame, TIB)) < 1 << 20


def test_lz4_frame_whose_header_disagrees_is_refused_before_decoding():
    """Past the ratio bound's reach (a 1 MiB payload may hold 255 MiB), a large declared
    size is checked against the frame header before the output is allocated."""
    payload = bytes(plugins.codec("lz4").encode(np.zeros(8 << 20, np.uint8)))
    declared = 200 * len(payload)  # within 255 per byte, not what the header says
    codec = plugins.codec("lz4")
    assert peak_while_refusing(lambda: codec.decode(payload, declared)) < 1 << 20


def test_gzip_trailer_that_disagrees_is_refused_uninflated():
    payload = bytes(plugins.codec("gzip").encode(np.zeros(8 << 20, np.uint8)))
    codec = plugins.codec("gzip")
    assert peak_while_refusing(lambda: codec.decode(payload, (8 << 20) + 4096)) < 1 << 20


@pytest.mark.parametrize("codec", ["lz4", "zstd", "gzip"])
def test_the_most_compressible_payload_still_decodes(codec):
    """The ratio bounds are the formats' own: 64 MiB of zeros decodes in every codec."""
    zeros = np.zeros(64 << 20, np.uint8)
    instance = plugins.codec(codec)
    payload = instance.encode(zeros)
    assert memoryview(instance.decode(payload, zeros.nbytes)).nbytes == zeros.nbytes


@pytest.mark.parametrize("codec", ["lz4", "zstd", "gzip"])
@pytest.mark.parametrize("storage", ["mmap", "seek"])
def test_reading_a_sample_whose_index_declares_a_tib(tmp_path, codec, storage):
    """The dataset's index says the sample is (2**40,) uint8: an error naming the sample."""
    root = tmp_path / "ds"
    with acumen.Writer(root, codec=codec, durable=False) as writer:
        writer.add(np.zeros(16, np.uint8))
        writer.add(np.ones(16, np.uint8))
    edit_index(root, 0, "ai:shape", f"({TIB},)")
    manifest = manifest_of(root)
    manifest["shape"] = None
    save_manifest(root, manifest)
    with acumen.open(root, storage) as dataset:
        peak = peak_while_refusing(lambda: dataset[0])
        assert dataset.read(1).tolist() == [1] * 16
    assert peak < 1 << 20


# --- item 14: hostile configurations and indexes are acumen's errors ----------------------
def open_and_read(root: Path) -> None:
    with acumen.open(root) as dataset:
        for i in range(len(dataset)):
            dataset[i]


def assert_short(error: BaseException) -> None:
    """An error message quotes at most a few hundred characters of any value."""
    assert len(str(error)) < 1000, f"a message of {len(str(error))} characters"


BAD_CONFIGURATIONS = {
    "text": {"level": "x"},
    "huge": {"level": 2**64},
    "float": {"level": 1e308},
    "list": {"level": [3]},
    "null": {"level": None},
    "unknown option": {"bogus": 1},
    "long text": {"level": "9" * 10**6},
}


@pytest.mark.parametrize("codec", ["zstd", "gzip", "lz4"])
@pytest.mark.parametrize("case", list(BAD_CONFIGURATIONS))
def test_a_codec_configuration_a_constructor_refuses_is_a_manifest_error(tmp_path, codec, case):
    root = write(tmp_path / "ds", codec)
    manifest = manifest_of(root)
    manifest["codec"]["configuration"] = BAD_CONFIGURATIONS[case]
    save_manifest(root, manifest)
    with pytest.raises(ManifestError) as caught:
        acumen.open(root)
    assert caught.value.path == str(root / "manifest.json")
    assert caught.value.key == "codec.configuration"
    assert f"codec '{codec}' refuses" in str(caught.value)
    assert_short(caught.value)
    assert not acumen.verify.verify(root, progress=False).ok


@pytest.mark.parametrize("index_format", ["csv", "parquet"])
def test_an_index_configuration_with_an_unknown_option_is_a_manifest_error(tmp_path, index_format):
    root = write(tmp_path / "ds", index_format=index_format)
    manifest = manifest_of(root)
    manifest["index"]["configuration"] = {"bogus": [1, 2]}
    save_manifest(root, manifest)
    with pytest.raises(ManifestError) as caught:
        acumen.open(root)
    assert caught.value.key == "index.configuration"
    assert f"index format '{index_format}' refuses" in str(caught.value)


def test_a_field_codec_configuration_is_a_manifest_error_naming_the_field(tmp_path):
    root = tmp_path / "ds"
    fields = {"image": {"dtype": "uint8", "codec": "lz4"}, "label": "int64"}
    with acumen.Writer(root, fields=fields, durable=False) as writer:
        writer.add({"image": np.zeros((2, 2), np.uint8), "label": np.int64(3)})
    manifest = manifest_of(root)
    manifest["fields"][0]["codec"]["configuration"] = {"level": "fast"}
    save_manifest(root, manifest)
    with pytest.raises(ManifestError) as caught:
        acumen.open(root)
    assert caught.value.key == "fields[0].codec.configuration"


def test_an_explicit_codec_override_still_raises_value_error(tmp_path):
    """Caller's arguments are not the manifest's: a bad one is the caller's ValueError."""
    root = write(tmp_path / "ds", "zstd")
    with pytest.raises(ValueError, match="bad configuration") as caught:
        acumen.open(root, codec={"name": "zstd", "configuration": {"bogus": 1}})
    assert not isinstance(caught.value, AcumenError)


SIXTY_FIVE = "(" + "1, " * 65 + ")"


def one_element_samples(root: Path, index_format: str = "csv") -> Path:
    with acumen.Writer(root, index_format=index_format, durable=False) as writer:
        for i in range(3):
            writer.add(np.full((1,), i, np.int32))
    return root


def test_65_dimensions_in_the_manifest_are_a_manifest_error(tmp_path):
    root = one_element_samples(tmp_path / "ds")
    manifest = manifest_of(root)
    manifest["shape"] = [1] * 65
    save_manifest(root, manifest)
    with pytest.raises(ManifestError) as caught:
        acumen.open(root)
    assert caught.value.key == "shape"
    assert "at most 64" in str(caught.value)


def test_65_dimensions_in_a_csv_index_are_an_error_naming_the_sample(tmp_path):
    """The sizes agree (65 ones: one int32), only the number of dimensions is wrong."""
    root = one_element_samples(tmp_path / "ds")
    manifest = manifest_of(root)
    manifest["shape"] = None
    save_manifest(root, manifest)
    edit_index(root, 0, "ai:shape", SIXTY_FIVE)
    with pytest.raises(CorruptDatasetError, match=r"sample 0 has shape .*more than 64 dim"):
        acumen.open(root)


def test_65_dimensions_in_one_row_of_a_parquet_index_fail_that_sample_alone(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = one_element_samples(tmp_path / "ds", "parquet")
    path = root / "index.parquet"
    table = pq.read_table(path).replace_schema_metadata({})
    shapes = pa.array([[1] * 65, [1], [1, 1]], pa.list_(pa.int64()))
    pq.write_table(table.append_column("ai:shape", shapes), path)
    manifest = manifest_of(root)
    manifest["shape"] = None
    save_manifest(root, manifest)
    reseal(root)  # a hostile index with valid checksums: only the row checks can tell
    with pytest.raises(CorruptDatasetError, match=r"index\.parquet: sample 0 has shape"):
        acumen.open(root)


def test_64_dimensions_still_read(tmp_path):
    root = tmp_path / "ds"
    with acumen.Writer(root, durable=False) as writer:
        writer.add(np.full((1,) * 64, 7, np.int32))
    with acumen.open(root) as dataset:
        assert dataset.read(0).shape == (1,) * 64


@pytest.mark.parametrize("name", ["chunks/chunk_0\0.chnk", "chunks\0/chunk_0.chnk", "\0"])
def test_a_nul_byte_in_a_chunk_name_is_refused(tmp_path, name):
    root = write(tmp_path / "ds")
    edit_index(root, 0, "ai:chunk_name", name)
    with pytest.raises(CorruptDatasetError, match=r"\\x00.* is not a file name") as caught:
        acumen.open(root)
    assert str(root) in str(caught.value)
    assert not acumen.verify.verify(root, progress=False).ok


@pytest.mark.parametrize("index_format", ["parquet", "arrow"])
def test_an_empty_chunk_dictionary_is_refused(tmp_path, index_format):
    """Every row's chunk id points into a dictionary of no chunk names."""
    import pyarrow as pa

    root = write(tmp_path / "ds", index_format=index_format)
    path = root / f"index.{index_format}"
    table = read_arrow_table(path)
    empty = pa.DictionaryArray.from_arrays(
        pa.array([0, 0, 0], pa.int32()), pa.array([], pa.string()), safe=False
    )
    column = table.schema.get_field_index("ai:chunk_name")
    write_arrow_table(table.set_column(column, "ai:chunk_name", empty), path)
    reseal(root)
    refused = f"index.{index_format}: .*(sample 0|names no chunk file)"
    with pytest.raises(CorruptDatasetError, match=refused):
        acumen.open(root)
    assert not acumen.verify.verify(root, progress=False).ok


def read_arrow_table(path: Path):
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq

    if path.suffix == ".parquet":
        return pq.read_table(path)
    with ipc.open_file(path) as reader:
        return reader.read_all()


def write_arrow_table(table, path: Path) -> None:
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq

    if path.suffix == ".parquet":
        pq.write_table(table, path)
        return
    with ipc.new_file(path, table.schema) as writer:
        writer.write_table(table)


@pytest.mark.parametrize("dtype", ["\0", "\t", "\x02", [["a", "\x07"]]])
def test_a_control_character_dtype_is_refused_not_read_as_a_type_number(tmp_path, dtype):
    """numpy reads the text "\\0" as bool and "\\t" as int64 (type numbers): a NUL dtype
    once read a uint8 field as bools, silently."""
    root = write(tmp_path / "ds")
    manifest = manifest_of(root)
    manifest["dtype"] = dtype
    save_manifest(root, manifest)
    with pytest.raises(ManifestError) as caught:
        acumen.open(root)
    assert caught.value.key == "dtype"


def test_a_gzip_sample_declaring_2_to_the_64_bytes_is_an_error_naming_it(tmp_path):
    """2**44 elements of a 1 MiB dtype: 2**64 bytes, past every C size type."""
    root = tmp_path / "ds"
    with acumen.Writer(root, codec="gzip", durable=False) as writer:
        writer.add(np.zeros(16, np.uint8))
    manifest = manifest_of(root)
    manifest.update(dtype="|V1048576", shape=None)
    save_manifest(root, manifest)
    edit_index(root, 0, "ai:shape", f"({2**44},)")
    with acumen.open(root) as dataset, pytest.raises(CorruptDatasetError, match="sample 0"):
        dataset[0]


def test_a_chunk_name_longer_than_any_file_name_is_refused(tmp_path):
    root = write(tmp_path / "ds")
    edit_index(root, 0, "ai:chunk_name", "chunks/" + "x" * 5000)
    with pytest.raises(CorruptDatasetError, match="is not a file name"):
        acumen.open(root)


def test_a_chunk_name_part_longer_than_the_file_system_allows_is_refused(tmp_path):
    root = write(tmp_path / "ds")
    edit_index(root, 0, "ai:chunk_name", "chunks/" + "x" * 300)
    with pytest.raises(CorruptDatasetError) as caught:
        acumen.open(root)
    assert_short(caught.value)


# --- item 15: messages quote at most a few hundred characters of a hostile value ----------
HUGE = "x" * 10**7


def _set_chunk_name(root: Path) -> None:
    edit_index(root, 0, "ai:chunk_name", HUGE)


def _set_manifest_chunk_file(root: Path) -> None:
    manifest = manifest_of(root)
    manifest["chunks"][0]["file"] = HUGE
    save_manifest(root, manifest)


def _set_manifest(**keys: Any):
    def edit(root: Path) -> None:
        manifest = manifest_of(root)
        for key, value in keys.items():
            manifest[key] = value
        save_manifest(root, manifest)

    return edit


HUGE_VALUES = {
    "codec name": _set_manifest(codec={"name": HUGE}),
    "index name": _set_manifest(index={"name": HUGE, "file": "index.csv"}),
    "index file": _set_manifest(index={"name": "csv", "file": HUGE}),
    "dtype": _set_manifest(dtype=HUGE),
    "format": _set_manifest(format=HUGE),
    "shape": _set_manifest(shape=[HUGE]),
    "codec configuration": _set_manifest(codec={"name": "raw", "configuration": {HUGE: HUGE}}),
    "install hint": _set_manifest(
        codec={"name": "blosc99"}, plugins={"codec": {"distribution": HUGE}}
    ),
    "chunk name in the index": _set_chunk_name,
    "chunk file in the manifest": _set_manifest_chunk_file,
}


@pytest.mark.parametrize("case", list(HUGE_VALUES))
def test_a_ten_million_character_value_gives_a_short_message(tmp_path, case):
    root = write(tmp_path / "ds")
    HUGE_VALUES[case](root)
    with pytest.raises(AcumenError) as caught:
        open_and_read(root)
    assert_short(caught.value)
    report = acumen.verify.verify(root, progress=False)
    assert not report.ok
    assert all(len(problem) < 1000 for problem in report.problems)


# --- the sweep: every key of a real manifest, every hostile value -------------------------
HOSTILE = {
    "null": None,
    "-1": -1,
    "2**64": 2**64,
    "1e308": 1e308,
    "infinity": float("inf"),
    "long text": "x" * 10**6,
    "empty list": [],
    "empty object": {},
    "NUL": "\0",
    "nested lists": [[[[["x"]]]], [[]], [1, [2, [3]]]],
}
#: Keys a manifest may hold that the written one lacks: options a plugin does not know.
EXTRA_KEYS = [
    ("codec", "configuration", "bogus"),
    ("codec", "configuration", "dictionary"),
    ("index", "configuration", "bogus"),
]


def sweep_samples(kind: str) -> tuple[dict, list]:
    """Writer options and samples: zstd with a csv index and metadata, or two fields (lz4
    and raw) with a parquet index; chunks of one or two samples."""
    if kind == "zstd csv":
        options = {"codec": {"name": "zstd", "configuration": {"level": 3}}}
        arrays = [np.arange(6, dtype=np.int32).reshape(2, 3) + i for i in range(4)]
    else:
        options = {
            "fields": {"image": {"dtype": "uint8", "codec": "lz4"}, "label": "int64"},
            "index_format": "parquet",
        }
        arrays = [{"image": np.full((2, 2), i, np.uint8), "label": np.int64(i)} for i in range(4)]
    return options, [(array, {"i": i, "name": f"s{i}"}) for i, array in enumerate(arrays)]


@pytest.fixture(scope="module", params=["zstd csv", "fields parquet"])
def sweep_dataset(request, tmp_path_factory) -> tuple[Path, list]:
    """A dataset of several chunk files, and what each of its samples holds."""
    options, samples = sweep_samples(request.param)
    root = tmp_path_factory.mktemp("sweep") / "ds"
    with acumen.Writer(root, chunk_size_bytes=40, durable=False, **options) as writer:
        for array, metadata in samples:
            writer.add(array, **metadata)
    assert len(manifest_of(root)["chunks"]) > 1
    return root, samples


def key_paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """The path of every value in a JSON document (objects and lists, and their items)."""
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            paths += key_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths += key_paths(item, (*prefix, index))
    return paths


def replaced(document: Any, path: tuple, value: Any) -> Any:
    """A copy of ``document`` with the value at ``path`` replaced."""
    if not path:
        return value
    copy = dict(document) if isinstance(document, dict) else list(document)
    key = path[0]
    inner = document.get(key, {}) if isinstance(document, dict) else document[key]
    copy[key] = replaced(inner, path[1:], value)
    return copy


def same(got: Any, expected: Any) -> bool:
    """Equal arrays, or dicts of equal arrays (a multi-field sample), dtypes included."""
    if isinstance(expected, dict):
        return got.keys() == expected.keys() and all(same(got[k], expected[k]) for k in got)
    got, expected = np.asarray(got), np.asarray(expected)
    return got.dtype == expected.dtype and np.array_equal(got, expected)


def check_reads_or_refuses(root: Path, samples: list) -> None:
    """Open, read and verify: only acumen's errors, each short; what reads is right."""
    try:
        with acumen.open(root) as dataset:
            assert len(dataset) == len(samples)
            for i, (array, metadata) in enumerate(samples):
                try:
                    got, got_metadata = dataset[i]
                except AcumenError as error:
                    assert_short(error)
                    continue
                assert same(got, array)
                assert got_metadata == metadata
    except AcumenError as error:
        assert_short(error)
    report = acumen.verify.verify(root, progress=False, jobs=1)
    assert all(len(problem) < 1000 for problem in report.problems), report.problems


@pytest.mark.parametrize("hostile", list(HOSTILE))
def test_every_manifest_key_with_a_hostile_value(sweep_dataset, hostile):
    root, samples = sweep_dataset
    original = (root / "manifest.json").read_bytes()
    manifest = manifest_of(root)
    failures = []
    try:
        for path in key_paths(manifest) + EXTRA_KEYS:
            save_manifest(root, replaced(manifest, path, HOSTILE[hostile]))
            try:
                check_reads_or_refuses(root, samples)
            except Exception as error:
                failures.append(f"{path}: {type(error).__name__}: {str(error)[:300]}")
    finally:
        (root / "manifest.json").write_bytes(original)
    assert not failures, "\n".join(failures)


HOSTILE_CELLS = {
    "empty": "",
    "-1": "-1",
    "2**64": str(2**64),
    "1e308": "1e308",
    "nan": "nan",
    "long text": "x" * 10**6,
    "NUL": "\0",
    "list": "[]",
    "65 dimensions": SIXTY_FIVE,
    "nested": "((1,),)",
}


@pytest.mark.parametrize("codec", ["raw", "zstd"])
@pytest.mark.parametrize("hostile", list(HOSTILE_CELLS))
def test_every_index_column_with_a_hostile_cell(tmp_path, codec, hostile):
    """Each reserved column of a csv index, its second row replaced: only acumen's errors,
    each short, and the samples that read are right."""
    root = write(tmp_path / "ds", codec)
    original = (root / "index.csv").read_bytes()
    samples = [(np.full((2, 3), i, np.int32), {"i": i, "name": f"s{i}"}) for i in range(3)]
    failures = []
    for column in ("ai:chunk_name", "ai:offset_bytes", "ai:size_bytes", "ai:shape"):
        edit_index(root, 1, column, HOSTILE_CELLS[hostile])
        try:
            check_reads_or_refuses(root, samples)
        except Exception as error:
            failures.append(f"{column}: {type(error).__name__}: {str(error)[:300]}")
        (root / "index.csv").write_bytes(original)
    assert not failures, "\n".join(failures)
