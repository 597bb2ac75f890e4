"""``acumen.concat``: a dataset made of others' samples, their chunk files hard-linked.

Samples and metadata read back equal to the parts' in order (every index format and codec,
fields datasets too), no chunk byte is copied (the files share inodes), mismatched parts are
refused naming the part, deleted samples are not carried, the original package reads a
raw/gzip csv result, and a concatenation killed half-way never opens.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import acumenindexer
import numpy as np
import pytest

import acumen
from acumen.cli import main
from acumen.errors import DatasetExistsError, DatasetWriteError, IncompleteDatasetError
from acumen.format.checksums import file_checksum
from acumen.format.manifest import Manifest
from acumen.format.versions import Deletions, deletion_bytes, new_token
from acumen.verify import verify
from acumen.versions.history import history
from acumen.write.versioning import commit_change, next_version

REPO = Path(__file__).resolve().parents[1]


def sample(k: int, i: int, dtype: str = "float32") -> np.ndarray:
    return np.full((2, 3), k * 100 + i, dtype=dtype)


def write(path: Path, k: int, n: int = 12, **options) -> Path:
    """Part ``k``: ``n`` samples of 24 bytes, about four to a chunk file."""
    dtype = options.pop("dtype", "float32")
    options = {"chunk_size_bytes": 100, "durable": False, **options}
    with acumen.Writer(path, dtype=dtype, **options) as writer:
        for i in range(n):
            writer.add(sample(k, i, dtype), label=i, name=f"p{k}-{i}")
    return path


def expected(parts: list[tuple[int, range]]) -> list[tuple[np.ndarray, dict]]:
    return [
        (sample(k, i), {"label": i, "name": f"p{k}-{i}"}) for k, samples in parts for i in samples
    ]


def assert_reads(path: Path, wanted: list[tuple[np.ndarray, dict]]) -> None:
    with acumen.open(path) as ds:
        assert len(ds) == len(wanted)
        for i, (array, metadata) in enumerate(wanted):
            got, got_metadata = ds[i]
            np.testing.assert_array_equal(got, array)
            assert got_metadata == metadata


@pytest.mark.parametrize("codec", ["raw", "zstd", "gzip"])
def test_concat_of_three_index_formats(tmp_path: Path, codec: str) -> None:
    parts = [
        write(tmp_path / f"p{k}", k, codec=codec, index_format=index_format)
        for k, index_format in enumerate(["csv", "parquet", "arrow"])
    ]
    manifest = acumen.concat(parts, tmp_path / "out")
    out = tmp_path / "out"
    assert_reads(out, expected([(k, range(12)) for k in range(3)]))
    assert manifest.index["name"] == "csv"  # the first part's index format
    assert manifest.concat_of == [{"path": str(p), "version": 1} for p in parts]
    assert json.loads((out / "manifest.json").read_text())["format_version"] == 1
    # every chunk file is the part's own file (one inode), its size and checksum carried
    for k, part in enumerate(parts):
        theirs = {c.file: c for c in acumen.open(part).manifest.chunks}
        for name in theirs:
            mine = out / "chunks" / str(k) / name.removeprefix("chunks/")
            assert os.stat(mine).st_ino == os.stat(part / name).st_ino
        ours = {
            c.file.split("/", 2)[2]: c for c in manifest.chunks if c.file.split("/")[1] == str(k)
        }
        assert {("chunks/" + n, c.size_bytes, c.checksum) for n, c in ours.items()} == {
            (c.file, c.size_bytes, c.checksum) for c in theirs.values()
        }
    assert verify(out, progress=False).ok
    assert history(out)[0].operation == "concat"


def test_concat_of_fields_datasets(tmp_path: Path) -> None:
    fields = {"image": {"dtype": "uint8", "codec": "lz4"}, "score": "float64", "raw": "bytes"}
    paths = []
    for k in range(2):
        with acumen.Writer(tmp_path / f"f{k}", fields=fields, durable=False) as writer:
            for i in range(5):
                record = {
                    "image": np.full((4, 4), k * 10 + i, np.uint8),
                    "score": np.arange(i + 1, dtype=np.float64),
                    "raw": bytes([k, i]),
                }
                writer.add(record, label=i)
        paths.append(tmp_path / f"f{k}")
    acumen.concat(paths, tmp_path / "out")
    with acumen.open(tmp_path / "out") as ds:
        assert ds.fields == ["image", "score", "raw"]
        for k in range(2):
            for i in range(5):
                record, metadata = ds[k * 5 + i]
                np.testing.assert_array_equal(record["image"], np.full((4, 4), k * 10 + i))
                np.testing.assert_array_equal(record["score"], np.arange(i + 1))
                assert record["raw"] == bytes([k, i]) and metadata == {"label": i}


def _differing(tmp_path: Path, case: str) -> tuple[Path, str]:
    """A second part that differs from ``write(p0, 0)`` as ``case`` says; what the error says."""
    other = tmp_path / "p1"
    if case == "dtype":
        write(other, 1, dtype="float64")
        return other, "holds float64"
    if case == "codec":
        write(other, 1, codec="lz4")
        return other, "share a codec"
    if case == "dictionary":  # both zstd with a dictionary, each its own
        return other, "different zstd dictionaries"
    if case == "column type":
        with acumen.Writer(other, dtype="float32", durable=False) as writer:
            writer.add(sample(1, 0), label="zero", name="x")
        return other, "'label' is int in part 0"
    if case == "int column missing":
        with acumen.Writer(other, dtype="float32", durable=False) as writer:
            writer.add(sample(1, 0), name="x")
        return other, "lacks the metadata column 'label' (int)"
    with acumen.Writer(other, fields={"a": "float32"}, durable=False) as writer:
        writer.add({"a": sample(1, 0)}, label=0, name="x")
    return other, "holds fields"


@pytest.mark.parametrize(
    "case", ["dtype", "codec", "dictionary", "column type", "int column missing", "fields"]
)
def test_parts_that_differ_are_refused_naming_the_part(tmp_path: Path, case: str) -> None:
    if case == "dictionary":
        codec = {"name": "zstd", "configuration": {"dictionary_size": 256, "train_samples": 8}}
        first = tmp_path / "p0"
        with acumen.Writer(first, codec=codec, dtype="float32", durable=False) as writer:
            rng = np.random.default_rng(0)
            for i in range(12):
                writer.add(rng.integers(0, 3, (8, 8)).astype(np.float32), label=i, name="a")
        second = tmp_path / "p1"
        with acumen.Writer(second, codec=codec, dtype="float32", durable=False) as writer:
            for i in range(12):
                writer.add(np.full((8, 8), i * 7, np.float32), label=i, name="b")
        message = "different zstd dictionaries"
    else:
        first = write(tmp_path / "p0", 0)
        second, message = _differing(tmp_path, case)
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        acumen.concat([first, second], tmp_path / "out")
    assert f"part 1 ({second})" in str(caught.value)
    assert not (tmp_path / "out").exists()  # refused before anything was written
    if case == "dictionary":  # one dictionary (a part twice): shared, and stored once
        acumen.concat([first, first], tmp_path / "twice")
        with acumen.open(first) as ds, acumen.open(tmp_path / "twice") as twice:
            assert len(twice) == 24 and twice.codec.get_config() == ds.codec.get_config()
            for i in (0, 11, 12, 23):
                np.testing.assert_array_equal(twice.read(i), ds.read(i % 12))


def test_a_float_or_str_column_only_some_parts_have_reads_missing(tmp_path: Path) -> None:
    first = write(tmp_path / "p0", 0, n=2)
    with acumen.Writer(tmp_path / "p1", dtype="float32", durable=False) as writer:
        writer.add(sample(1, 0), label=0, name="x", score=0.5, note="hi")
    acumen.concat([first, tmp_path / "p1"], tmp_path / "out")
    with acumen.open(tmp_path / "out") as ds:
        assert ds.columns == ["label", "name", "score", "note"]
        assert np.isnan(ds.metadata(0)["score"]) and ds.metadata(0)["note"] == ""
        assert ds.metadata(2) == {"label": 0, "name": "x", "score": 0.5, "note": "hi"}


def _delete(root: Path, positions: list[int]) -> None:
    """A deletion version made by hand (acumen.delete is another helper's): a deletion
    vector of physical rows, committed as the next version."""

    def build(newest):
        token = new_token()
        name = f"_deletions/{token}.npy"
        (root / "_deletions").mkdir(exist_ok=True)
        (root / name).write_bytes(deletion_bytes(np.array(positions, np.int64)))
        return next_version(
            newest,
            "delete",
            deletions=Deletions(name, len(positions)),
            files={**newest.files, name: file_checksum(root / name)},
            n_samples=newest.n_rows - len(positions),
        )

    commit_change(root, build)


def test_only_live_samples_of_the_newest_version_are_carried(tmp_path: Path) -> None:
    first = write(tmp_path / "p0", 0, n=8)
    with acumen.Writer(first, mode="append") as writer:  # chunks/<token>/chunk_0.chnk
        for i in range(8, 12):
            writer.add(sample(0, i), label=i, name=f"p0-{i}")
    _delete(first, [0, 1, 2, 3, 9])  # chunk_0 holds samples 0-3: none of it is live
    second = write(tmp_path / "p1", 1, n=3)
    manifest = acumen.concat([first, second], tmp_path / "out")
    live = [i for i in range(12) if i not in (0, 1, 2, 3, 9)]
    assert_reads(tmp_path / "out", expected([(0, live), (1, range(3))]))
    assert manifest.concat_of[0]["version"] == 3  # write, append (made version 2), delete
    names = {c.file for c in manifest.chunks}
    assert "chunks/0/chunk_0.chnk" not in names  # nothing live in it: not carried
    appended = [n for n in names if n.count("/") == 3]
    assert appended and all(n.startswith("chunks/0/") for n in appended)  # chunks/0/<token>/..
    assert verify(tmp_path / "out", progress=False).ok
    # once it changes, version 1 is the concatenation (its provenance kept there only)
    with acumen.Writer(tmp_path / "out", mode="append") as writer:
        writer.add(sample(2, 0), label=0, name="p2-0")
    assert [e.operation for e in history(tmp_path / "out")] == ["concat", "append"]
    assert acumen.open(tmp_path / "out", version=1).manifest.concat_of == manifest.concat_of
    assert acumen.open(tmp_path / "out").manifest.concat_of is None


@pytest.mark.parametrize("codec", ["raw", "gzip"])
def test_the_original_package_reads_a_concatenated_csv_dataset(tmp_path: Path, codec) -> None:
    parts = [write(tmp_path / f"p{k}", k, n=5, codec=codec, index_format="csv") for k in range(2)]
    main(["concat", str(tmp_path / "out"), *map(str, parts)])
    index = acumenindexer.load_index(str(tmp_path / "out" / "index.csv"))
    read = acumenindexer.read_from_index(
        index, dtype=np.float32, use_gzip=codec == "gzip", chunk_paths=str(tmp_path / "out")
    )
    for n, (array, metadata) in enumerate(expected([(0, range(5)), (1, range(5))])):
        got, got_metadata = read(n)
        np.testing.assert_array_equal(got, array)
        assert got_metadata["label"] == metadata["label"]


def test_copies_with_link_false_and_says_so_when_links_fail(tmp_path, monkeypatch) -> None:
    parts = [write(tmp_path / f"p{k}", k, n=4) for k in range(2)]
    acumen.concat(parts, tmp_path / "copied", link=False)
    assert_reads(tmp_path / "copied", expected([(0, range(4)), (1, range(4))]))
    copied = tmp_path / "copied" / "chunks" / "1" / "chunk_0.chnk"
    assert os.stat(copied).st_ino != os.stat(parts[1] / "chunks" / "chunk_0.chnk").st_ino

    def cross_device(source, target):
        raise OSError(errno.EXDEV, "Invalid cross-device link", source)

    monkeypatch.setattr("acumen.versions.concat.os.link", cross_device)
    with pytest.raises(DatasetWriteError, match=r"pass link=False"):
        acumen.concat(parts, tmp_path / "linked")
    with pytest.raises(IncompleteDatasetError):
        acumen.open(tmp_path / "linked")


def test_refusals(tmp_path: Path) -> None:
    part = write(tmp_path / "p0", 0, n=2)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("mine")
    with pytest.raises(DatasetExistsError, match="not an empty folder"):
        acumen.concat([part], tmp_path / "full")
    with pytest.raises(ValueError, match=r"inside .* one of the datasets"):
        acumen.concat([part], part / "out")
    with pytest.raises(ValueError, match="local datasets"):
        acumen.concat([part], "s3://bucket/out")
    with pytest.raises(TypeError, match="list of dataset paths"):
        acumen.concat(part, tmp_path / "out")  # type: ignore[arg-type]
    original = [(np.zeros(2, np.float16), {})]
    acumenindexer.split_into_chunks(original, str(tmp_path / "orig"), n_jobs=1)
    with pytest.raises(acumen.DatasetNotFoundError, match="acumen recode"):
        acumen.concat([part, tmp_path / "orig"], tmp_path / "out")


KILLED_CONCAT = """
import os, signal, sys
import acumen.versions.concat as concat
from acumen.format.manifest import Manifest
point = sys.argv[3]
if point == "link":  # the second chunk file linked, the others not
    real, count = os.link, []
    def link(source, target):
        real(source, target)
        count.append(1)
        if len(count) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
    concat.os.link = link
else:  # manifest.json written, not yet read back and released
    real_write = Manifest.write
    def write(self, root):
        real_write(self, root)
        os.kill(os.getpid(), signal.SIGKILL)
    Manifest.write = write
concat.concat(sys.argv[1].split(","), sys.argv[2])
"""


@pytest.mark.parametrize("point", ["link", "manifest"])
def test_a_concat_killed_half_way_never_opens(tmp_path: Path, point: str) -> None:
    parts = [write(tmp_path / f"p{k}", k, n=8) for k in range(2)]
    joined = ",".join(map(str, parts))
    result = subprocess.run(
        [sys.executable, "-c", KILLED_CONCAT, joined, str(tmp_path / "out"), point],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert (tmp_path / "out" / "manifest.json").exists() == (point == "manifest")
    with pytest.raises(IncompleteDatasetError):
        acumen.open(tmp_path / "out")
    for k, part in enumerate(parts):  # the parts are untouched
        assert_reads(part, expected([(k, range(8))]))


def test_a_damaged_concat_of_is_a_manifest_error(tmp_path: Path) -> None:
    raw = acumen.concat([write(tmp_path / "p0", 0, n=1)], tmp_path / "out").to_json()
    raw["concat_of"] = [{"path": "p0", "version": "one"}]
    with pytest.raises(acumen.ManifestError, match=r"concat_of\[0\]\.version"):
        Manifest.from_json(raw, tmp_path / "out" / "manifest.json")
