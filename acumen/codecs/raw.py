"""``raw``: payload = the sample's bytes. The original format's default."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from acumen.abc.codec import Buffer, Codec, array_bytes


class RawCodec(Codec):
    name = "raw"
    is_identity: ClassVar[bool] = True

    def encode(self, array: np.ndarray) -> Buffer:
        return array_bytes(array)

    def decode(self, payload: Buffer, decoded_size: int) -> Buffer:
        # The reader checked every payload size against shape x dtype when it opened.
        return payload
