"""``npy``: one ``.npy`` file per sample (``np.save``); never unpickles."""

from __future__ import annotations

from typing import Any

import numpy as np

from acumen.abc.reader import Reader


class NpyReader(Reader):
    name = "npy"

    def read(self, item: Any) -> tuple[np.ndarray, dict[str, Any]]:
        # allow_pickle=False: a .npy holding Python objects is refused, not executed.
        return np.load(item, allow_pickle=False), {}
