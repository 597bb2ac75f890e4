"""A lazy, read-only registry of plugins: name -> dotted path, imported on first use."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from acumen.errors import PluginConflictError, PluginNotFoundError, quote, shorten
from acumen.hookspecs import KINDS


@dataclass(frozen=True)
class Registration:
    """One plugin: its kind and name, where its class lives, and who provides it."""

    kind: str
    name: str
    target: str  # "package.module:Class"
    plugin: str = "(registered in code)"  # entry-point name
    distribution: str | None = None
    version: str | None = None
    _loaded: list = field(default_factory=list, compare=False, repr=False)

    def load(self) -> type:
        """Import the class (once) and check it fulfils its kind's contract."""
        if not self._loaded:
            cls = _import(self.target)
            contract = _import(KINDS[self.kind][1])
            if not (isinstance(cls, type) and issubclass(cls, contract)):
                raise TypeError(f"{self.target} is not a subclass of {contract.__name__}")
            if getattr(cls, "name", None) != self.name:
                raise TypeError(
                    f"{self.target}.name is {getattr(cls, 'name', None)!r}, "
                    f"but it is registered as {self.name!r}"
                )
            self._loaded.append(cls)
        return self._loaded[0]


@dataclass(frozen=True)
class LoadFailure:
    """A plugin that could not be loaded, kept so it can be reported."""

    plugin: str
    distribution: str | None
    reason: str


class Registry:
    """Plugins by kind and name. Read it through :meth:`entries`; change it only via
    :meth:`register`, which refuses a taken name unless told to replace it."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Registration]] = {kind: {} for kind in KINDS}
        self.failures: list[LoadFailure] = []

    def register(self, registration: Registration, *, replace: bool = False) -> None:
        kind_entries = self._entries[_check_kind(registration.kind)]
        taken = kind_entries.get(registration.name)
        if taken is not None and not replace:
            raise PluginConflictError(
                f"{KINDS[registration.kind][2]} '{registration.name}' is registered already "
                f"(by {_provider(taken)}); pass replace=True to replace it"
            )
        kind_entries[registration.name] = registration

    def entries(self, kind: str) -> Mapping[str, Registration]:
        return MappingProxyType(self._entries[_check_kind(kind)])

    def names(self, kind: str) -> list[str]:
        return sorted(self._entries[_check_kind(kind)])

    def get(
        self, kind: str, name: str, *, asked_by: str | None = None, install_hint: str | None = None
    ) -> Registration:
        """The registration, or an error naming the kind, what is installed, and who asked."""
        try:
            return self._entries[_check_kind(kind)][name]
        except KeyError:
            pass
        label = KINDS[kind][2]
        installed = ", ".join(self.names(kind)) or "none"
        if install_hint is not None and self._loaded_from(install_hint):
            install_hint = None  # that distribution is loaded and lacks the name: no use
        asker = f" (the manifest of {asked_by} asks for it)" if asked_by else ""
        hint = shorten(install_hint or f"acumen-{name}", 100)
        message = (
            f"{label} {quote(name, 100)} is not installed{asker}; installed {label}s: "
            f"{installed}; try `pip install {hint}`"
        )
        if not any(self._entries.values()):
            message += (
                "; no acumen plugins were found at all: is acumen itself installed "
                "(`pip install -e .` in a clone of its repository)?"
            )
        raise PluginNotFoundError(message)

    def _loaded_from(self, distribution: str) -> bool:
        return any(
            entry.distribution == distribution
            for entries in self._entries.values()
            for entry in entries.values()
        )


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown plugin kind {kind!r}; kinds: {', '.join(KINDS)}")
    return kind


def _provider(registration: Registration) -> str:
    if registration.distribution:
        return f"{registration.distribution} {registration.version or ''}".strip()
    return registration.plugin


def _import(target: str) -> object:
    module_name, _, attribute = target.partition(":")
    obj: object = importlib.import_module(module_name)
    for part in filter(None, attribute.split(".")):
        obj = getattr(obj, part)
    return obj
