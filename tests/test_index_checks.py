"""Index rows are checked block by block: the first block when the dataset opens, the others
when one of their samples is first read. A damaged row past the first block is an error on
every path that reads it (``read``, ``ds[i]``, batches, iteration, views, pickled copies,
``check_index``, ``acumen verify``), and only that sample is: its neighbours read."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

import acumen
from acumen.errors import CorruptDatasetError
from acumen.read.index_checks import BLOCK
from acumen.verify import verify
from tests.dataset_edits import edit_index

N = BLOCK + 40
BAD = BLOCK + 10  # in the second block


def sample(i: int, fixed: bool = False) -> np.ndarray:
    return np.full((2 if fixed else 1 + i % 3, 2), i % 251, dtype=np.uint8)


KINDS = ["raw", "zstd", "raw fixed", "zstd fixed"]  # fixed: batches are one array


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, Path]:
    roots = {}
    for kind in KINDS:
        codec, fixed = kind.split()[0], "fixed" in kind
        root = roots[kind] = tmp_path_factory.mktemp("checks") / kind.replace(" ", "-")
        with acumen.Writer(root, codec=codec, chunk_size_bytes=20_000) as writer:
            for i in range(N):
                writer.add(sample(i, fixed), label=i)
    return roots


DAMAGE = {
    "size disagreeing with the shape": ("ai:size_bytes", "3", "has 3 bytes, but shape ("),
    "range past the file end": ("ai:offset_bytes", "10000000", "but the file has"),
    "impossible shape": ("ai:shape", "(4294967296, 4294967296)", "too many elements"),
}
# A compressed payload's size is the codec's to check (it reports a wrong one when it
# decodes); a shape other than the manifest's is refused at open.
CASES = [
    (kind, damage)
    for kind in KINDS
    for damage in DAMAGE
    if not (damage.startswith("size") and kind.startswith("zstd"))
    and not (damage == "impossible shape" and kind.endswith("fixed"))
]


def copy_tree(source: Path, target: Path) -> Path:
    for path in sorted(source.rglob("*")):
        destination = target / path.relative_to(source)
        if path.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(path.read_bytes())
    return target


@pytest.fixture(params=CASES, ids=[f"{kind}-{damage}" for kind, damage in CASES])
def damaged(request, written, tmp_path) -> tuple[Path, str, bool]:
    kind, damage = request.param
    root = copy_tree(written[kind], tmp_path / "ds")
    column, value, message = DAMAGE[damage]
    edit_index(root, BAD, column, value)
    return root, message, kind.endswith("fixed")


@pytest.mark.parametrize("storage", ["mmap", "seek", "memory"])
def test_a_damaged_row_past_the_first_block_fails_alone(damaged, storage):
    root, message, fixed = damaged
    with acumen.open(root, storage) as ds:  # the first block is sound: it opens
        for i in (0, BAD - 1, BAD + 1, N - 1):
            np.testing.assert_array_equal(ds.read(i), sample(i, fixed))
        for read in (ds.read, ds.__getitem__, lambda i: ds.read(i, copy=True)):
            with pytest.raises(CorruptDatasetError) as caught:
                read(BAD)
            assert message in str(caught.value)
            assert f"sample {BAD}" in str(caught.value)
        assert ds.metadata(BAD) == {"label": BAD}  # metadata is not payload: it reads
        with pytest.raises(CorruptDatasetError, match=f"sample {BAD}"):
            ds.read_batch([BAD - 1, BAD])
        batch = ds.read_batch([N - 1, 0, BAD + 1])
        for array, i in zip(batch, [N - 1, 0, BAD + 1], strict=True):
            np.testing.assert_array_equal(array, sample(i, fixed))
        problems = ds.check_index()
        assert len(problems) == 1 and message in problems[0]
        view = ds.select([BAD + 1, BAD])
        np.testing.assert_array_equal(view.read(0), sample(BAD + 1, fixed))
        with pytest.raises(CorruptDatasetError):
            view.read(1)
        again = pickle.loads(pickle.dumps(ds))
        with pytest.raises(CorruptDatasetError, match=f"sample {BAD}"):
            again.read(BAD)


def test_iteration_stops_at_the_damaged_sample(damaged):
    root, message, fixed = damaged
    seen = 0
    with acumen.open(root) as ds, pytest.raises(CorruptDatasetError) as caught:
        for i, (array, meta) in enumerate(ds):
            assert meta == {"label": i}
            np.testing.assert_array_equal(array, sample(i, fixed))
            seen += 1
    assert seen == BAD and message in str(caught.value)


def test_verify_reports_damaged_rows(damaged):
    root, message, _ = damaged
    report = verify(root, progress=False)
    assert not report.ok
    assert any(message in problem and f"sample {BAD}" in problem for problem in report.problems)


def test_a_damaged_first_block_is_refused_at_open(written, tmp_path):
    root = copy_tree(written["raw"], tmp_path / "ds")
    edit_index(root, 5, "ai:offset_bytes", "10000000")
    with pytest.raises(CorruptDatasetError, match="sample 5 needs bytes 10000000"):
        acumen.open(root)


@pytest.mark.parametrize("kind", KINDS)
def test_a_sound_index_is_checked_once_per_block(written, kind):
    with acumen.open(written[kind]) as ds:
        assert ds.check_index() == []
        assert not any(ds._checks.pending)  # every block checked: reads test one byte
