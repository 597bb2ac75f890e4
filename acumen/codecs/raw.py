"""``raw``: payload = the sample's bytes. The original format's default."""

from __future__ import annotations

from typing import ClassVar

from acumen.abc.codec import Buffer, Codec


class RawCodec(Codec):
    name = "raw"
    is_identity: ClassVar[bool] = True

    def encode(self, data: Buffer) -> Buffer:
        return data

    def decode(self, payload: Buffer, decoded_size: int) -> Buffer:
        # The reader checked every payload size against shape x dtype when it opened.
        return payload
