"""``acumen convert``: config checking, sources, readers, output, bad items, resumption, CLI."""

from __future__ import annotations

import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import acumen
from acumen import cli
from acumen.convert import ConfigError, ConversionError, convert, load_config
from acumen.convert.sources import iter_items
from acumen.errors import DatasetExistsError, IncompleteDatasetError
from tests.conftest import CODECS, INDEX_FORMATS

REPO = Path(__file__).resolve().parents[1]
HELPERS = "tests.convert_helpers"


# --- helpers ------------------------------------------------------------------------------
def save_npys(folder: Path, count: int, *, shape=(2, 3), dtype=np.float32, seed=0) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"s{i:04d}.npy"
        np.save(path, (rng.normal(size=shape) * 100).astype(dtype))
        paths.append(path)
    return paths


def base_config(out: Path | str = "out", **sections: dict) -> dict[str, Any]:
    config: dict[str, Any] = {
        "source": {"glob": "data/*.npy"},
        "reader": {"name": "npy"},
        "output": {"path": str(out)},
        "run": {"progress": False},
    }
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    return config


def write_json(path: Path, config: dict) -> Path:
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def all_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def read_all(path: Path) -> tuple[list[Any], list[dict]]:
    with acumen.open(path) as ds:
        samples = [(ds.read(i), ds.metadata(i)) for i in range(len(ds))]
    return [s for s, _ in samples], [m for _, m in samples]


def assert_same_arrays(got: list[np.ndarray], expected: list[np.ndarray]) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()


# --- config checking ----------------------------------------------------------------------
def _set(section: str, key: str, value: Any):
    def change(config: dict) -> None:
        config.setdefault(section, {})[key] = value

    return change


def _drop(section: str, key: str | None = None):
    def change(config: dict) -> None:
        if key is None:
            del config[section]
        else:
            del config[section][key]

    return change


BAD_CONFIGS = {
    "unknown section": (_set("extra", "x", 1), "'extra'", "sections: source, reader, output, run"),
    "unknown source key": (_set("source", "colour", "red"), "'source.colour'", "allowed: "),
    "unknown reader key": (_set("reader", "mode", "L"), "'reader.mode'", "configuration, name"),
    "unknown output key": (_set("output", "level", 3), "'output.level'", "chunk_size, codec"),
    "unknown run key": (_set("run", "workers", 2), "'run.workers'", "n_jobs"),
    "missing source": (_drop("source"), "'source'", "is missing"),
    "missing reader": (_drop("reader"), "'reader'", "is missing"),
    "missing reader name": (_drop("reader", "name"), "'reader.name'", "npy, image, bytes"),
    "missing output": (_drop("output"), "'output'", "is missing"),
    "missing output path": (_drop("output", "path"), "'output.path'", "is missing"),
    "two source kinds": (
        _set("source", "callable", f"{HELPERS}:numbered_items"),
        "'source'",
        "exactly one of glob, table, callable",
    ),
    "no source kind": (_drop("source", "glob"), "'source'", "exactly one of glob, table"),
    "n_jobs text": (_set("run", "n_jobs", "two"), "'run.n_jobs'", "must be int, got 'two'"),
    "n_jobs bool": (_set("run", "n_jobs", True), "'run.n_jobs'", "must be int"),
    "n_jobs zero": (_set("run", "n_jobs", 0), "'run.n_jobs'", "positive number of workers or -1"),
    "part_size zero": (_set("run", "part_size", 0), "'run.part_size'", "must be positive"),
    "part_size text": (_set("run", "part_size", "10"), "'run.part_size'", "must be int"),
    "progress text": (_set("run", "progress", "yes"), "'run.progress'", "must be bool"),
    "engine spark": (_set("run", "engine", "spark"), "'run.engine'", "one of local, dask"),
    "on_error ignore": (_set("run", "on_error", "ignore"), "'run.on_error'", "one of raise, skip"),
    "scheduler number": (_set("run", "scheduler", 5), "'run.scheduler'", "must be str"),
    "chunk_size lots": (_set("output", "chunk_size", "lots"), "'output.chunk_size'", "64MiB"),
    "chunk_size zero": (_set("output", "chunk_size", 0), "'output.chunk_size'", "positive size"),
    "chunk_size unit": (_set("output", "chunk_size", "3 parsecs"), "'output.chunk_size'", "64MiB"),
    "unknown codec": (
        _set("output", "codec", "snappy"),
        "'output.codec'",
        "codec 'snappy' is not installed; installed codecs: ",
    ),
    "unknown index format": (
        _set("output", "index_format", "xml"),
        "'output.index_format'",
        "index format 'xml' is not installed; installed index formats: arrow, csv, parquet",
    ),
    "unknown reader": (
        _set("reader", "name", "tiff"),
        "'reader'",
        "reader 'tiff' is not installed; installed readers: bytes, callable, column, image, npy, "
        "webdataset",
    ),
    "zstd level 99": (
        _set("output", "codec", {"name": "zstd", "configuration": {"level": 99}}),
        "'output.codec'",
        "zstd level must be at most 22",
    ),
    "codec configuration unknown": (
        _set("output", "codec", {"name": "gzip", "configuration": {"speed": 1}}),
        "'output.codec'",
        "speed",
    ),
    "bad dtype": (_set("output", "dtype", "float77"), "'output.dtype'", "is not a dtype"),
    "dtype not text": (_set("output", "dtype", 32), "'output.dtype'", "must be str"),
    "dtype and fields": (
        lambda c: c["output"].update(dtype="float32", fields={"a": "float32"}),
        "'output.dtype'",
        "output.fields",
    ),
    "bad field dtype": (_set("output", "fields", {"a": "float77"}), "'output.fields'", "float77"),
    "table missing": (
        lambda c: c.update(source={"table": "nothere.csv"}),
        "'source.table'",
        "no such file",
    ),
    "table not csv": (
        lambda c: c.update(source={"table": "config.json"}),
        "'source.table'",
        "must be a .csv, .parquet, .arrow or .feather file, got config.json",
    ),
    "callable not importable": (
        lambda c: c.update(source={"callable": "no_such_module_xyz:items"}),
        "'source.callable'",
        "cannot be imported",
    ),
    "callable missing function": (
        lambda c: c.update(source={"callable": f"{HELPERS}:no_such_function"}),
        "'source.callable'",
        "cannot be imported",
    ),
    "callable without colon": (
        lambda c: c.update(source={"callable": "tests.convert_helpers"}),
        "'source.callable'",
        "must look like 'package.module:function'",
    ),
    "callable not callable": (
        lambda c: c.update(source={"callable": f"{HELPERS}:NOT_CALLABLE"}),
        "'source.callable'",
        "is not callable",
    ),
    "path_metadata number": (
        _set("source", "path_metadata", 3),
        "'source.path_metadata'",
        "a key name or false",
    ),
    "arguments not a table": (_set("source", "arguments", [1]), "'source.arguments'", "dict"),
    "image mode": (
        lambda c: c.update(reader={"name": "image", "configuration": {"mode": "CMYK"}}),
        "'reader'",
        "mode must be one of",
    ),
    "reader function not importable": (
        lambda c: c.update(reader={"name": "callable", "configuration": {"function": "nope:f"}}),
        "'reader'",
        "cannot be imported",
    ),
    "section not a table": (lambda c: c.update(run=[1, 2]), "'run'", "must be a table"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_is_a_config_error_before_any_output(tmp_path: Path, case: str) -> None:
    change, key, allowed = BAD_CONFIGS[case]
    config = base_config()
    change(config)
    path = write_json(tmp_path / "config.json", config)
    with pytest.raises(ConfigError) as raised:
        convert(path)
    message = str(raised.value)
    assert isinstance(raised.value, ValueError)
    assert message.startswith(f"{path}: ")
    assert f"key {key}" in message
    assert allowed in message
    assert not (tmp_path / "out").exists()
    assert os.listdir(tmp_path) == ["config.json"]


def test_object_dtype_is_a_config_error(tmp_path: Path) -> None:
    """acumen cannot store Python objects: the config check should say so, not each item."""
    save_npys(tmp_path / "data", 2)
    path = write_json(tmp_path / "config.json", base_config(output={"dtype": "object"}))
    with pytest.raises(ConfigError, match=r"key 'output\.dtype'"):
        convert(path)
    assert not (tmp_path / "out").exists()


def test_config_file_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "c.ini").write_text("[source]\n")
    with pytest.raises(ConfigError, match=r"c\.ini: a config must end in \.toml, \.yaml"):
        load_config(tmp_path / "c.ini")
    (tmp_path / "c.toml").write_text("[source\nglob = 1\n")
    with pytest.raises(ConfigError, match=r"c\.toml: does not parse as TOML"):
        load_config(tmp_path / "c.toml")
    (tmp_path / "c.yaml").write_text("source: [unclosed\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: does not parse as YAML"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "c.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="must hold the tables source, reader, output and run"):
        load_config(tmp_path / "c.json")


CONFIG_TEXTS = {
    "config.toml": """
[source]
glob = "data/*.npy"
[reader]
name = "npy"
[output]
path = "out"
codec = {name = "zstd", configuration = {level = 5}}
index_format = "parquet"
chunk_size = "1KiB"
[run]
part_size = 4
progress = false
""",
    "config.yaml": """
source:
  glob: data/*.npy
reader:
  name: npy
output:
  path: out
  codec: {name: zstd, configuration: {level: 5}}
  index_format: parquet
  chunk_size: 1KiB
run:
  part_size: 4
  progress: false
""",
    "config.json": json.dumps(
        {
            "source": {"glob": "data/*.npy"},
            "reader": {"name": "npy"},
            "output": {
                "path": "out",
                "codec": {"name": "zstd", "configuration": {"level": 5}},
                "index_format": "parquet",
                "chunk_size": "1KiB",
            },
            "run": {"part_size": 4, "progress": False},
        }
    ),
}


def test_toml_yaml_and_json_configs_give_the_same_output(tmp_path: Path) -> None:
    outputs = {}
    for name, text in CONFIG_TEXTS.items():
        folder = tmp_path / name.replace(".", "_")
        save_npys(folder / "data", 10, seed=1)
        (folder / name).write_text(text)
        config = load_config(folder / name)
        assert config.output.chunk_size_bytes == 1024 and config.run.part_size == 4
        assert config.output.path == folder / "out"  # relative to the config's folder
        assert config.source.root == folder
        summary = convert(folder / name)
        assert summary.samples == 10
        files = all_files(folder / "out")
        report = json.loads(files.pop("convert-report.json"))
        assert report == {"skipped": [], "config": str(folder / name)}
        outputs[name] = files
    first, *others = outputs.values()
    assert all(other == first for other in others)


def test_relative_paths_are_relative_to_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    save_npys(project / "data", 3)
    (project / "configs").mkdir()
    config = base_config("../built/out")
    config["source"] = {"glob": "../data/*.npy"}
    path = write_json(project / "configs" / "c.json", config)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    convert(Path(os.path.relpath(path, elsewhere)))
    assert list(elsewhere.iterdir()) == []
    _, metadata = read_all(project / "built" / "out")
    assert [m["path"] for m in metadata] == [f"../data/s{i:04d}.npy" for i in range(3)]


# --- sources ------------------------------------------------------------------------------
def make_tree(root: Path) -> list[str]:
    """Files under root/data (npy and others); returns every .npy, relative to root."""
    names = [
        "data/top.npy",
        "data/a.npy",
        "data/a/x1.npy",
        "data/a/x2.npy",
        "data/a/x10.npy",
        "data/a/xa.npy",
        "data/a/b/y.npy",
        "data/a/b/deep/z.npy",
        "data/c/x1.npy",
        "data/c/x3.npy",
        "data/B/x1.npy",
    ]
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, np.array([len(name)], np.int8))
    for other in ["data/notes.txt", "data/a/x1.npz", "data/a/x1.npy.bak", "data/c/readme"]:
        (root / other).write_text("not a sample")
    return names


GLOBS = {
    "data/**/*.npy": lambda name: name.endswith(".npy"),
    "data/*.npy": lambda name: name.count("/") == 1,
    "data/*/x?.npy": lambda name: name.count("/") == 2 and len(name.rsplit("/", 1)[1]) == 6,
    "data/a/x[12].npy": lambda name: name in ("data/a/x1.npy", "data/a/x2.npy"),
    "data/[ac]/x1.npy": lambda name: name in ("data/a/x1.npy", "data/c/x1.npy"),
    "data/a/**/*.npy": lambda name: name.startswith("data/a/"),
    "**/z.npy": lambda name: name.endswith("/z.npy"),
}


@pytest.mark.parametrize("pattern", list(GLOBS))
def test_glob_source_matches_in_sorted_path_order(tmp_path: Path, pattern: str) -> None:
    names = make_tree(tmp_path)
    config = load_config(write_json(tmp_path / "c.json", base_config(source={"glob": pattern})))
    got = [metadata["path"] for _, metadata in iter_items(config.source)]
    expected = sorted((n for n in names if GLOBS[pattern](n)), key=lambda n: n.split("/"))
    assert got == expected
    assert got, "every pattern matches something"
    items = [item for item, _ in iter_items(config.source)]
    assert items == [str(tmp_path / n) for n in expected]


def test_glob_source_converts_nested_folders_in_order(tmp_path: Path) -> None:
    names = make_tree(tmp_path)
    convert(write_json(tmp_path / "c.json", base_config(source={"glob": "data/**/*.npy"})))
    arrays, metadata = read_all(tmp_path / "out")
    expected = sorted(names, key=lambda n: n.split("/"))
    assert [m["path"] for m in metadata] == expected
    assert [int(a[0]) for a in arrays] == [len(n) for n in expected]


def test_glob_sorted_across_directories_with_many_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    names = []
    for _ in range(60):
        name = f"data/{rng.integers(0, 5)}/{rng.integers(0, 3)}/f{rng.integers(0, 10**6):06d}.npy"
        if name not in names:
            names.append(name)
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            np.save(tmp_path / name, np.zeros(1))
    config = load_config(base_config(source={"glob": str(tmp_path / "data/**/*.npy")}))
    got = [Path(item).relative_to(tmp_path).as_posix() for item, _ in iter_items(config.source)]
    assert got == sorted(names)


def write_listing(folder: Path, fmt: str, path_column: str = "path") -> list[dict]:
    """Files under folder/files, listed in folder/list.<fmt> with typed columns."""
    save_npys(folder / "files", 4, seed=2)
    rows = [
        {"label": 3, "score": 0.5, "name": "cat", "flag": True},
        {"label": -1, "score": 2.25, "name": "", "flag": False},
        {"label": 7, "score": -1.0, "name": "dog with spaces", "flag": True},
        {"label": 0, "score": 1e-3, "name": "ü", "flag": False},
    ]
    # Listed in another order than the files' names: the table's order is kept.
    order = [2, 0, 3, 1]
    frame = pd.DataFrame(
        [{path_column: f"files/s{i:04d}.npy", **rows[k]} for k, i in enumerate(order)]
    )
    if fmt == "csv":
        frame.to_csv(folder / "list.csv", index=False)
    else:
        frame.to_parquet(folder / "list.parquet", index=False)
    return [{**rows[k], "file": f"files/s{i:04d}.npy"} for k, i in enumerate(order)]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_table_source_metadata_and_types(tmp_path: Path, fmt: str) -> None:
    listing = tmp_path / "listing"
    rows = write_listing(listing, fmt)
    # The config lives elsewhere: relative paths in the table are relative to the table.
    config = base_config()
    config["source"] = {"table": f"../listing/list.{fmt}"}
    (tmp_path / "configs").mkdir()
    convert(write_json(tmp_path / "configs" / "c.json", config))
    arrays, metadata = read_all(tmp_path / "configs" / "out")
    for array, meta, row in zip(arrays, metadata, rows, strict=True):
        expected = {k: v for k, v in row.items() if k != "file"}
        assert meta == {**expected, "path": row["file"]}
        assert [type(meta[k]) for k in ("label", "score", "name", "flag", "path")] == [
            int,
            float,
            str,
            bool,
            str,
        ]
        assert array.tobytes() == np.load(listing / row["file"]).tobytes()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_table_path_column_and_path_metadata_settings(tmp_path: Path, fmt: str) -> None:
    rows = write_listing(tmp_path, fmt, path_column="file")
    for name, path_metadata, key in [
        ("off", False, None),
        ("renamed", "source_file", "source_file"),
        ("default", True, "path"),
    ]:
        config = base_config(f"out_{name}", source={"table": f"list.{fmt}", "path_column": "file"})
        del config["source"]["glob"]
        config["source"]["path_metadata"] = path_metadata
        convert(write_json(tmp_path / f"{name}.json", config))
        _, metadata = read_all(tmp_path / f"out_{name}")
        for meta, row in zip(metadata, rows, strict=True):
            expected = {k: v for k, v in row.items() if k != "file"}
            if key is not None:
                expected[key] = row["file"]
            assert meta == expected


def test_table_without_the_path_column_is_reported(tmp_path: Path) -> None:
    write_listing(tmp_path, "csv", path_column="file")
    config = base_config(source={"table": "list.csv"})
    del config["source"]["glob"]
    with pytest.raises(ValueError, match=r"no column 'path' \(set source\.path_column\)"):
        convert(write_json(tmp_path / "c.json", config))


def test_csv_table_source_closes_its_file(tmp_path: Path) -> None:
    """Bug: the driver reads the first item of the table to settle the dtype and drops the
    generator; pandas' chunked reader is never closed, so the file is left open
    (ResourceWarning, an error under pytest's warnings-as-errors)."""
    write_listing(tmp_path, "csv")
    config = base_config(source={"table": "list.csv"})
    del config["source"]["glob"]
    convert(write_json(tmp_path / "c.json", config))
    gc.collect()


def test_callable_source_with_arguments_and_callable_reader(tmp_path: Path) -> None:
    config = base_config(
        source={"callable": f"{HELPERS}:numbered_items", "arguments": {"count": 5, "prefix": "q"}},
        reader={"name": "callable", "configuration": {"function": f"{HELPERS}:read_numbered"}},
        run={"part_size": 2},
    )
    del config["source"]["glob"]
    summary = convert(write_json(tmp_path / "c.json", config))
    assert summary.samples == 5
    arrays, metadata = read_all(tmp_path / "out")
    assert_same_arrays(arrays, [np.arange(i + 1, dtype=np.int32) * 3 for i in range(5)])
    assert metadata == [{"path": f"q-{i}", "name": f"q-{i}", "number": i} for i in range(5)]


def test_callable_source_without_path_metadata(tmp_path: Path) -> None:
    config = base_config(
        source={"callable": f"{HELPERS}:numbered_items", "path_metadata": False},
        reader={"name": "callable", "configuration": {"function": f"{HELPERS}:read_numbered"}},
    )
    del config["source"]["glob"]
    convert(write_json(tmp_path / "c.json", config))
    _, metadata = read_all(tmp_path / "out")
    assert metadata == [{"name": f"item-{i}", "number": i} for i in range(3)]


# --- readers ------------------------------------------------------------------------------
def test_npy_reader_refuses_pickled_object_arrays(tmp_path: Path) -> None:
    from tests.convert_helpers import Booby

    save_npys(tmp_path / "data", 2)
    marker = tmp_path / "unpickled.txt"
    trap = np.empty(1, dtype=object)
    trap[0] = Booby(str(marker))
    np.save(tmp_path / "data" / "s0001.npy", trap, allow_pickle=True)
    config = base_config(run={"on_error": "skip"})
    summary = convert(write_json(tmp_path / "c.json", config))
    assert not marker.exists(), "the npy reader unpickled a file"
    assert summary.samples == 1
    assert [s["item"] for s in summary.skipped] == [str(tmp_path / "data" / "s0001.npy")]
    assert "allow_pickle=False" in summary.skipped[0]["error"]


def write_pngs(folder: Path) -> dict[str, Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    paths = {}
    for k, (mode, channels) in enumerate([("L", 0), ("RGB", 3), ("RGBA", 4), ("RGB", 3)]):
        shape = (5 + k, 7) + ((channels,) if channels else ())
        array = rng.integers(0, 256, size=shape, dtype=np.uint8)
        path = folder / f"img{k}_{mode}.png"
        Image.fromarray(array, mode=mode).save(path)
        paths[path.name] = path
    return paths


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", None])
def test_image_reader_modes(tmp_path: Path, mode: str | None) -> None:
    from PIL import Image

    paths = write_pngs(tmp_path / "data")
    config = base_config(
        source={"glob": "data/*.png"}, reader={"name": "image", "configuration": {"mode": mode}}
    )
    convert(write_json(tmp_path / "c.json", config))
    arrays, metadata = read_all(tmp_path / "out")
    expected = []
    for name in sorted(paths):
        with Image.open(paths[name]) as image:
            converted = image if mode is None or image.mode == mode else image.convert(mode)
            expected.append(np.asarray(converted))
    assert_same_arrays(arrays, expected)
    assert [m["path"] for m in metadata] == [f"data/{n}" for n in sorted(paths)]
    channels = {"L": 2, "RGB": 3, "RGBA": 4}
    if mode is not None:
        assert all(a.ndim == (2 if mode == "L" else 3) for a in arrays)
        assert all(mode == "L" or a.shape[2] == channels[mode] for a in arrays)
    else:
        assert [a.shape[2:] for a in arrays] == [(), (3,), (4,), (3,)]


@pytest.mark.parametrize("field", [None, "encoded"])
def test_bytes_reader_keeps_file_bytes_in_a_field(tmp_path: Path, field: str | None) -> None:
    paths = write_pngs(tmp_path / "data")
    configuration = {} if field is None else {"field": field}
    config = base_config(
        source={"glob": "data/*.png"},
        reader={"name": "bytes", "configuration": configuration},
        output={"codec": "zstd"},
    )
    convert(write_json(tmp_path / "c.json", config))
    name = field or "data"
    with acumen.open(tmp_path / "out") as ds:
        assert ds.fields == [name]
        assert len(ds) == len(paths)
        for i, key in enumerate(sorted(paths)):
            record, metadata = ds[i]
            assert record == {name: paths[key].read_bytes()}
            assert metadata == {"path": f"data/{key}"}


def test_reader_metadata_is_merged_with_source_metadata(tmp_path: Path) -> None:
    rows = write_listing(tmp_path, "csv")
    config = base_config(
        source={"table": "list.csv"},
        reader={"name": "callable", "configuration": {"function": f"{HELPERS}:read_with_stem"}},
    )
    del config["source"]["glob"]
    convert(write_json(tmp_path / "c.json", config))
    _, metadata = read_all(tmp_path / "out")
    for meta, row in zip(metadata, rows, strict=True):
        expected = {k: v for k, v in row.items() if k != "file"}
        assert meta == {**expected, "path": row["file"], "stem": Path(row["file"]).stem}


# --- output -------------------------------------------------------------------------------
@pytest.mark.parametrize("index_format", INDEX_FORMATS)
@pytest.mark.parametrize("codec", CODECS)
def test_every_codec_and_index_format(tmp_path: Path, codec: str, index_format: str) -> None:
    paths = save_npys(tmp_path / "data", 9, shape=(4, 3), dtype=np.float64, seed=3)
    config = base_config(
        output={"codec": codec, "index_format": index_format, "chunk_size": 200},
        run={"part_size": 4},
    )
    summary = convert(write_json(tmp_path / "c.json", config))
    assert summary.samples == 9 and summary.skipped == [] and summary.resumed_parts == 0
    assert summary.source_bytes == 9 * 4 * 3 * 8
    arrays, metadata = read_all(tmp_path / "out")
    assert_same_arrays(arrays, [np.load(p) for p in paths])
    assert metadata == [{"path": f"data/{p.name}"} for p in paths]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["codec"]["name"] == codec and manifest["index"]["name"] == index_format
    assert not (tmp_path / "out" / ".acumen-convert").exists()
    assert not (tmp_path / "out" / ".writing").exists()
    assert str(summary).startswith(f"{tmp_path / 'out'}: 9 samples, ")


def test_fields_from_config_with_a_callable_reader(tmp_path: Path) -> None:
    paths = save_npys(tmp_path / "data", 7, shape=(3, 2), seed=4)
    config = base_config(
        reader={
            "name": "callable",
            "configuration": {"function": f"{HELPERS}:read_image_and_mask"},
        },
        output={
            "fields": {"image": "float64", "mask": {"dtype": "uint8", "codec": "zstd"}},
            "codec": "lz4",
        },
        run={"part_size": 3},
    )
    convert(write_json(tmp_path / "c.json", config))
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    fields = {f["name"]: f for f in manifest["fields"]}
    assert fields["image"]["dtype"] == "<f8" and fields["mask"]["dtype"] == "|u1"
    assert fields["mask"]["codec"]["name"] == "zstd"
    with acumen.open(tmp_path / "out") as ds:
        assert ds.fields == ["image", "mask"]
        for i, path in enumerate(paths):
            record, metadata = ds[i]
            source = np.load(path)
            assert_same_arrays(
                [record["image"], record["mask"]],
                [source.astype(np.float64), (source > 0).astype(np.uint8)],
            )
            assert metadata == {"path": f"data/{path.name}", "positive": int((source > 0).sum())}


def test_fields_from_the_first_sample_without_config(tmp_path: Path) -> None:
    save_npys(tmp_path / "data", 4, shape=(2, 2), seed=4)
    config = base_config(
        reader={
            "name": "callable",
            "configuration": {"function": f"{HELPERS}:read_image_and_mask"},
        },
    )
    convert(write_json(tmp_path / "c.json", config))
    with acumen.open(tmp_path / "out") as ds:
        assert ds.fields == ["image", "mask"]
        assert ds.read(0)["image"].dtype == np.float32


def test_zstd_dictionary_from_config(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    base = np.round(rng.normal(size=64), 2).astype(np.float32)
    (tmp_path / "data").mkdir()
    expected = []
    for i in range(150):
        array = base + np.float32(np.round(rng.normal(scale=0.05), 2))
        np.save(tmp_path / "data" / f"s{i:04d}.npy", array)
        expected.append(array)
    config_text = """
[source]
glob = "data/*.npy"
[reader]
name = "npy"
[output]
path = "out"
codec = {name="zstd", configuration={dictionary_size=4096, train_samples=50}}
[run]
part_size = 40
progress = false
"""
    (tmp_path / "c.toml").write_text(config_text)
    convert(tmp_path / "c.toml")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    configuration = manifest["codec"]["configuration"]
    assert configuration["dictionary"] == "codecs/data.zstd.dict"
    assert configuration["dictionary_size"] == 4096 and configuration["train_samples"] == 50
    assert (tmp_path / "out" / "codecs" / "data.zstd.dict").stat().st_size > 0
    arrays, _ = read_all(tmp_path / "out")
    assert_same_arrays(arrays, expected)


def test_dtype_casting_from_config(tmp_path: Path) -> None:
    paths = save_npys(tmp_path / "data", 5, shape=(3,), dtype=np.float64, seed=6)
    convert(write_json(tmp_path / "c.json", base_config(output={"dtype": "float32"})))
    arrays, _ = read_all(tmp_path / "out")
    assert_same_arrays(arrays, [np.load(p).astype(np.float32) for p in paths])
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["dtype"] == "<f4"


def test_mixed_shapes_keep_their_shapes(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    expected = [np.arange(n, dtype=np.int16) for n in (1, 5, 0, 3, 8)]
    for i, array in enumerate(expected):
        np.save(tmp_path / "data" / f"s{i}.npy", array)
    convert(write_json(tmp_path / "c.json", base_config(run={"part_size": 2})))
    arrays, _ = read_all(tmp_path / "out")
    assert_same_arrays(arrays, expected)


# --- bad items ----------------------------------------------------------------------------
def spoil(path: Path) -> None:
    path.write_bytes(b"this is not an npy file")


def test_on_error_skip_reports_bad_items_and_keeps_the_rest(tmp_path: Path) -> None:
    paths = save_npys(tmp_path / "data", 10, seed=8)
    originals = [np.load(p) for p in paths]
    bad = {0, 4, 5, 9}  # the first item, a whole part (part_size 2) and the last item
    for i in bad:
        spoil(paths[i])
    config = base_config(run={"on_error": "skip", "part_size": 2})
    summary = convert(write_json(tmp_path / "c.json", config))
    report = json.loads((tmp_path / "out" / "convert-report.json").read_text())
    assert report["config"] == str(tmp_path / "c.json")
    assert [entry["item"] for entry in report["skipped"]] == [str(paths[i]) for i in sorted(bad)]
    assert [entry["position"] for entry in report["skipped"]] == sorted(bad)
    assert all(entry["error"].startswith("ValueError: ") for entry in report["skipped"])
    assert report["skipped"] == summary.skipped
    assert summary.samples == 6
    assert "4 item(s) skipped" in str(summary)
    arrays, metadata = read_all(tmp_path / "out")
    good = [i for i in range(10) if i not in bad]
    assert [m["path"] for m in metadata] == [f"data/{paths[i].name}" for i in good]
    assert_same_arrays(arrays, [originals[i] for i in good])


def test_on_error_raise_stops_then_resumes_after_the_fix(tmp_path: Path) -> None:
    paths = save_npys(tmp_path / "data", 12, seed=9)
    good_bytes = paths[7].read_bytes()
    spoil(paths[7])
    config = base_config(tmp_path / "out", run={"part_size": 3})
    config["source"]["glob"] = str(tmp_path / "data" / "*.npy")
    with pytest.raises(ConversionError) as raised:
        convert(config)
    message = str(raised.value)
    assert f"item 7 ({paths[7]})" in message
    assert "ValueError: " in message and "pickled" in message
    with pytest.raises(IncompleteDatasetError):
        acumen.open(tmp_path / "out")

    paths[7].write_bytes(good_bytes)
    summary = convert(config)
    assert summary.resumed_parts == 2 and summary.samples == 12
    clean = {**config, "output": {"path": str(tmp_path / "clean")}}
    assert convert(clean).resumed_parts == 0
    assert all_files(tmp_path / "out") == all_files(tmp_path / "clean")


def test_bad_first_item_with_raise(tmp_path: Path) -> None:
    paths = save_npys(tmp_path / "data", 3)
    spoil(paths[0])
    with pytest.raises(ConversionError, match=r"item 0 \("):
        convert(write_json(tmp_path / "c.json", base_config()))


def test_changed_config_is_refused_and_finished_output_too(tmp_path: Path) -> None:
    paths = save_npys(tmp_path / "data", 8, seed=10)
    good_bytes = paths[5].read_bytes()
    spoil(paths[5])
    path = write_json(tmp_path / "c.json", base_config(run={"part_size": 2}))
    with pytest.raises(ConversionError):
        convert(path)
    paths[5].write_bytes(good_bytes)
    for change, named in [
        ({"output": {"codec": "zstd"}}, "differs in output"),
        ({"run": {"part_size": 3}}, "differs in part_size"),
        ({"reader": {"name": "bytes"}}, "differs in reader"),
        ({"source": {"glob": "data/s000*.npy"}}, "differs in source"),
    ]:
        changed = base_config(run={"part_size": 2})
        for section, values in change.items():
            changed[section].update(values)
        with pytest.raises(ConfigError, match=named) as raised:
            convert(write_json(tmp_path / "changed.json", changed))
        assert "was started with another config" in str(raised.value)
        assert str(tmp_path / "changed.json") in str(raised.value)
    # n_jobs and progress do not change the bytes: a resume may use others.
    same = base_config(run={"part_size": 2, "n_jobs": 2, "progress": False})
    assert convert(write_json(tmp_path / "same.json", same)).resumed_parts == 2
    with pytest.raises(DatasetExistsError, match="is a complete dataset already"):
        convert(path)


def test_all_items_skipped_gives_an_empty_dataset_and_a_report(tmp_path: Path) -> None:
    """Bug: when no item can be read, the driver fails with an internal zip() error."""
    paths = save_npys(tmp_path / "data", 3)
    for path in paths:
        spoil(path)
    summary = convert(write_json(tmp_path / "c.json", base_config(run={"on_error": "skip"})))
    assert summary.samples == 0
    assert [entry["item"] for entry in summary.skipped] == [str(p) for p in paths]
    with acumen.open(tmp_path / "out") as ds:
        assert len(ds) == 0


def test_cli_glob_matching_nothing_is_reported_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Bug: a source with no items fails with ValueError('zip() argument 2 is shorter than
    argument 1'), which the CLI shows as a traceback, and leaves a claimed output folder."""
    path = write_json(tmp_path / "c.json", base_config(source={"glob": "nothing/*.npy"}))
    assert cli.main(["convert", str(path), "--no-progress"]) == 1
    _, err = capsys.readouterr()
    assert err.startswith("acumen: error: ") and "nothing/*.npy" in err


def test_output_folder_with_other_files_is_refused(tmp_path: Path) -> None:
    save_npys(tmp_path / "data", 2)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep me")
    with pytest.raises(DatasetExistsError, match="not a conversion to resume"):
        convert(write_json(tmp_path / "c.json", base_config()))
    assert os.listdir(tmp_path / "out") == ["mine.txt"]


# --- parallel -----------------------------------------------------------------------------
def test_one_and_two_jobs_write_identical_files(tmp_path: Path) -> None:
    save_npys(tmp_path / "data", 60, shape=(5,), seed=12)
    outputs = {}
    for n_jobs in (1, 2):
        config = base_config(
            tmp_path / f"out{n_jobs}",
            output={"codec": "zstd", "index_format": "parquet", "chunk_size": 120},
            run={"n_jobs": n_jobs, "part_size": 7},
        )
        config["source"]["glob"] = str(tmp_path / "data" / "*.npy")
        convert(config)
        outputs[n_jobs] = all_files(tmp_path / f"out{n_jobs}")
    assert len(outputs[1]) > 10
    assert outputs[1] == outputs[2]


def test_two_jobs_raise_names_the_item(tmp_path: Path) -> None:
    paths = save_npys(tmp_path / "data", 20, seed=13)
    spoil(paths[13])
    config = base_config(run={"n_jobs": 2, "part_size": 4})
    with pytest.raises(ConversionError, match=rf"item 13 \({paths[13]}\): ValueError"):
        convert(write_json(tmp_path / "c.json", config))


# --- resumption after a real kill ---------------------------------------------------------
KILL_CONFIG = """
[source]
glob = "in/**/*.npy"
[reader]
name = "npy"
[output]
path = "out"
codec = "lz4"
chunk_size = "2KB"
[run]
part_size = 40
"""


def run_cli(folder: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "acumen.cli", "convert", "cfg.toml", "--no-progress"],
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def done_parts(output: Path) -> int:
    return len(list(output.glob(".acumen-convert/parts/*/manifest.json")))


def kill_part_way(folder: Path, timeout: float = 60) -> bool:
    """Start the conversion, SIGKILL it once some parts are done; False if it finished first."""
    process = subprocess.Popen(
        [sys.executable, "-m", "acumen.cli", "convert", "cfg.toml", "--no-progress"],
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while done_parts(folder / "out") < 3:
            if process.poll() is not None:
                return False
            if time.monotonic() > deadline:
                pytest.fail(f"no part was done within {timeout} s")
            time.sleep(0.002)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    return process.returncode == -signal.SIGKILL and not (folder / "out" / "manifest.json").exists()


def test_resume_after_sigkill_is_byte_identical(tmp_path: Path) -> None:
    rng = np.random.default_rng(14)
    folder = tmp_path / "job"
    (folder / "in").mkdir(parents=True)
    (folder / "cfg.toml").write_text(KILL_CONFIG)
    written = 0
    for target in (3000, 12000):
        for i in range(written, target):
            sub = folder / "in" / f"d{i // 200:03d}"
            sub.mkdir(exist_ok=True)
            np.save(sub / f"f{i:05d}.npy", rng.normal(size=rng.integers(1, 9)).astype(np.float32))
        written = target
        clean = run_cli(folder)
        assert clean.returncode == 0, clean.stderr
        assert f"{target:,} samples" in clean.stdout
        shutil.rmtree(tmp_path / "clean", ignore_errors=True)
        (folder / "out").rename(tmp_path / "clean")
        if kill_part_way(folder):
            break
        shutil.rmtree(folder / "out")
    else:
        pytest.skip("the conversion of 12,000 files finished before it could be killed")

    assert done_parts(folder / "out") >= 3
    with pytest.raises(IncompleteDatasetError):
        acumen.open(folder / "out")
    resumed = run_cli(folder)
    assert resumed.returncode == 0, resumed.stderr
    assert "part(s) were done already" in resumed.stdout
    assert resumed.stderr == ""
    got, expected = all_files(folder / "out"), all_files(tmp_path / "clean")
    assert sorted(got) == sorted(expected)
    assert not any(name.startswith(".acumen-convert") for name in got)
    assert json.loads(got["convert-report.json"]) == {"skipped": [], "config": "cfg.toml"}
    different = [name for name in expected if got[name] != expected[name]]
    assert different == []
    with acumen.open(folder / "out") as ds:
        assert len(ds) == written


# --- the command line ---------------------------------------------------------------------
def test_cli_prints_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    save_npys(tmp_path / "data", 5)
    path = write_json(tmp_path / "c.json", base_config())
    assert cli.main(["convert", str(path), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{tmp_path / 'out'}: 5 samples, ") and out.count("\n") == 1
    assert " chunk files " in out and err == ""


def test_cli_bad_config_exits_1_without_traceback(tmp_path: Path) -> None:
    path = write_json(tmp_path / "c.json", base_config(run={"n_jobs": "two"}))
    result = subprocess.run(
        [sys.executable, "-m", "acumen.cli", "convert", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"acumen: error: {path}: key 'run.n_jobs': must be int")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_cli_conversion_error_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    paths = save_npys(tmp_path / "data", 3)
    spoil(paths[1])
    path = write_json(tmp_path / "c.json", base_config())
    assert cli.main(["convert", str(path), "--no-progress"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("acumen: error: item 1 (")


# --- progress -----------------------------------------------------------------------------
def test_progress_lines_are_plain_when_stderr_is_not_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    save_npys(tmp_path / "data", 20)
    convert(write_json(tmp_path / "c.json", base_config(run={"progress": True, "part_size": 5})))
    out, err = capsys.readouterr()
    assert out == ""
    assert "\r" not in err and "\x1b" not in err
    lines = err.splitlines()
    assert lines and all(line.startswith("convert out: ") for line in lines)
    assert lines[-1].startswith("convert out: 20 samples, ")
    assert err.endswith("\n")


def test_progress_off(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    save_npys(tmp_path / "data", 3)
    convert(write_json(tmp_path / "c.json", base_config(run={"progress": True})), progress=False)
    assert capsys.readouterr().err == ""
