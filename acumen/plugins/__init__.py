"""Plugins by name: the registry of what is installed (discovered on first use) and the
lookups that build a codec, index format, reader or storage from a name, a config or a
manifest. Discovery itself is :mod:`acumen.plugins.discovery`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from acumen import hookspecs
from acumen.abc.codec import Codec
from acumen.abc.index_format import IndexFormat
from acumen.abc.plugin import Plugin
from acumen.abc.reader import Reader
from acumen.abc.storage import Storage
from acumen.errors import AcumenError, ManifestError, quote, shorten
from acumen.plugins.discovery import (
    ENTRY_POINT_GROUP,
    ENV_VAR,
    PluginLoadWarning,
    allowed_plugins,
    discover,
)
from acumen.plugins.registry import Registry

if TYPE_CHECKING:
    from acumen.format.manifest import Manifest

__all__ = [
    "ENTRY_POINT_GROUP",
    "ENV_VAR",
    "PluginLoadWarning",
    "PluginSpec",
    "allowed_plugins",
    "codec",
    "discover",
    "from_manifest",
    "index_format",
    "named_by",
    "plugin_class",
    "reader",
    "registry",
    "reload",
    "storage",
]

PluginSpec = str | Mapping[str, Any] | Plugin


_registry: Registry | None = None
_registry_lock = threading.Lock()


def registry() -> Registry:
    """The registry of installed plugins, discovered on first use."""
    global _registry
    if _registry is None:
        with _registry_lock:
            if _registry is None:
                _registry = discover()
    return _registry


def reload() -> Registry:
    """Discover plugins again (after installing one, or changing ``ACUMEN_PLUGINS``)."""
    global _registry
    with _registry_lock:
        _registry = discover()
    return _registry


def plugin_class(
    kind: str, name: str, *, asked_by: str | None = None, install_hint: str | None = None
) -> type:
    """The class registered as ``name``; an error says what is installed when it is not."""
    return registry().get(kind, name, asked_by=asked_by, install_hint=install_hint).load()


def _split_spec(spec: PluginSpec) -> tuple[str, dict[str, Any]]:
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, Mapping):
        name = spec.get("name")
        if not isinstance(name, str):
            raise ValueError(f"a plugin config needs a 'name' string: {quote(dict(spec))}")
        return name, dict(spec.get("configuration") or {})
    raise TypeError(f"expected a plugin name, config dict or instance, got {type(spec).__name__}")


def codec(spec: PluginSpec, **lookup: str | None) -> Codec:
    """A codec from a name (``"zstd"``), a config dict, or an instance."""
    return _instantiate("codec", spec, (), lookup)  # type: ignore[return-value]


def index_format(spec: PluginSpec, **lookup: str | None) -> IndexFormat:
    """An index format from a name, a config dict, or an instance."""
    return _instantiate("index_format", spec, (), lookup)  # type: ignore[return-value]


def reader(spec: PluginSpec, **lookup: str | None) -> Reader:
    """A conversion reader from a name, a config dict, or an instance."""
    return _instantiate("reader", spec, (), lookup)  # type: ignore[return-value]


def storage(spec: PluginSpec, paths: Sequence[str], **lookup: str | None) -> Storage:
    """A storage backend over ``paths`` from a name, a config dict, or an instance's config."""
    if isinstance(spec, Storage):
        spec = spec.get_config()
    return _instantiate("storage", spec, (paths,), lookup)  # type: ignore[return-value]


def from_manifest(
    kind: str,
    config: Mapping[str, Any],
    *,
    source: str | os.PathLike[str],
    key: str,
    asked_by: str | None = None,
    install_hint: str | None = None,
) -> Plugin:
    """The plugin a dataset's file asks for (``{"name", "configuration"}`` under ``key``).

    The one door for configurations read from a file: whatever a plugin's constructor
    raises on them (``ValueError`` for a level of ``"x"``, ``TypeError`` for an unknown
    option, anything else) is a :class:`ManifestError` naming the file and the key.
    """
    name, configuration = _split_spec(config)
    cls = plugin_class(kind, name, asked_by=asked_by, install_hint=install_hint)
    refuses = f"{hookspecs.KINDS[kind][2]} {quote(name)} refuses {quote(configuration)}"
    problem = cls.configuration_problem(configuration)
    if problem is not None:
        raise ManifestError(source, f"{key}.configuration", f"{refuses}: {problem}")
    try:
        return cls(**configuration)
    except AcumenError:
        raise
    except Exception as error:  # a plugin's constructor, given what a file says
        raise ManifestError(
            source,
            f"{key}.configuration",
            f"{refuses}: {type(error).__name__}: {shorten(str(error))}",
        ) from None


def named_by(
    manifest: Manifest,
    key: str,
    source: str | os.PathLike[str],
    asked_by: str | None = None,
) -> Plugin:
    """The plugin ``manifest`` (read from ``source``) names under ``key``: ``"codec"``,
    ``"index"`` or ``"fields[i].codec"``, through :func:`from_manifest`, with the
    distribution the manifest recorded as the hint of what to install."""
    if key == "codec":
        kind, config, hint = "codec", manifest.codec, "codec"
    elif key == "index":
        kind, config, hint = "index_format", manifest.index, "index"
    else:  # fields[i].codec
        config = (manifest.fields or [])[int(key[len("fields[") : key.index("]")])]["codec"]
        kind, hint = "codec", f"codec:{config['name']}"
    return from_manifest(
        kind,
        config,
        source=source,
        key=key,
        asked_by=asked_by,
        install_hint=manifest.install_hint(hint),
    )


def _instantiate(kind: str, spec: PluginSpec, args: tuple, lookup: dict) -> Plugin:
    if isinstance(spec, Plugin):
        return spec
    name, configuration = _split_spec(spec)
    cls = plugin_class(kind, name, **lookup)
    bad = f"{hookspecs.KINDS[kind][2]} '{name}': bad configuration"
    problem = cls.configuration_problem(configuration, skip=len(args))
    if problem is not None:
        raise ValueError(f"{bad}: {problem}")
    try:
        return cls(*args, **configuration)
    except TypeError as error:
        raise ValueError(f"{bad}: {error}") from None
