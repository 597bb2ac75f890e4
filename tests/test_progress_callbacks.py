"""Progress as a callback: every long operation tells any :class:`acumen.progress.Callback`
its size and updates that add up to the work done, and closes it once, also when it fails;
acumen's own line stays the default; a tqdm bar through :class:`TqdmCallback`."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest

import acumen
from acumen.convert import ConversionError, convert
from acumen.errors import CorruptDatasetError, SampleError
from acumen.progress import Callback, Progress, TqdmCallback
from acumen.recode import recode
from acumen.verify import verify
from tests.test_convert import base_config, save_npys, spoil, write_json
from tests.test_verify import damage_sample

N = 120


class Recorder(Callback):
    """Keeps every call it gets (a real callback, as a user would write one)."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[tuple[int | None, str]] = []
        self.updates: list[tuple[int, int]] = []
        self.children: dict[str, Recorder] = {}
        self.closed = 0

    def set_size(self, size: int | None, unit: str = "samples") -> None:
        super().set_size(size, unit)
        self.sizes.append((size, unit))

    def update(self, n: int = 1, nbytes: int = 0) -> None:
        assert not self.closed, "told after its close"
        super().update(n, nbytes)
        self.updates.append((n, nbytes))

    def branch(self, name: str) -> Recorder:
        self.children[name] = child = Recorder()
        return child

    def close(self) -> None:
        self.closed += 1


def write(path: Path, n: int = N, **options: object) -> Path:
    with acumen.Writer(path, chunk_size_bytes=400, checksums="sample", **options) as writer:
        for i in range(n):
            writer.add(np.full(5, i, dtype=np.float32), label=i)
    return path


def chunk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in (path / "chunks").rglob("*") if p.is_file())


def test_writer_tells_samples_and_bytes_a_few_times(tmp_path: Path) -> None:
    told = Recorder()
    with acumen.Writer(tmp_path / "ds", progress=told) as writer:
        for i in range(20_000):
            writer.add(np.full(4, i, dtype=np.float32))
    assert told.sizes == [(None, "samples")] and told.closed == 1
    assert (told.value, told.nbytes) == (20_000, writer.bytes_written)
    assert len(told.updates) < 100  # at most every 0.1 s, not per sample


def test_writer_closes_its_callback_when_it_fails(tmp_path: Path) -> None:
    told = Recorder()
    with pytest.raises(SampleError), acumen.Writer(tmp_path / "ds", progress=told) as writer:
        writer.add(np.zeros(3, dtype=np.float32), label=1)
        writer.add(np.zeros(3, dtype=np.float32), label="not an int")
    assert told.closed == 1 and told.value == 1


def test_split_into_chunks_sized_by_the_list(tmp_path: Path) -> None:
    items = [(np.full(3, i, dtype=np.float32), {"i": i}) for i in range(50)]
    told = Recorder()
    acumen.split_into_chunks(items, tmp_path / "ds", dtype=None, progress=told)
    assert told.sizes == [(50, "samples")] and told.value == 50 and told.closed == 1
    assert told.nbytes == 50 * 12

    def broken(i: int) -> tuple[np.ndarray, dict]:
        if i == 30:
            raise ValueError("unreadable")
        return np.zeros(2), {}

    told = Recorder()
    with pytest.raises(SampleError, match="sample 30"):
        acumen.split_into_chunks(range(50), tmp_path / "bad", read_fn=broken, progress=told)
    assert told.closed == 1 and told.value <= 30


def test_convert_tells_every_sample_once(tmp_path: Path) -> None:
    save_npys(tmp_path / "data", 30)
    told = Recorder()
    summary = convert(
        write_json(tmp_path / "c.json", base_config(run={"part_size": 7})), progress=told
    )
    assert told.sizes == [(None, "samples")] and told.closed == 1
    assert (told.value, told.nbytes) == (30, summary.payload_bytes)


def test_convert_closes_its_callback_when_an_item_fails(tmp_path: Path) -> None:
    spoil(save_npys(tmp_path / "data", 20)[13])
    told = Recorder()
    with pytest.raises(ConversionError):
        convert(write_json(tmp_path / "c.json", base_config(run={"part_size": 5})), progress=told)
    assert told.closed == 1 and told.value < 20


def test_recode_tells_the_copy_and_its_check(tmp_path: Path) -> None:
    source = write(tmp_path / "src")
    told = Recorder()
    recode(source, tmp_path / "dst", codec="zstd", progress=told)
    assert told.sizes == [(N, "samples")] and told.value == N and told.closed == 1
    check = told.children["verify dst"]
    assert check.sizes == [(N, "samples")] and check.value == N and check.closed == 1
    assert check.nbytes == N * 20


def test_recode_closes_its_callbacks_when_the_source_is_damaged(tmp_path: Path) -> None:
    source = write(tmp_path / "src")
    damage_sample(source, 70)
    told = Recorder()
    with pytest.raises(CorruptDatasetError):
        recode(source, tmp_path / "dst", progress=told)
    assert told.closed == 1 and told.value < N
    assert [c.closed for c in told.children.values()] == [1]


def test_verify_tells_chunk_files_then_samples(tmp_path: Path) -> None:
    path = write(tmp_path / "ds", codec="zstd")
    told = Recorder()
    report = verify(path, progress=told)
    assert report.ok and told.closed == 1
    assert told.sizes[-1] == (report.chunks_checked, "chunk files")
    assert told.value == report.chunks_checked > 1
    assert {name: (c.value, c.closed) for name, c in told.children.items()} == {
        "verify sample checksums": (N, 1),
        "verify samples": (N, 1),
    }
    told = Recorder()
    assert not verify(tmp_path / "nothing", progress=told).ok and told.closed == 1


def test_verify_of_a_url_tells_the_bytes_downloaded(tmp_path: Path, http_server) -> None:
    path = write(tmp_path / "ds")
    shutil.copytree(path, http_server.root / "ds")
    told = Recorder()
    report = verify(http_server.url("ds"), progress=told, cache=tmp_path / "cache")
    assert report.ok and told.closed == 1
    assert told.sizes[-1] == (chunk_bytes(path), "bytes") and told.value == chunk_bytes(path)


def test_an_upload_is_a_branch_in_bytes(tmp_path: Path, s3_server, s3_bucket: str) -> None:
    url = f"s3://{s3_bucket}/ds"
    told = Recorder()
    options = {"storage_options": s3_server.storage_options, "cache": tmp_path / "cache"}
    with acumen.Writer(url, chunk_size_bytes=400, progress=told, **options) as writer:
        for i in range(N):
            writer.add(np.full(5, i, dtype=np.float32))
    upload = told.children[f"upload {url}"]
    assert told.value == N and told.closed == 1 and upload.closed == 1
    size = upload.sizes[0][0]
    assert upload.sizes == [(size, "bytes")] and upload.value == size > N * 20  # + the index


def test_compact_tells_the_bytes_it_copies(tmp_path: Path) -> None:
    path = write(tmp_path / "ds")
    acumen.delete(path, where="label % 4 != 0")
    told = Recorder()
    acumen.compact(path, progress=told)
    assert told.closed == 1 and told.sizes[-1] == (N // 4 * 20, "bytes")
    assert told.value == N // 4 * 20
    assert verify(path, progress=False).ok


def test_acumen_lines_stay_the_default(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    source = write(tmp_path / "src")
    capsys.readouterr()
    recode(source, tmp_path / "dst")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("recode dst: ") and lines[-1].startswith("verify dst: ")
    assert f"{N}/{N} samples" in lines[-1] and lines[-1].rsplit(" in ", 1)[1].count(":") == 1
    assert verify(source).ok
    labels = [line.split(":")[0] for line in capsys.readouterr().err.splitlines()]
    assert list(dict.fromkeys(labels)) == ["verify src", "verify sample checksums"]
    with acumen.Writer(tmp_path / "w", progress=True) as writer:
        for _ in range(5):
            writer.add(np.zeros(2))
    assert capsys.readouterr().err.splitlines()[-1].startswith("write w: 5 samples, ")
    with pytest.raises(TypeError, match="TqdmCallback"):
        verify(source, progress="yes")  # type: ignore[arg-type]


def test_acumen_line_of_bytes(tmp_path: Path) -> None:
    log = io.StringIO()
    with Progress(None, "upload", stream=log) as bar:
        bar.set_size(3000, "bytes")
        bar.update(1500)
    assert log.getvalue().splitlines()[-1].startswith("upload: 1.5 KB/3.0 KB, ")


class Plain:
    """Not tqdm: any bar with tqdm's ``total``, ``update(n)`` and ``close()`` will do."""

    def __init__(self, total: int | None = None, **options: object) -> None:
        self.total, self.options, self.n, self.closed = total, options, 0, False

    def update(self, n: int) -> None:
        self.n += n

    def close(self) -> None:
        self.closed = True


def test_tqdm_callback_takes_any_bar_of_its_interface(tmp_path: Path) -> None:
    bars: list[Plain] = []

    def make(**options: object) -> Plain:
        bars.append(Plain(**options))
        return bars[-1]

    recode(write(tmp_path / "src"), tmp_path / "dst", progress=TqdmCallback(tqdm_cls=make))
    copy, check = bars
    assert (copy.total, copy.n, copy.closed) == (N, N, True)
    assert (check.total, check.n, check.closed, check.options["desc"]) == (N, N, True, "verify dst")


def test_tqdm_callback_with_tqdm(tmp_path: Path) -> None:
    tqdm = pytest.importorskip("tqdm")
    out = io.StringIO()
    told = TqdmCallback({"file": out, "mininterval": 0})
    verify(write(tmp_path / "ds"), progress=told)
    assert isinstance(told.bar, tqdm.tqdm) and told.bar.n == told.bar.total == told.value
    assert "chunk files" in out.getvalue()
