"""``[source] webdataset``: tar shards, one sample per key, fields and metadata by extension."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import acumen
from acumen.convert import ConversionError, convert
from acumen.convert.webdataset import ShardError


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a dict config's relative paths start here


def png(value: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.full((3, 4, 3), value, np.uint8)).save(out, "PNG")
    return out.getvalue()


def write_shard(path: Path, members: list[tuple[str, bytes]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def sample_members(key: int, label: Any = None) -> list[tuple[str, bytes]]:
    vector = io.BytesIO()
    np.save(vector, np.arange(key % 3 + 1, dtype=np.float32) * key)
    meta = {"caption": f"a photo {key}", "width": 4, "boxes": [[0, 1]]}
    return [
        (f"{key:06d}.png", png(key)),
        (f"{key:06d}.cls", str(key % 2 if label is None else label).encode()),
        (f"{key:06d}.json", json.dumps(meta).encode()),
        (f"{key:06d}.npy", vector.getvalue()),
    ]


def two_shards(root: Path, bad_label_key: int | None = None) -> None:
    for shard in range(2):
        members = []
        for key in range(shard * 4, shard * 4 + 4):
            members += sample_members(key, "cat" if key == bad_label_key else None)
        write_shard(root / "shards" / f"{shard:03d}.tar", members)


def run(out: str, configuration: dict | None = None, **run_settings: Any) -> Any:
    return convert(
        {
            "source": {"webdataset": "shards/*.tar"},
            "reader": {"name": "webdataset", "configuration": configuration or {}},
            "output": {"path": out},
            "run": {"progress": False, "part_size": 3, **run_settings},
        }
    )


def test_shards_become_fields_and_metadata(tmp_path: Path) -> None:
    two_shards(tmp_path)
    assert run("out", n_jobs=2).samples == 8
    ds = acumen.open(tmp_path / "out")
    assert ds.fields == ["png", "npy"]
    for key in range(8):
        sample, metadata = ds[key]
        assert sample["png"] == png(key)
        np.testing.assert_array_equal(sample["npy"], np.arange(key % 3 + 1, dtype=np.float32) * key)
        assert metadata == {
            "path": f"shards/{key // 4:03d}.tar",
            "key": f"{key:06d}",
            "cls": key % 2,
            "caption": f"a photo {key}",
            "width": 4,
            "boxes": "[[0, 1]]",
        }
    run("decoded", {"decode_images": "RGB", "ignore": ["npy"]})
    ds = acumen.open(tmp_path / "decoded")
    assert ds.fields == ["png"]
    for key in range(8):
        np.testing.assert_array_equal(ds.read(key)["png"], np.full((3, 4, 3), key, np.uint8))


def test_resume_after_a_bad_member_is_fixed(tmp_path: Path) -> None:
    two_shards(tmp_path, bad_label_key=5)
    with pytest.raises(ConversionError) as raised:
        run("out")
    assert (
        "item 5 (key '000005' in shards/001.tar): ValueError: member 000005.cls: 'cat' is not an "
        "int label" in str(raised.value)
    )
    two_shards(tmp_path)
    assert run("out").resumed_parts == 1
    run("clean")
    files = [p for p in sorted((tmp_path / "out").rglob("*")) if p.is_file()]
    assert files and all(
        p.read_bytes() == (tmp_path / "clean" / p.relative_to(tmp_path / "out")).read_bytes()
        for p in files
        if p.name != "convert-report.json"
    )


@pytest.mark.parametrize(
    ("members", "message"),
    [
        (
            [("000001.png", b"x"), ("README", b"x")],
            "shards/000.tar: member README has no extension",
        ),
        (
            [("a.png", b"x"), ("b.png", b"x"), ("a.cls", b"1")],
            "shards/000.tar: member a.cls: key 'a' appears again after other keys",
        ),
        ([("a.png", b"x"), ("a.png", b"y")], "shards/000.tar: member a.png: a second .png"),
    ],
)
def test_shard_problems_name_the_shard_and_member(
    tmp_path: Path, members: list, message: str
) -> None:
    write_shard(tmp_path / "shards" / "000.tar", members)
    with pytest.raises(ShardError) as raised:
        run("out")
    assert message in str(raised.value)


def test_compressed_shards_are_refused_with_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "shards").mkdir()
    with tarfile.open(tmp_path / "shards" / "000.tar", "w:gz") as tar:
        info = tarfile.TarInfo("a.png")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(ShardError, match="not an uncompressed tar file"):
        run("out")
