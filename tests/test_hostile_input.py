"""Hostile input: a dataset from someone else must not reach outside its folder, run code,
exhaust memory, or raise anything but acumen's own errors.

Covers what tests/test_errors.py does not: the manifest's index file and a zstd dictionary
as escape routes, a symlinked ``chunks/`` folder, code in shape text and dtypes, pickles in
.npy files, decompression bombs against every codec (declared and undeclared sizes), absurd
numbers, and fuzzing (hypothesis) of the manifest, the index files and the codec decoders.
``tests/corpus/`` keeps inputs that once failed (or are worth replaying); every file in it
is replayed here.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import lz4.block
import lz4.frame
import numpy as np
import pytest
import xxhash
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import acumen
from acumen import plugins
from acumen.errors import AcumenError, CorruptDatasetError, ManifestError
from acumen.format.manifest import Manifest
from acumen.testing.codec_tests import peak_while_refusing
from tests.dataset_edits import edit_index, manifest_of, save_manifest

CORPUS = Path(__file__).resolve().parent / "corpus"
GIB = 1 << 30
COMPRESSING = ("gzip", "zstd", "lz4")
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
    derandomize=True,  # the same examples every run: a failure is a bug, never luck
)


# --- helpers ------------------------------------------------------------------------------
def write(root: Path, codec: Any = "raw", index_format: str = "csv", n: int = 3) -> Path:
    with acumen.Writer(root, codec=codec, index_format=index_format, durable=False) as writer:
        for i in range(n):
            writer.add(np.full((2, 3), i, np.int32), i=i, name=f"s{i}")
    return root


def read_everything(root: Path) -> None:
    """Open and read every sample: only acumen's errors may come out."""
    with acumen.open(root) as dataset:
        for i in range(len(dataset)):
            with contextlib.suppress(CorruptDatasetError):
                dataset[i]


def symlink(link: Path, target: Path) -> None:
    try:
        link.symlink_to(target)
    except (OSError, NotImplementedError):
        pytest.skip("no symlinks here")


# --- paths that leave the dataset ---------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["ABSOLUTE", "chunks/../../index.csv", "sub/../../index.csv", "C:/index.csv"]
)
def test_manifest_index_file_outside_the_folder_is_refused(tmp_path, name):
    root = write(tmp_path / "ds")
    shutil.copy(root / "index.csv", tmp_path / "index.csv")  # plausible bytes, still refused
    if name == "ABSOLUTE":
        name = str(tmp_path / "index.csv")
    manifest = manifest_of(root)
    manifest["index"]["file"] = name
    save_manifest(root, manifest)
    with pytest.raises(CorruptDatasetError, match=r"index file .* is not a path inside"):
        acumen.open(root)


def test_index_file_symlinked_outside_is_refused(tmp_path):
    root = write(tmp_path / "ds")
    (root / "index.csv").rename(tmp_path / "elsewhere.csv")
    symlink(root / "index.csv", tmp_path / "elsewhere.csv")
    with pytest.raises(CorruptDatasetError, match=r"index file 'index\.csv' links outside"):
        acumen.open(root)


def _dictionary_dataset(tmp_path: Path) -> Path:
    codec = {"name": "zstd", "configuration": {"dictionary_size": 1024, "train_samples": 40}}
    root = tmp_path / "ds"
    rng = np.random.default_rng(0)
    with acumen.Writer(root, codec=codec, durable=False) as writer:
        for i in range(60):
            writer.add(rng.integers(0, 4, size=(64,)).astype(np.uint8), i=i)
    assert manifest_of(root)["codec"]["configuration"]["dictionary"] == "codecs/data.zstd.dict"
    return root


@pytest.mark.parametrize("name", ["../x.dict", "ABSOLUTE", "codecs/../../x.dict", "SYMLINK"])
def test_zstd_dictionary_outside_the_folder_is_refused(tmp_path, name):
    root = _dictionary_dataset(tmp_path)
    dictionary = root / "codecs" / "data.zstd.dict"
    shutil.copy(dictionary, tmp_path / "x.dict")
    if name == "SYMLINK":
        dictionary.unlink()
        symlink(dictionary, tmp_path / "x.dict")
        name, problem = "codecs/data.zstd.dict", "links outside the dataset"
    else:
        name = str(tmp_path / "x.dict") if name == "ABSOLUTE" else name
        problem = "is not a path inside the dataset"
    manifest = manifest_of(root)
    manifest["codec"]["configuration"]["dictionary"] = name
    save_manifest(root, manifest)
    with pytest.raises(CorruptDatasetError) as caught:
        acumen.open(root)
    assert str(caught.value) == f"{root}: zstd dictionary {name!r} {problem}"


@pytest.mark.parametrize("name", ["chunks\\..\\..\\outside.chnk", "C:/outside.chnk"])
def test_chunk_names_in_windows_form_are_refused(tmp_path, name):
    root = write(tmp_path / "ds")
    edit_index(root, 0, "ai:chunk_name", name)
    with pytest.raises(CorruptDatasetError, match="is not a path inside the dataset"):
        acumen.open(root)


@pytest.mark.parametrize("storage", ["mmap", "seek"])
def test_symlinked_chunks_folder_leading_outside_is_refused(tmp_path, storage):
    """``chunks/`` itself a link to a folder elsewhere: the chunk files are not symlinks,
    their folder is; reading them would read outside the dataset."""
    root = write(tmp_path / "ds")
    (root / "chunks").rename(tmp_path / "elsewhere")
    symlink(root / "chunks", tmp_path / "elsewhere")
    with pytest.raises(CorruptDatasetError, match="outside the dataset"):
        acumen.open(root, storage).close()


def test_one_linked_append_folder_among_many_is_checked(tmp_path):
    """Many appends' ``chunks/<token>/`` folders are checked by one listing of ``chunks/``
    (acumen/read/chunk_paths.py): one of them a link leading outside is still refused, and
    one linked to a folder inside is still read."""
    from acumen.read.chunk_paths import LIST_AT

    root = tmp_path / "ds"
    with acumen.Writer(root, dtype="int32") as writer:
        writer.add(np.array([0], np.int32))
    for k in range(1, LIST_AT + 1):
        with acumen.Writer(root, mode="append") as writer:
            writer.add(np.array([k], np.int32))
    with acumen.open(root) as dataset:
        folders = sorted({Path(name).parent.name for name in dataset.table.chunk_names[1:]})
    assert len(folders) == LIST_AT
    inside, outside = root / "chunks" / folders[3], root / "chunks" / folders[-1]
    inside.rename(root / "moved")
    symlink(inside, Path("..") / "moved")
    with acumen.open(root) as dataset:
        assert [int(dataset.read(i)[0]) for i in range(len(dataset))] == list(range(LIST_AT + 1))
    outside.rename(tmp_path / "elsewhere")
    symlink(outside, tmp_path / "elsewhere")
    with pytest.raises(CorruptDatasetError, match="outside the dataset"):
        acumen.open(root).close()


def test_symlink_staying_inside_the_folder_is_allowed(tmp_path):
    root = write(tmp_path / "ds")
    (root / "chunks" / "chunk_0.chnk").rename(root / "real.chnk")
    symlink(root / "chunks" / "chunk_0.chnk", Path("..") / "real.chnk")
    with acumen.open(root) as dataset:
        assert dataset.read(2).tolist() == [[2] * 3] * 2


# --- nothing is evaluated or unpickled ----------------------------------------------------
CODE = "__import__('os').system('touch PWNED')"


@pytest.mark.parametrize("with_manifest", [True, False], ids=["manifest", "original"])
def test_shape_text_is_parsed_never_evaluated(tmp_path, monkeypatch, with_manifest):
    monkeypatch.chdir(tmp_path)
    root = write(tmp_path / "ds")
    if not with_manifest:
        (root / "manifest.json").unlink()
    for row in range(3):
        edit_index(root, row, "ai:shape", CODE if row != 1 else f"({CODE},)")
    with pytest.raises(CorruptDatasetError, match="not a shape"):
        acumen.open(root, dtype="int32")
    assert not list(tmp_path.rglob("PWNED"))


@pytest.mark.parametrize("key", ["dtype", "shape", "format_version", "n_samples"])
def test_code_in_manifest_values_is_refused(tmp_path, monkeypatch, key):
    monkeypatch.chdir(tmp_path)
    root = write(tmp_path / "ds")
    manifest = manifest_of(root)
    manifest[key] = CODE
    save_manifest(root, manifest)
    with pytest.raises(ManifestError, match=f"key '{key}'"):
        acumen.open(root)
    assert not list(tmp_path.rglob("PWNED"))


class _Trap:
    """Pickles to a call that creates a file: loading the pickle would leave the file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (Path.touch, (Path(self.path),))


def test_npy_reader_never_unpickles(tmp_path):
    marker = tmp_path / "UNPICKLED"
    trap = np.empty(2, dtype=object)
    trap[0] = _Trap(str(marker))
    trap[1] = {"also": _Trap(str(marker))}
    np.save(tmp_path / "trap.npy", trap, allow_pickle=True)
    reader = plugins.reader("npy")
    with pytest.raises(ValueError, match="allow_pickle=False"):
        reader.read(str(tmp_path / "trap.npy"))
    assert not marker.exists()
    np.load(tmp_path / "trap.npy", allow_pickle=True)  # the trap is armed: this springs it
    assert marker.exists()


@pytest.mark.parametrize("dtype", ["|O", [["a", "<i4"], ["b", "|O"]]], ids=["object", "field"])
@pytest.mark.parametrize("codec", ["raw", "zstd"])
def test_object_dtype_in_a_manifest_is_refused(tmp_path, dtype, codec):
    """Bytes from a file must never become object pointers. The sizes are made to agree
    (24 bytes = 3 objects of 8 bytes), so only the dtype is wrong: it must be refused with
    an acumen error naming the file, not left to numpy at read time."""
    root = write(tmp_path / "ds", codec)
    for row in range(3):
        edit_index(root, row, "ai:shape", "(3,)" if dtype == "|O" else "(2,)")
    manifest = manifest_of(root)
    manifest["dtype"], manifest["shape"] = dtype, [3] if dtype == "|O" else [2]
    save_manifest(root, manifest)
    try:
        dataset = acumen.open(root)
    except (ManifestError, CorruptDatasetError):
        return
    with dataset, pytest.raises(AcumenError):
        dataset[0]


# --- decompression is bounded by the declared size ----------------------------------------
def zstd_bomb(declared: int) -> bytes:
    """A zstd frame of 8192 RLE blocks of 128 KiB (1 GiB of zeros) declaring ``declared``."""
    block = 128 << 10
    header = b"\x28\xb5\x2f\xfd" + bytes([0xC0, 7 << 3]) + struct.pack("<Q", declared)
    count = GIB // block
    blocks = (
        struct.pack("<I", (k == count - 1) | (1 << 1) | (block << 3))[:3] + b"\0"
        for k in range(count)
    )
    return header + b"".join(blocks)


def lz4_bomb(declared: int) -> bytes:
    """An lz4 frame of 256 independent 4 MiB blocks of zeros declaring ``declared``."""
    block = 4 << 20
    data = lz4.block.compress(bytes(block), store_size=False)
    descriptor = bytes([0x68, 0x70]) + struct.pack("<Q", declared)
    check = (xxhash.xxh32_intdigest(descriptor) >> 8) & 0xFF
    body = (struct.pack("<I", len(data)) + data) * (GIB // block)
    return b"\x04\x22\x4d\x18" + descriptor + bytes([check]) + body + b"\0\0\0\0"


def gzip_bomb() -> bytes:
    """A gzip member inflating to 1 GiB of zeros (a fully flushed 1 MiB piece, repeated)."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = deflate.compress(bytes(1 << 20)) + deflate.flush(zlib.Z_FULL_FLUSH)
    tail = deflate.flush()
    crc, zeros = 0, bytes(1 << 20)
    for _ in range(1024):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return header + piece * 1024 + tail + struct.pack("<II", crc, GIB & 0xFFFFFFFF)


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    return {
        "zstd declares 1 GiB": zstd_bomb(GIB),
        "zstd declares 100 bytes": zstd_bomb(100),
        "lz4 declares 1 GiB": lz4_bomb(GIB),
        "lz4 declares 100 bytes": lz4_bomb(100),
        "gzip": gzip_bomb(),
    }


def test_the_bombs_are_real(bombs):
    assert zstandard.frame_content_size(bombs["zstd declares 1 GiB"]) == GIB
    head = (
        zstandard.ZstdDecompressor().decompressobj().decompress(bombs["zstd declares 1 GiB"][:54])
    )
    assert len(head) == 10 * (128 << 10) and not any(head)
    assert lz4.frame.get_frame_info(bombs["lz4 declares 1 GiB"])["content_size"] == GIB
    assert lz4.frame.get_frame_info(bombs["lz4 declares 100 bytes"])["content_size"] == 100
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert len(inflater.decompress(bombs["gzip"], 3 << 20)) == 3 << 20


def _bounded(call) -> None:
    start = time.monotonic()
    peak = peak_while_refusing(call)
    assert peak < 10 << 20, f"{peak / 2**20:.0f} MiB allocated while refusing a bomb"
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("bomb", ["zstd declares 1 GiB", "zstd declares 100 bytes", "gzip"])
def test_decode_of_a_bomb_is_bounded(bombs, bomb):
    codec = plugins.codec(bomb.split()[0])
    _bounded(lambda: codec.decode(bombs[bomb], 100))


def test_lz4_decode_of_a_bomb_declaring_its_size_is_bounded(bombs):
    codec = plugins.codec("lz4")
    _bounded(lambda: codec.decode(bombs["lz4 declares 1 GiB"], 100))


def test_lz4_decode_of_a_bomb_lying_about_its_size_is_bounded(bombs):
    """The frame header says 100 bytes (as the index does) and the blocks hold 1 GiB."""
    codec = plugins.codec("lz4")
    _bounded(lambda: codec.decode(bombs["lz4 declares 100 bytes"], 100))


@pytest.mark.parametrize("bomb", ["zstd declares 1 GiB", "zstd declares 100 bytes", "gzip"])
@pytest.mark.parametrize("storage", ["mmap", "seek"])
def test_reading_a_bomb_from_a_dataset_is_bounded(tmp_path, bombs, bomb, storage):
    """The payload replaces a sample of 100 bytes in a real dataset (sizes and checksum
    fixed so only the payload is hostile)."""
    payload = bombs[bomb]
    root = tmp_path / "ds"
    with acumen.Writer(root, codec=bomb.split()[0], durable=False) as writer:
        writer.add(np.zeros(100, np.uint8))
    (root / "chunks" / "chunk_0.chnk").write_bytes(payload)
    edit_index(root, 0, "ai:size_bytes", str(len(payload)))
    manifest = manifest_of(root)
    manifest["chunks"][0]["size_bytes"] = len(payload)
    manifest["chunks"][0]["checksum"] = f"xxh3_64:{xxhash.xxh3_64_hexdigest(payload)}"
    save_manifest(root, manifest)
    with acumen.open(root, storage) as dataset:
        _bounded(lambda: dataset[0])


# --- absurd numbers -----------------------------------------------------------------------
def _set_n_samples(m: dict) -> None:
    m["n_samples"] = 10**18
    m["chunks"][0]["n_samples"] += 10**18 - 3


ABSURD_MANIFESTS = {
    "n_samples 10**18": _set_n_samples,
    "size_bytes 2**62": lambda m: m["chunks"][0].update(size_bytes=2**62),
    "size_bytes 2**64": lambda m: m["chunks"][0].update(size_bytes=2**64),
    "size_bytes negative": lambda m: m["chunks"][0].update(size_bytes=-1),
    "n_samples negative": lambda m: m.update(n_samples=-3),
    "shape 10**18": lambda m: m.update(shape=[10**18, 10**18]),
    "dtype of 10**12 bytes": lambda m: m.update(dtype="V1000000000000"),
    "chunk_size_bytes 2**80": lambda m: m["layout"].update(chunk_size_bytes=2**80),
}


@pytest.mark.parametrize("codec", ["raw", "zstd"])
@pytest.mark.parametrize("case", list(ABSURD_MANIFESTS))
def test_absurd_numbers_in_the_manifest_fail_cleanly(tmp_path, codec, case):
    root = write(tmp_path / "ds", codec)
    manifest = manifest_of(root)
    ABSURD_MANIFESTS[case](manifest)
    save_manifest(root, manifest)
    try:
        read_everything(root)
    except AcumenError:
        return
    assert case == "chunk_size_bytes 2**80"  # only the writer's limit: harmless to a reader


ABSURD_INDEX = [
    ("ai:offset_bytes", str(2**63 - 1)),
    ("ai:offset_bytes", str(2**64 - 1)),
    ("ai:offset_bytes", "9" * 30),
    ("ai:size_bytes", str(2**63 - 1)),
    ("ai:size_bytes", "9" * 30),
    ("ai:shape", "(" + "9" * 30 + ",)"),
    ("ai:shape", "(4294967296, 4294967296)"),
    ("ai:shape", "(9223372036854775807, 2)"),
    ("ai:shape", "(" + "1, " * 40 + ")"),
]


@pytest.mark.parametrize("codec", ["raw", "zstd"])
@pytest.mark.parametrize(("column", "value"), ABSURD_INDEX, ids=lambda v: str(v)[:24])
def test_absurd_numbers_in_the_index_fail_cleanly(tmp_path, codec, column, value):
    """Refused when the dataset opens, or sample 1 is an error when read (its neighbours
    still read): never another exception, never wrong data."""
    root = write(tmp_path / "ds", codec)
    edit_index(root, 1, column, value)
    try:
        dataset = acumen.open(root)
    except AcumenError:
        return
    with dataset:
        with pytest.raises(CorruptDatasetError):
            dataset[1]
        assert dataset.read(2).tolist() == [[2] * 3] * 2


def test_sizes_that_wrap_around_int64_are_not_read_as_empty(tmp_path):
    """A shape of 2**32 x 2**32 elements: its element count must not wrap around int64 to
    0 and so pass the size check of a 0-byte sample."""
    root = write(tmp_path / "ds", n=1)
    edit_index(root, 0, "ai:shape", "(4294967296, 4294967296)")
    edit_index(root, 0, "ai:size_bytes", "0")
    (root / "manifest.json").unlink()  # an original dataset: only the index to go by
    with pytest.raises(AcumenError), acumen.open(root, dtype="int32") as dataset:
        dataset[0]


# --- fuzzing: the manifest ----------------------------------------------------------------
def _valid_manifest(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = write(tmp_path_factory.mktemp("valid") / "ds", "zstd")
    return manifest_of(root)


@pytest.fixture(scope="module")
def valid_manifest(tmp_path_factory) -> dict:
    return _valid_manifest(tmp_path_factory)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["<f2", "|O", "V8", "acumen", "zstd", "csv", "xxh3_64:", "../x", "(1,)"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for position, child in enumerate(value):
            found += _paths(child, (*prefix, position))
    return found


@st.composite
def mutated_manifests(draw: st.DrawFn, base: dict) -> Any:
    """A valid manifest with a few values replaced, keys removed or added."""
    manifest = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(manifest)
        path = draw(st.sampled_from(paths))
        if not path:
            manifest = draw(JSON)
            continue
        parent = manifest
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(JSON)
        else:
            parent[path[-1]] = draw(JSON)
    return manifest


def _manifest_or_manifest_error(call) -> None:
    try:
        result = call()
    except ManifestError:
        return
    assert isinstance(result, Manifest)


@FUZZ
@given(data=st.data())
def test_fuzz_manifest_from_json(valid_manifest, data):
    raw = data.draw(mutated_manifests(valid_manifest) | JSON)
    _manifest_or_manifest_error(lambda: Manifest.from_json(raw, "manifest.json"))


@FUZZ
@given(data=st.data())
def test_fuzz_manifest_load_bytes(valid_manifest, tmp_path_factory, data):
    valid = json.dumps(valid_manifest).encode()
    text = data.draw(
        st.binary(max_size=300)
        | st.builds(_flip_bytes, st.just(valid), st.lists(st.integers(0, 10**6), max_size=6))
        | st.builds(lambda v, cut: v[:cut], st.just(valid), st.integers(0, len(valid)))
    )
    path = tmp_path_factory.getbasetemp() / "fuzz-manifest.json"
    path.write_bytes(text)
    _manifest_or_manifest_error(lambda: Manifest.load(path))


def _flip_bytes(data: bytes, positions: list[int]) -> bytes:
    out = bytearray(data)
    for position in positions:
        out[position % len(out)] ^= 1 << (position % 8)
    return bytes(out)


# --- fuzzing: the index files -------------------------------------------------------------
@pytest.fixture(scope="module")
def index_datasets(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("index-fuzz")
    return {fmt: write(base / fmt, "zstd", fmt, n=4) for fmt in ("csv", "parquet", "arrow")}


def check_index_bytes(root: Path, index_file: str, content: bytes) -> None:
    """Put ``content`` in place of the index; open and read: acumen's errors only."""
    original = (root / index_file).read_bytes()
    (root / index_file).write_bytes(content)
    try:
        read_everything(root)
    except AcumenError:
        pass
    finally:
        (root / index_file).write_bytes(original)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "arrow"])
@settings(FUZZ, max_examples=100)
@given(data=st.data())
def test_fuzz_index_files(index_datasets, fmt, data):
    root = index_datasets[fmt]
    valid = (root / f"index.{fmt}").read_bytes()
    content = data.draw(
        st.binary(max_size=400)
        | st.builds(_flip_bytes, st.just(valid), st.lists(st.integers(0, 10**6), max_size=4))
        | st.builds(lambda v, cut: v[:cut], st.just(valid), st.integers(0, len(valid)))
    )
    check_index_bytes(root, f"index.{fmt}", content)


# --- fuzzing: the codec decoders ----------------------------------------------------------
def check_decode(codec_name: str, payload: bytes, declared: int) -> None:
    codec = plugins.codec(codec_name)
    try:
        result = codec.decode(payload, declared)
    except CorruptDatasetError:
        return
    assert memoryview(result).nbytes == declared


@pytest.fixture(scope="module")
def frames() -> dict[str, bytes]:
    data = np.arange(300, dtype=np.int16).tobytes()
    return {
        name: bytes(plugins.codec(name).encode(np.frombuffer(data, np.uint8)))
        for name in COMPRESSING
    }


@pytest.mark.parametrize("codec", COMPRESSING)
@settings(FUZZ, max_examples=200)
@given(data=st.data())
def test_fuzz_codec_decode(frames, codec, data):
    valid = frames[codec]
    payload = data.draw(
        st.binary(max_size=300)
        | st.builds(_flip_bytes, st.just(valid), st.lists(st.integers(0, 10**6), max_size=3))
        | st.builds(lambda v, cut: v[:cut], st.just(valid), st.integers(0, len(valid)))
    )
    declared = data.draw(st.sampled_from([600, 0, 1]) | st.integers(0, 1 << 20))
    check_decode(codec, payload, declared)


# --- the regression corpus ----------------------------------------------------------------
def corpus(kind: str) -> list[Path]:
    folder = CORPUS / kind
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


@pytest.mark.parametrize("path", corpus("manifest"), ids=_ids(corpus("manifest")))
def test_corpus_manifest(path):
    _manifest_or_manifest_error(lambda: Manifest.load(path))


@pytest.mark.parametrize("path", corpus("index"), ids=_ids(corpus("index")))
def test_corpus_index(index_datasets, path):
    fmt = path.suffix.lstrip(".")
    check_index_bytes(index_datasets[fmt], f"index.{fmt}", path.read_bytes())


@pytest.mark.parametrize("path", corpus("codec"), ids=_ids(corpus("codec")))
def test_corpus_codec(path):
    """Files are named ``CODEC.DECLARED_SIZE.NAME.bin``."""
    codec, declared, _ = path.name.split(".", 2)
    check_decode(codec, path.read_bytes(), int(declared))
