"""Plugin discovery: pluggy over the ``acumen`` entry-point group.

Every plugin, acumen's own included, arrives through an entry point. A plugin that fails
to load is skipped with a :class:`PluginLoadWarning` naming it and its distribution; the
environment variable ``ACUMEN_PLUGINS`` (comma-separated entry-point names, e.g.
``builtin``) restricts which load, so what else is installed cannot change an outcome.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import pluggy

from acumen import hookspecs
from acumen.errors import PluginConflictError
from acumen.plugins.registry import LoadFailure, Registration, Registry

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

ENTRY_POINT_GROUP = "acumen"
ENV_VAR = "ACUMEN_PLUGINS"


class PluginLoadWarning(UserWarning):
    """A plugin was skipped because it failed to load."""


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
