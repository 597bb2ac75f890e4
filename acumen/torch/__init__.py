"""PyTorch integration: a map-style ``Dataset``, a locality-aware sampler, whole batches.

Needs torch (``pip install torch``, or acumen's ``torch`` extra)::

    from torch.utils.data import BatchSampler, DataLoader
    from acumen.torch import BatchLoader, ChunkShuffleSampler, TorchDataset

    data = TorchDataset("my_data", target="label")
    sampler = ChunkShuffleSampler(data, window=8, seed=0)
    # Whole batches: ds[list of indices] is one batch (one read, one tensor).
    loader = DataLoader(data, batch_size=None, num_workers=4,
                        sampler=BatchSampler(sampler, 256, drop_last=False))
    # The same batches from threads in this process (no workers):
    loader = BatchLoader(data, 256, sampler=sampler)
    for epoch in range(10):
        sampler.set_epoch(epoch)
        for x, y in loader:
            ...

Several datasets mixed by weight: ``MixtureSampler(acumen.Mixture([a, b], weights=[3, 1]))``
(docs/training.md). ``DataLoader(data, batch_size=256, sampler=sampler)`` works as well
(``__getitems__`` reads each batch at once and hands out its samples for the DataLoader's
collate; with ``collate_fn=acumen.torch.collate`` the batch comes back with no stacking). A
``TorchDataset`` pickles as the dataset's index and configuration, and each worker reopens
the files lazily: safe under fork, spawn and forkserver.
"""

from acumen.torch.batch import Padded, collate
from acumen.torch.dataset import TorchDataset
from acumen.torch.loader import BatchLoader
from acumen.torch.mixture import MixtureSampler
from acumen.torch.sampler import ChunkShuffleSampler

__all__ = [
    "BatchLoader",
    "ChunkShuffleSampler",
    "MixtureSampler",
    "Padded",
    "TorchDataset",
    "collate",
]
