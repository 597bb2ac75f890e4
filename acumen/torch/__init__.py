"""PyTorch integration: a map-style ``Dataset`` and a locality-aware ``ChunkShuffleSampler``.

Needs torch (``pip install torch``, or acumen's ``torch`` extra)::

    from torch.utils.data import DataLoader
    from acumen.torch import ChunkShuffleSampler, TorchDataset

    data = TorchDataset("my_data", target="label")
    sampler = ChunkShuffleSampler(data, window=8, seed=0)
    loader = DataLoader(data, batch_size=64, sampler=sampler, num_workers=4)
    for epoch in range(10):
        sampler.set_epoch(epoch)
        for x, y in loader:
            ...

``TorchDataset`` implements ``__getitems__``, so a DataLoader fetches a whole batch with one
:meth:`acumen.Dataset.read_batch`. It pickles as the dataset's index and configuration, and
each worker reopens the files lazily: safe under fork, spawn and forkserver.
"""

from acumen.torch.dataset import TorchDataset
from acumen.torch.sampler import ChunkShuffleSampler

__all__ = ["ChunkShuffleSampler", "TorchDataset"]
