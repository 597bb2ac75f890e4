"""The pluggy hooks a plugin distribution implements.

A plugin distribution declares an entry point in the ``acumen`` group pointing at a module
(or object) with one or more of these hooks. Each returns ``{name: "module:Class"}``:
names and dotted paths only, so nothing heavy is imported until a dataset uses it::

    # pyproject.toml of acumen-blosc2
    [project.entry-points.acumen]
    blosc2 = "acumen_blosc2.hooks"

    # acumen_blosc2/hooks.py
    from acumen.hookspecs import hookimpl

    @hookimpl
    def acumen_codecs():
        return {"blosc2": "acumen_blosc2.codec:Blosc2Codec"}
"""

from __future__ import annotations

import pluggy

PROJECT = "acumen"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def acumen_codecs() -> dict[str, str]:
    """Codecs this plugin provides: ``{name: "module:Class"}`` (subclasses of ``Codec``)."""


@hookspec
def acumen_storages() -> dict[str, str]:
    """Storage backends this plugin provides (subclasses of ``Storage``)."""


@hookspec
def acumen_index_formats() -> dict[str, str]:
    """Index formats this plugin provides (subclasses of ``IndexFormat``)."""


@hookspec
def acumen_readers() -> dict[str, str]:
    """Readers this plugin provides for conversions (subclasses of ``Reader``)."""


#: Plugin kind -> (hook name, contract class path, label used in messages).
KINDS = {
    "codec": ("acumen_codecs", "acumen.abc.codec:Codec", "codec"),
    "storage": ("acumen_storages", "acumen.abc.storage:Storage", "storage backend"),
    "index_format": ("acumen_index_formats", "acumen.abc.index_format:IndexFormat", "index format"),
    "reader": ("acumen_readers", "acumen.abc.reader:Reader", "reader"),
}
