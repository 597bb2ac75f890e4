"""Drop-in replacements for ``acumenindexer``'s functions, minus its bugs.

``import acumen.compat as ai`` lets code written against the original keep working:

* ``split_into_chunks`` keeps the signature; ``n_jobs > 1`` now really splits the work
  (the original wrote every sample once per job, with wrong offsets);
* ``load_index`` returns the DataFrame and remembers where the index lives;
* ``read_from_index`` finds the chunks next to the index by default (the original's
  ``./chunks`` default pointed at the wrong folder) and returns a picklable reader, so it
  works in DataLoader workers under spawn.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from acumen import plugins
from acumen.files.local import open_for_reading
from acumen.format.dtypes import storage_dtype
from acumen.format.index_frame import table_from_frame
from acumen.read.chunk_paths import locate_chunks
from acumen.read.dataset import Dataset
from acumen.read.file_checks import check_chunk_files
from acumen.read.opening import assemble
from acumen.write.split import ORIGINAL_DTYPE, ReadFn
from acumen.write.split import split_into_chunks as _split_into_chunks

if TYPE_CHECKING:
    import pandas as pd

ROOT_ATTRIBUTE = "acumen_root"


def split_into_chunks(
    data_list: Any,
    output_path: str,
    read_fn: ReadFn | None = None,
    chunk_size_bytes: int = 1024 * 1024 * 10,
    verbose: bool = False,
    n_jobs: int = 15,
    dtype: Any = ORIGINAL_DTYPE,
    use_gzip: bool = False,
) -> None:
    """The original's signature and defaults; writes the original layout (plus a manifest).

    A cast to the default float16 that loses a value is refused (see
    :func:`acumen.split_into_chunks`); ``dtype=np.float16`` given explicitly casts as told.
    """
    _split_into_chunks(
        data_list,
        output_path,
        read_fn=read_fn,
        chunk_size_bytes=chunk_size_bytes,
        n_jobs=n_jobs,
        dtype=dtype,
        use_gzip=use_gzip,
        verbose=verbose,
    )


def load_index(index_path: str | os.PathLike[str]) -> pd.DataFrame:
    """The index as a DataFrame, as the original; it also remembers its folder."""
    import pandas as pd  # here: reading samples never needs pandas

    with open_for_reading(index_path, "index file") as file:  # a FIFO would block forever
        frame = pd.read_csv(file)
    frame.attrs[ROOT_ATTRIBUTE] = str(Path(index_path).parent)
    return frame


class IndexReader:
    """``reader(i) -> (array, metadata)``; picklable, unlike the original's closure."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __call__(self, idx: int) -> tuple[np.ndarray, dict[str, Any]]:
        return self.dataset[idx]

    def __len__(self) -> int:
        return len(self.dataset)


def read_from_index(
    index: pd.DataFrame,
    dtype: Any = np.float16,
    use_gzip: bool = False,
    chunk_paths: str | os.PathLike[str] | None = None,
    in_memory: bool = False,
) -> IndexReader:
    """A reader over an index from :func:`load_index`.

    ``chunk_paths`` is the folder the ``ai:chunk_name`` entries are relative to; by default
    the folder of the index file. ``in_memory=True`` maps the chunks (mmap), as the original.
    """
    if chunk_paths is not None:
        root = Path(chunk_paths)
    else:
        root = Path(index.attrs.get(ROOT_ATTRIBUTE, "."))
    table = table_from_frame(index, None, source=f"index of {root}")
    dtype = storage_dtype(dtype)
    codec = plugins.codec("gzip" if use_gzip else "raw")
    paths, sizes = locate_chunks(root, table.chunk_names)
    check_chunk_files(root, table, paths, sizes, None)
    storage = "mmap" if in_memory else "seek"
    return IndexReader(
        assemble(root, root / "index.csv", table, dtype, codec, storage, paths, sizes)
    )
