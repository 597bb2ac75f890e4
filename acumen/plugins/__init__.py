"""Plugin discovery (pluggy over the ``acumen`` entry-point group) and lookup by name.

Every plugin, acumen's own included, arrives through an entry point. A plugin that fails
to load is skipped with a :class:`PluginLoadWarning` naming it and its distribution; the
environment variable ``ACUMEN_PLUGINS`` (comma-separated entry-point names, e.g.
``builtin``) restricts which load, so what else is installed cannot change an outcome.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

from acumen import hookspecs
from acumen.abc.codec import Codec
from acumen.abc.index_format import IndexFormat
from acumen.abc.plugin import Plugin
from acumen.abc.reader import Reader
from acumen.abc.storage import Storage
from acumen.errors import AcumenError, ManifestError, PluginConflictError, quote, shorten
from acumen.plugins.registry import LoadFailure, Registration, Registry

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

ENTRY_POINT_GROUP = "acumen"
ENV_VAR = "ACUMEN_PLUGINS"

PluginSpec = str | Mapping[str, Any] | Plugin


class PluginLoadWarning(UserWarning):
    """A plugin was skipped because it failed to load."""


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


def allowed_plugins() -> set[str] | None:
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def discover(allowed: Iterable[str] | None = None) -> Registry:
    """Load every entry point of the ``acumen`` group (or only ``allowed`` ones)."""
    allowed = set(allowed) if allowed is not None else allowed_plugins()
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    result = Registry()
    sources: dict[str, tuple[str | None, str | None]] = {}
    for entry_point in _entry_points():
        if allowed is not None and entry_point.name not in allowed:
            continue
        distribution, version = _distribution_of(entry_point)
        try:
            manager.register(entry_point.load(), name=entry_point.name)
        except Exception as error:
            _skip(result, entry_point.name, distribution, f"{type(error).__name__}: {error}")
            continue
        sources[entry_point.name] = (distribution, version)
    load_order = {name: position for position, name in enumerate(sources)}
    for kind, (hook_name, _, _) in hookspecs.KINDS.items():
        # In entry-point load order (built-ins first), so the first to claim a name keeps it.
        impls = sorted(
            getattr(manager.hook, hook_name).get_hookimpls(),
            key=lambda impl: load_order[impl.plugin_name],
        )
        for impl in impls:
            distribution, version = sources.get(impl.plugin_name, (None, None))
            try:
                provided = impl.function()
                if not isinstance(provided, Mapping) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in provided.items()
                ):
                    raise TypeError(f"{hook_name}() must return {{name: 'module:Class'}}")
            except Exception as error:
                _skip(result, impl.plugin_name, distribution, f"{type(error).__name__}: {error}")
                continue
            for name, target in provided.items():
                registration = Registration(
                    kind, name, target, impl.plugin_name, distribution, version
                )
                try:
                    result.register(registration)
                except PluginConflictError as error:
                    _skip(result, impl.plugin_name, distribution, str(error))
    return result


def _entry_points() -> list[EntryPoint]:
    # importlib.metadata costs a fifth of a bare ``import acumen``: loaded at first lookup.
    from importlib.metadata import entry_points

    found = entry_points(group=ENTRY_POINT_GROUP)
    # acumen's own plugins first, so a third party cannot shadow a built-in name.
    return sorted(found, key=lambda ep: (ep.name != "builtin", ep.name))


def _distribution_of(entry_point: EntryPoint) -> tuple[str | None, str | None]:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return None, None
    return dist.metadata["Name"], dist.version


def _skip(result: Registry, plugin: str, distribution: str | None, reason: str) -> None:
    result.failures.append(LoadFailure(plugin, distribution, reason))
    source = f" from {distribution}" if distribution else ""
    warnings.warn(
        f"acumen plugin '{plugin}'{source} was skipped: {reason}", PluginLoadWarning, stacklevel=3
    )


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
