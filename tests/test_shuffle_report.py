"""acumen.shuffle_report and ``acumen shuffle-report``: the chunk-window order and its measures.

Exact values on tiny datasets whose batches are whole chunks, the full-shuffle references
against their closed forms on a dataset stored in class order, the order function against
its specification (and against the sampler that reads in it), the JSON and the command.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import acumen
from acumen.cli import main
from acumen.read.order import chunk_window_order


def write(path: Path, n: int, per_chunk: int, itemsize: int, label: object) -> Path:
    """``n`` samples of ``itemsize`` bytes, ``per_chunk`` to a chunk file, in storage order;
    sample i has ``label(i)``."""
    with acumen.Writer(
        path, chunk_size_bytes=per_chunk * itemsize, index_format="arrow", durable=False
    ) as writer:
        for i in range(n):
            writer.add(np.full(itemsize, i % 251, np.uint8), label=label(i))
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 chunks of 4 samples of 16 bytes; labels 0-3 in storage order, 2 chunks each."""
    return write(tmp_path_factory.mktemp("tiny") / "ds", 32, 4, 16, lambda i: i // 8)


@pytest.fixture(scope="module")
def classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20,000 samples in 200 chunks of 100, 10 classes stored one after the other (as an
    image folder is), so a window of few chunks holds few classes."""
    return write(tmp_path_factory.mktemp("classes") / "ds", 20_000, 100, 8, lambda i: i // 2000)


def specified_order(chunk_ids: np.ndarray, window: int, seed: int, epoch: int) -> list[int]:
    """The chunk-window shuffle as specified, one chunk and one window at a time."""
    rng = np.random.default_rng([seed, epoch])
    chunks = sorted(set(chunk_ids.tolist()))
    members = {c: [i for i, k in enumerate(chunk_ids.tolist()) if k == c] for c in chunks}
    chosen = [chunks[i] for i in rng.permutation(len(chunks))]
    order: list[int] = []
    for start in range(0, len(chosen), window):
        samples = np.array([i for c in chosen[start : start + window] for i in members[c]])
        order += samples[rng.permutation(len(samples))].tolist()
    return order


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 12), max_size=80),
    st.booleans(),
    st.integers(1, 6),
    st.integers(0, 2**32 - 1),
    st.integers(0, 3),
)
def test_the_order_is_the_specified_shuffle(
    ids: list[int], stored: bool, window: int, seed: int, epoch: int
) -> None:
    chunk_ids = np.array(sorted(ids) if stored else ids, dtype=np.int32)
    order, cuts = chunk_window_order(chunk_ids, window, seed, epoch)
    assert order.tolist() == specified_order(chunk_ids, window, seed, epoch)
    assert sorted(order.tolist()) == list(range(len(ids)))
    # Each window is whole chunks, at most ``window`` of them, and ends at a cut.
    begin = 0
    for end in cuts:
        inside = set(chunk_ids[order[begin:end]].tolist())
        assert 1 <= len(inside) <= window
        assert not inside & set(chunk_ids[order[end:]].tolist())
        begin = end
    assert begin == len(ids)


def test_the_sampler_reads_in_the_measured_order(tiny: Path) -> None:
    torch_part = pytest.importorskip("acumen.torch")
    ds = acumen.open(tiny).select(np.random.default_rng(1).permutation(32))  # chunks mixed
    for window, seed, epoch in itertools.product((1, 3, 8), (0, 7), (0, 2)):
        sampler = torch_part.ChunkShuffleSampler(ds, window=window, seed=seed)
        sampler.set_epoch(epoch)
        expected, _ = chunk_window_order(ds.table.chunk_ids, window, seed, epoch)
        assert np.array_equal(sampler.epoch_order(), expected)


def test_batches_of_whole_chunks_have_exact_figures(tiny: Path) -> None:
    report = acumen.shuffle_report(tiny, window=1, batch_size=4, by="label", seed=3)
    assert (report.samples, report.chunks, report.batches) == (32, 8, 8)
    one = report.chunks_per_batch
    assert (one.mean, one.p50, one.p95, one.max) == (1, 1, 1, 1)
    ahead = report.bytes_read_ahead
    assert (ahead.mean, ahead.max) == (64, 64) and ahead.full_shuffle.mean == 32 * 16
    # Each batch holds one label of 4 equally common: TV = (3/4 + 3 * 1/4) / 2.
    assert report.label_tv_distance.mean == pytest.approx(0.75)
    assert report.label_tv_distance.max == pytest.approx(0.75)
    # Every batch is one chunk's positions 4c..4c+3: the mean over pairs i != j of the
    # product of their distances to the mean position, over the positions' variance.
    n, centre, variance = 32, 15.5, (32**2 - 1) / 12
    pairs = [
        (a - centre) * (b - centre) / variance
        for c in range(8)
        for a, b in itertools.permutations(range(4 * c, 4 * c + 4), 2)
    ]
    assert report.position_correlation.mean == pytest.approx(np.mean(pairs))
    assert math.isnan(report.position_correlation.p95)
    order, _ = chunk_window_order(acumen.open(tiny).table.chunk_ids, 1, 3, 0)
    moved = [abs(t - int(order[t])) / n for t in range(n)]
    assert report.displacement.mean == pytest.approx(np.mean(moved))
    assert report.displacement.max == pytest.approx(max(moved))


@pytest.mark.parametrize("window", [8, 9, 100])
def test_a_window_of_every_chunk_is_the_full_shuffle(tiny: Path, window: int) -> None:
    report = acumen.shuffle_report(tiny, window=window, batch_size=5, by="label", epochs=2)
    for name, measure in report.measures():
        shown = measure.to_json()
        assert shown.pop("full_shuffle") == shown, name


def test_full_shuffle_references_meet_their_closed_forms(classes: Path) -> None:
    n, size = 20_000, 256
    near = acumen.shuffle_report(classes, window=1, batch_size=size, by="label", epochs=2)
    full = near.displacement.full_shuffle
    assert full.mean == pytest.approx((n * n - 1) / (3 * n * n), abs=0.005)
    # Distinct chunks in a uniform batch: the sum over chunks of 1 - C(n - 100, b) / C(n, b).
    untouched = math.exp(
        math.lgamma(n - 100 + 1) - math.lgamma(n - 100 - size + 1)
        + math.lgamma(n - size + 1) - math.lgamma(n + 1)
    )  # fmt: skip
    expected = 200 * (1 - untouched)
    assert near.chunks_per_batch.full_shuffle.mean == pytest.approx(expected, rel=0.01)
    # A uniform batch of 256 from 10 equal classes is mixed to a TV distance of ~0.075; a
    # batch of window 1 is 3 or 4 random chunks of 100, so 3 or 4 classes at most: ~0.7.
    assert near.label_tv_distance.full_shuffle.mean < 0.1
    assert near.label_tv_distance.mean > 0.6
    assert abs(near.position_correlation.full_shuffle.mean) < 0.01
    assert near.position_correlation.mean > 0.2  # about 1 / (3 or 4 chunks a batch)
    # A window of chunks moves samples as far as a full shuffle does (chunks go anywhere).
    assert near.displacement.mean == pytest.approx(1 / 3, abs=0.05)
    wide = acumen.shuffle_report(classes, window=50, batch_size=size, by="label")
    ideal = near.label_tv_distance.full_shuffle.mean
    assert near.label_tv_distance.mean > wide.label_tv_distance.mean > ideal
    assert wide.position_correlation.mean == pytest.approx(1 / 50, abs=0.015)
    assert wide.chunks_per_batch.max <= 100  # a batch spans at most two windows


def test_the_report_is_deterministic_for_a_seed(classes: Path) -> None:
    ds = acumen.open(classes)
    first = acumen.shuffle_report(ds, window=4, batch_size=64, by="label", seed=5).to_json()
    again = acumen.shuffle_report(classes, window=4, batch_size=64, by="label", seed=5)
    other = acumen.shuffle_report(ds, window=4, batch_size=64, by="label", seed=6)
    assert again.to_json() == first
    assert other.to_json() != first


def test_the_json_has_every_field(tiny: Path) -> None:
    shown = acumen.shuffle_report(tiny, batch_size=8, by="label").to_json()
    text = json.dumps(shown, allow_nan=False)  # an undefined figure is null, never NaN
    assert json.loads(text) == shown
    assert {"dataset", "samples", "chunks", "window", "batch_size", "seed", "epochs"} <= set(shown)
    for name in (
        "chunks_per_batch",
        "bytes_read_ahead",
        "label_tv_distance",
        "position_correlation",
        "displacement",
    ):
        assert {"mean", "p50", "p95", "max", "full_shuffle"} <= set(shown[name]), name
    assert shown["position_correlation"]["p50"] is None
    assert "full shuffle" in shown["reference"]
    plain = acumen.shuffle_report(tiny, batch_size=1).to_json()
    assert "label_tv_distance" not in plain and "position_correlation" not in plain


def test_a_dataset_smaller_than_a_batch_is_one_batch(tiny: Path) -> None:
    report = acumen.shuffle_report(tiny, window=2, batch_size=1000)
    assert (report.batch_size, report.batches) == (32, 1)
    assert report.chunks_per_batch.mean == 8


def test_mistakes_are_named(tiny: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no metadata column 'labl'; its columns: label"):
        acumen.shuffle_report(tiny, by="labl")
    for option in ("window", "batch_size", "epochs"):
        with pytest.raises(ValueError, match=f"{option} must be at least 1"):
            acumen.shuffle_report(tiny, **{option: 0})
    with pytest.raises(ValueError, match="window must be at least 1 chunk, got True"):
        acumen.shuffle_report(tiny, window=True)
    with acumen.Writer(tmp_path / "empty"):
        pass
    with pytest.raises(ValueError, match="has no samples"):
        acumen.shuffle_report(tmp_path / "empty")
    with pytest.raises(TypeError, match=r"takes a path, a URL or an acumen\.Dataset, got list"):
        acumen.shuffle_report([1, 2])


def test_the_command_prints_a_table_or_json(tiny: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["shuffle-report", str(tiny), "--window", "2", "--by", "label"]) == 0
    table = capsys.readouterr().out
    assert "window 2 chunks, batches of 32" in table
    assert "label TV distance per batch (label)" in table and "full shuffle" in table
    argv = ["shuffle-report", str(tiny), "--batch-size", "4", "--seed", "3", "--json"]
    assert main([*argv, "--window", "1", "--epochs", "2"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["chunks_per_batch"]["max"] == 1 and shown["batches"] == 16


@pytest.mark.parametrize(
    ("arguments", "status", "message"),
    [
        (["--by", "labl"], 1, "has no metadata column 'labl'; its columns: label"),
        (["--window", "0"], 2, "argument --window: not a positive whole number: '0'"),
        (["--batch-size", "-3"], 2, "argument --batch-size: not a positive whole number"),
        (["--storage-option", "anon=true"], 1, "--storage-option is for URLs"),
    ],
)
def test_the_command_reports_mistakes_in_one_line(
    tiny: Path, capsys: pytest.CaptureFixture, arguments: list[str], status: int, message: str
) -> None:
    try:
        code = main(["shuffle-report", str(tiny), *arguments])
    except SystemExit as stop:  # a usage mistake: argparse exits
        code = stop.code
    assert code == status
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("acumen: error: ") and message in error


def test_the_command_names_an_empty_or_missing_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    with acumen.Writer(tmp_path / "empty"):
        pass
    assert main(["shuffle-report", str(tmp_path / "empty")]) == 1
    assert "empty has no samples: there is no order to measure" in capsys.readouterr().err
    assert main(["shuffle-report", str(tmp_path / "nowhere")]) == 1
    assert "nowhere" in capsys.readouterr().err
