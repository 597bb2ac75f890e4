"""The pluggy hooks acumen calls through the ``acumen`` entry point of this distribution."""

from __future__ import annotations

from acumen.hookspecs import hookimpl


@hookimpl
def acumen_codecs() -> dict[str, str]:
    # A dotted path only: Pillow is imported when a dataset uses the codec, not at discovery.
    return {"image": "acumen_image.codec:ImageCodec"}
