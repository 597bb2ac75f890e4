"""``split_into_chunks``'s default dtype, float16 (the original's), never loses values silently.

Rounding to float16's precision is what the default means and stays accepted; a value the
cast destroys (out of range becomes inf, an imaginary part dropped, an integer that does
not come back) is a :class:`SampleError` naming the sample, unless the caller asks for the
cast: ``dtype=np.float16`` given explicitly, or ``safe_cast=False`` (the Writer's option).
"""

from __future__ import annotations

import numpy as np
import pytest

import acumen
import acumen.compat
from acumen.errors import SampleError
from acumen.write.split import split_into_chunks


def items(*arrays: np.ndarray) -> list[tuple[np.ndarray, dict]]:
    return [(array, {}) for array in arrays]


LOSSY = {
    "out of range becomes inf": (np.array([1.0, 1e5], np.float64), ["100000.0", "inf", "65504"]),
    "negative out of range": (np.array([[-7e4]], np.float32), ["-70000.0", "-inf"]),
    "integer that does not round-trip": (np.array([3, 2049], np.int64), ["2049", "2048"]),
    "integer out of range": (np.array([70000], np.uint32), ["70000", "inf"]),
    "imaginary part dropped": (np.array([1 + 2j]), ["imaginary"]),
}


@pytest.mark.parametrize("case", LOSSY, ids=list(LOSSY))
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_a_lossy_cast_to_the_default_dtype_names_the_sample(tmp_path, case, n_jobs):
    array, says = LOSSY[case]
    fine = np.zeros(3, array.dtype)
    with pytest.raises(SampleError) as caught:
        split_into_chunks(items(fine, fine, array, fine), tmp_path / "ds", n_jobs=n_jobs)
    message = str(caught.value)
    assert message.startswith("sample 2: "), message
    assert f"casting {array.dtype} to the dataset's dtype float16 loses values" in message
    assert "dtype=np.float16" in message and "safe_cast=False" in message
    for part in says:
        assert part in message, (part, message)
    assert not (tmp_path / "ds" / "manifest.json").exists()


def test_the_first_sample_is_checked_too_and_by_compat(tmp_path):
    with pytest.raises(SampleError, match=r"^sample 0: .*inf"):
        acumen.split_into_chunks(items(np.array([1e6])), tmp_path / "a")
    with pytest.raises(SampleError, match=r"^sample 0: .*inf"):
        acumen.compat.split_into_chunks(items(np.array([1e6])), str(tmp_path / "b"), n_jobs=1)


def test_rounding_to_float16_is_what_the_default_means(tmp_path):
    values = np.array([0.1, 1e-8, -65504.0, np.nan, np.inf, 2048], np.float64)
    labels = np.arange(-2048, 2049, dtype=np.int64)
    manifest = split_into_chunks(items(values, labels, np.array([True])), tmp_path / "ds")
    assert manifest.dtype == np.float16
    with acumen.open(tmp_path / "ds") as ds:
        assert ds.read(0).tobytes() == values.astype(np.float16).tobytes()
        assert np.array_equal(ds.read(1).astype(np.int64), labels)


def test_the_cast_happens_when_asked_for(tmp_path):
    big = np.array([1.0, 1e5])
    with pytest.warns(RuntimeWarning, match="overflow"):
        split_into_chunks(items(big), tmp_path / "explicit", dtype=np.float16)
    with pytest.warns(RuntimeWarning, match="overflow"):
        split_into_chunks(items(big), tmp_path / "unchecked", safe_cast=False)
    for name in ("explicit", "unchecked"):
        with acumen.open(tmp_path / name) as ds:
            assert ds.read(0).tolist() == [1.0, np.inf]


def test_an_explicit_dtype_may_ask_for_the_check(tmp_path):
    with pytest.raises(SampleError, match=r"^sample 0: .*300 .*uint8"):
        split_into_chunks(items(np.array([300])), tmp_path / "a", dtype="uint8", safe_cast="values")
    split_into_chunks(items(np.array([255])), tmp_path / "b", dtype="uint8", safe_cast="values")
    with acumen.open(tmp_path / "b") as ds:
        assert ds.read(0).tolist() == [255]


def test_the_writer_checks_values_the_same_way(tmp_path):
    with acumen.Writer(tmp_path / "ds", dtype="float16", safe_cast="values") as writer:
        writer.add(np.array([0.5, 2.0]))
        with pytest.raises(SampleError, match=r"^sample 1: .*1000000\.0 "):
            writer.add(np.array([1e6]))
        writer.add(np.array([3.0], np.float32))
    with acumen.open(tmp_path / "ds") as ds:
        assert len(ds) == 2
    with pytest.raises(ValueError, match="safe_cast"):
        acumen.Writer(tmp_path / "bad", dtype="float16", safe_cast="sometimes")
