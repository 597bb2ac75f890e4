"""The hooks acumen calls through the ``acumen`` entry point: names and dotted paths only."""

from __future__ import annotations

from acumen.hookspecs import hookimpl


@hookimpl
def acumen_codecs() -> dict[str, str]:
    return {"blosc2": "acumen_blosc2.codec:Blosc2Codec"}
