"""The command line on datasets in object storage (moto's S3 on 127.0.0.1): storage options
from flags and the environment (never printed), ``acumen verify URL`` streaming the chunk
objects, ``acumen clean`` for an interrupted upload, ``recode --skip-damaged`` to a URL.
"""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import s3fs

import acumen
from acumen.cli import main
from acumen.verify_remote import blocks
from tests.test_recode_damage import ARRAYS, DAMAGED, damage, write

SECRET = "Sekrit-Value-42"  # moto takes any secret: it must never be printed


def flags(options: dict) -> list[str]:
    out = []
    for key, value in options.items():
        out += [
            "--storage-option",
            f"{key}={value if isinstance(value, str) else json.dumps(value)}",
        ]
    return out


@pytest.fixture
def s3(s3_server, s3_bucket, monkeypatch):
    """(bucket, the server's storage options with a secret of ours, an s3fs on it)."""
    options = {**s3_server.storage_options, "secret": SECRET}
    monkeypatch.delenv("ACUMEN_STORAGE_OPTIONS", raising=False)
    return s3_bucket, options, s3fs.S3FileSystem(**s3_server.storage_options)


def upload(tmp_path: Path, fs, bucket: str, name: str, **options) -> str:
    write(tmp_path / name, codec="zstd", **options)
    fs.put(str(tmp_path / name), f"{bucket}/{name}", recursive=True)
    return f"s3://{bucket}/{name}"


def test_verify_a_url_streams_each_chunk_in_one_get(tmp_path, s3_fault_proxy, s3, capsys):
    bucket, _, fs = s3
    url = upload(tmp_path, fs, bucket, "ds", checksums="sample")
    options = {**s3_fault_proxy.storage_options, "secret": SECRET}
    cache = tmp_path / "cache"
    s3_fault_proxy.log.reset()
    assert main(["verify", url, "--cache", str(cache), *flags(options)]) == 0
    out = capsys.readouterr()
    with acumen.open(tmp_path / "ds") as ds:
        n_chunks = len(ds.storage.paths)
    assert f"{url}: {n_chunks} chunk files and {len(ARRAYS)} samples checked: all well" in out.out
    chunk_gets = [r for r in s3_fault_proxy.log.records if "/chunks/" in r.path]
    assert len(chunk_gets) == n_chunks and all(r.method == "GET" for r in chunk_gets)
    assert not (cache / "chunks").exists() or not any((cache / "chunks").rglob("*.bin"))
    assert SECRET not in out.out + out.err
    # One byte flipped in the store: the report names the chunk's URL and the sample.
    file, _ = damage(tmp_path / "ds", DAMAGED)
    name = file.relative_to(tmp_path / "ds").as_posix()
    fs.put_file(str(file), f"{bucket}/ds/{name}")
    assert main(["verify", url, "--cache", str(cache), *flags(options)]) == 1
    out = capsys.readouterr().out
    assert f"{url}/{name}: checksum" in out and "differs from the manifest's" in out
    assert f"sample {DAMAGED}" in out and f"{url}/{name}, bytes" in out


def test_blocks_cover_each_chunk_and_hold_samples_whole(tmp_path):
    write(tmp_path / "ds")
    with acumen.open(tmp_path / "ds") as ds:
        planned = blocks(ds, block=150)
        sizes, table = ds.chunk_files.sizes.tolist(), ds.table
        for chunk, size in enumerate(sizes):
            mine = [(start, n) for c, start, n, _ in planned if c == chunk]
            assert mine[0][0] == 0 and sum(n for _, n in mine) == size
            assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(mine))
        assert len(planned) > len(sizes)  # chunks of 400 bytes in blocks of ~150
        seen = np.concatenate([rows for *_, rows in planned])
        assert sorted(seen.tolist()) == list(range(len(ds)))
        for chunk, start, n, rows in planned:
            assert (table.chunk_ids[rows] == chunk).all()
            assert (table.offsets[rows] >= start).all()
            assert (table.offsets[rows] + table.sizes[rows] <= start + n).all()


def test_info_takes_options_from_the_environment_and_never_prints_them(
    tmp_path, s3, monkeypatch, capsys
):
    bucket, options, fs = s3
    url = upload(tmp_path, fs, bucket, "ds")
    monkeypatch.setenv("ACUMEN_STORAGE_OPTIONS", json.dumps(options))
    assert main(["info", url, "--cache", str(tmp_path / "c")]) == 0
    out = capsys.readouterr()
    assert f"{len(ARRAYS)}" in out.out and SECRET not in out.out + out.err
    assert "of chunk files (as the manifest lists them)" in out.out  # no listing of the store
    # A flag wins over the environment, key by key: a wrong endpoint fails, naming the URL.
    monkeypatch.setenv("ACUMEN_REMOTE_BACKOFF", "0.001")
    assert main(["info", url, "--storage-option", "endpoint_url=http://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert url in err and SECRET not in err and err.count("\n") == 1


def test_option_mistakes_are_one_line_and_show_no_value(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ACUMEN_STORAGE_OPTIONS", f'{{"secret": "{SECRET}"')  # not JSON
    assert main(["info", "s3://bucket/ds"]) == 1
    err = capsys.readouterr().err
    assert "ACUMEN_STORAGE_OPTIONS is not a JSON object" in err and SECRET not in err
    monkeypatch.delenv("ACUMEN_STORAGE_OPTIONS")
    with pytest.raises(SystemExit) as exit_:
        main(["info", "s3://bucket/ds", "--storage-option", SECRET])
    assert exit_.value.code == 2 and SECRET not in capsys.readouterr().err
    write(tmp_path / "local")
    assert main(["verify", str(tmp_path / "local"), "--storage-option", "anon=true"]) == 1
    assert "--storage-option is for URLs" in capsys.readouterr().err


def test_recode_skip_damaged_to_a_url(tmp_path, s3, capsys):
    bucket, options, _ = s3
    write(tmp_path / "src", checksums="sample")
    damage(tmp_path / "src", DAMAGED)
    url = f"s3://{bucket}/copy"
    cache = ["--cache", str(tmp_path / "c")]
    args = ["recode", str(tmp_path / "src"), url, "--skip-damaged", *cache, *flags(options)]
    with pytest.warns(acumen.recode.DamagedSamplesWarning):
        assert main(args) == 0
    out = capsys.readouterr().out
    assert f"1 damaged sample(s) left out, listed in {url}/recode-skipped.json" in out
    with acumen.open(url, storage_options=options, cache=tmp_path / "c") as ds:
        assert len(ds) == len(ARRAYS) - 1
    fs = s3fs.S3FileSystem(**options)
    report = json.loads(fs.cat_file(f"{bucket}/copy/recode-skipped.json"))
    assert [s["sample"] for s in report["skipped"]] == [DAMAGED]


def test_clean_removes_an_interrupted_upload_only(tmp_path, s3, capsys):
    bucket, options, fs = s3
    url = upload(tmp_path, fs, bucket, "ds")
    left = f"{bucket}/ds"
    fs.rm(f"{left}/manifest.json")
    fs.pipe(f"{left}/.acumen-writing", json.dumps({"pid": 1, "host": "elsewhere"}).encode())
    before = sorted(fs.find(left))
    assert main(["clean", url, "--dry-run", *flags(options)]) == 0
    out = capsys.readouterr().out
    assert f"would remove {len(before)} object(s)" in out and f"{url}/.acumen-writing" in out
    assert sorted(fs.find(left)) == before
    assert main(["clean", url, *flags(options)]) == 0
    assert f"removed {len(before)} object(s)" in capsys.readouterr().out
    assert fs.find(left) == []
    # A committed dataset is never removed; a stale marker next to it is, alone.
    url = upload(tmp_path, fs, bucket, "kept")
    assert main(["clean", url, *flags(options)]) == 1
    assert "holds a committed dataset" in capsys.readouterr().err
    fs.pipe(f"{bucket}/kept/.acumen-writing", b"{}")
    assert main(["clean", url, *flags(options)]) == 0
    assert not fs.exists(f"{bucket}/kept/.acumen-writing")
    with acumen.open(url, storage_options=options, cache=tmp_path / "c") as ds:
        assert len(ds) == len(ARRAYS)
    # Objects with no marker are no upload of acumen's.
    fs.pipe(f"{bucket}/other/file.txt", b"x")
    assert main(["clean", f"s3://{bucket}/other", *flags(options)]) == 1
    assert "not an upload acumen left" in capsys.readouterr().err
    assert fs.exists(f"{bucket}/other/file.txt")
    shutil.rmtree(tmp_path / "kept")


def test_convert_to_a_url_with_options_from_the_command_line(tmp_path, s3, capsys):
    from tests.test_convert import base_config, save_npys, write_json

    bucket, options, _ = s3
    save_npys(tmp_path / "data", 12)
    url = f"s3://{bucket}/converted"
    config = base_config(url, output={"codec": "lz4"}, run={"progress": False})
    path = write_json(tmp_path / "cfg.json", config)
    cache = ["--cache", str(tmp_path / "c")]
    assert main(["convert", str(path), "--no-progress", *cache, *flags(options)]) == 0
    assert SECRET not in capsys.readouterr().out
    with acumen.open(url, storage_options=options, cache=tmp_path / "c") as ds:
        assert len(ds) == 12
    assert (tmp_path / "c" / "remote").is_dir()  # --cache was used
