"""Batches as a training loop takes them: one tensor per array, targets as columns.

A batch of samples of one shape is one tensor ``(batch, *shape)``; samples of varying
shapes are :class:`Padded` (one zero-padded tensor and each sample's shape); fields are a
dict of such batches (bytes fields a list of bytes). Targets are metadata columns sliced in
numpy: numbers one tensor (int64, float64 or bool, as torch's ``default_collate`` makes of
the per-sample values), text a list of str. :func:`collate` builds the same from per-sample
items, and returns a batch the dataset already built as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import default_collate

from acumen.format.metadata import MetadataTable


class Padded(NamedTuple):
    """Samples of varying shapes in one batch.

    ``values``: ``(batch, *largest)``, each sample at the start of its row along every
    dimension, zeros after it; ``shapes``: ``(batch, ndim)`` int64, each sample's own shape
    (for sequences of shape ``(L, ...)``, ``shapes[:, 0]`` are the lengths). A sample is
    ``values[i][tuple(slice(0, s) for s in shapes[i])]``; a nested tensor is
    ``torch.nested.nested_tensor(padded.unpad())``.
    """

    values: torch.Tensor
    shapes: torch.Tensor

    def unpad(self) -> list[torch.Tensor]:
        """Each sample in its own shape (views on ``values``)."""
        return [
            row[tuple(slice(0, s) for s in shape)]
            for row, shape in zip(self.values.unbind(0), self.shapes.tolist(), strict=True)
        ]


class Samples(list):
    """A batch's items, one per sample, as a DataLoader collates them; ``batch`` holds the
    batch itself, which :func:`collate` returns without collating the items again."""

    batch: Any = None


def collate(items: Sequence[Any]) -> Any:
    """A ``collate_fn`` for ``DataLoader(TorchDataset(...), batch_size=..., collate_fn=collate)``.

    The batch :class:`~acumen.torch.TorchDataset` already read comes back as it is (no
    stacking of per-sample tensors); other items are collated as ``default_collate`` does,
    except that tensors and arrays of varying shapes become :class:`Padded`.
    """
    batch = getattr(items, "batch", None)
    if batch is not None:
        return batch
    return _collate(list(items))


def _collate(items: list[Any]) -> Any:
    first = items[0]
    if isinstance(first, (torch.Tensor, np.ndarray)):
        return stack(items)
    if isinstance(first, dict):
        return {key: _collate([item[key] for item in items]) for key in first}
    if type(first) is tuple:
        return tuple(_collate(list(column)) for column in zip(*items, strict=True))
    return default_collate(items)


def stack(samples: Sequence[Any]) -> Any:
    """Arrays or tensors as one tensor when their shapes agree, else :class:`Padded`."""
    if isinstance(samples[0], torch.Tensor):
        shapes = {tuple(t.shape) for t in samples}
        if len(shapes) == 1:
            return torch.stack(list(samples))
        return _pad([t.numpy(force=True) for t in samples])
    shapes = {a.shape for a in samples}
    if len(shapes) == 1:
        return torch.from_numpy(np.stack(samples))
    return _pad(samples)


def _pad(arrays: Sequence[np.ndarray]) -> Padded:
    shapes = np.array([a.shape for a in arrays], dtype=np.int64)
    if shapes.ndim != 2:
        raise ValueError(f"cannot pad samples of different ranks: shapes {sorted(set(shapes))}")
    values = np.zeros((len(arrays), *shapes.max(axis=0).tolist()), dtype=arrays[0].dtype)
    for row, array in zip(values, arrays, strict=True):
        row[tuple(slice(0, s) for s in array.shape)] = array
    return Padded(torch.from_numpy(values), torch.from_numpy(shapes))


def samples_batch(read: Any) -> Any:
    """What ``read_batch`` returned, as one batch: a new array as a tensor over it, a list
    of arrays stacked or padded, a list of field dicts as a dict of such batches."""
    if isinstance(read, np.ndarray):
        return torch.from_numpy(read if read.flags.writeable else read.copy())
    first = read[0]
    if isinstance(first, dict):
        return {name: _field(name, [sample[name] for sample in read]) for name in first}
    return stack(read)


def _field(name: str, values: list[Any]) -> Any:
    if isinstance(values[0], bytes):
        return values
    return stack(values)


#: The dtype torch's default_collate gives a column of Python ints, floats and bools.
_COLUMN_DTYPES = {"i": np.int64, "u": np.int64, "f": np.float64, "b": np.bool_}


def column_batch(metadata: MetadataTable, name: str, positions: np.ndarray) -> Any:
    """A metadata column's values at ``positions``: one tensor of numbers, a list of str."""
    values = np.asarray(metadata.raw_column(name)[positions])
    dtype = _COLUMN_DTYPES.get(values.dtype.kind)
    if dtype is None:
        return values.tolist()
    return torch.from_numpy(np.ascontiguousarray(values, dtype=dtype))


def split(batch: Any) -> list[Any]:
    """A batch's samples one by one, which ``default_collate`` turns back into the same
    batch: tensors as views of their rows, padded samples in their own shapes."""
    if isinstance(batch, torch.Tensor):
        return list(batch.unbind(0))
    if isinstance(batch, Padded):
        return batch.unpad()
    if isinstance(batch, dict):
        columns = [split(value) for value in batch.values()]
        return [dict(zip(batch, row, strict=True)) for row in zip(*columns, strict=True)]
    if isinstance(batch, list):
        return batch
    raise TypeError(f"cannot split a batch of {type(batch).__name__} into samples")


def target_items(target: Any) -> list[Any]:
    """A batch's targets as the per-sample values ``ds[i]`` gives (ints, floats, str)."""
    if isinstance(target, torch.Tensor):
        return target.tolist()
    if isinstance(target, dict):
        columns = [target_items(value) for value in target.values()]
        return [dict(zip(target, row, strict=True)) for row in zip(*columns, strict=True)]
    return list(target)
