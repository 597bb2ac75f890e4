"""A lazy, read-only registry of plugins: name -> dotted path, imported on first use."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from acumen.errors import (
    PluginConflictError,
    PluginLoadError,
    PluginNotFoundError,
    did_you_mean,
    quote,
    shorten,
)
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
            try:
                cls = _import(self.target)
            except Exception as error:  # whatever the plugin's module raises on import
                raise PluginLoadError(
                    f"{KINDS[self.kind][2]} '{self.name}' from {_provider(self)} is installed "
                    f"but failed to load: {self.target}: {_reason(error)}"
                ) from error
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
        """The registration, or an error naming the kind, what is installed, and who asked:
        a close installed name for a misspelt one, and the import error of an installed
        plugin that failed to load rather than "not installed"."""
        try:
            return self._entries[_check_kind(kind)][name]
        except KeyError:
            pass
        asker = f" (the manifest of {asked_by} asks for it)" if asked_by else ""
        broken = self._failures_for(name, install_hint)
        if broken:
            raise PluginLoadError(_failed_to_load(kind, name, asker, broken))
        raise PluginNotFoundError(self._not_installed(kind, name, asker, install_hint))

    def _not_installed(self, kind: str, name: str, asker: str, install_hint: str | None) -> str:
        """What is installed instead, the close names, where to get it, and what failed."""
        label = KINDS[kind][2]
        guess = did_you_mean(name, self.names(kind))
        installed = ", ".join(self.names(kind)) or "none"
        message = (
            f"{label} {quote(name, 100)} is not installed{asker}; "
            f"{guess + ' ' if guess else ''}installed {label}s: {installed}"
        )
        hint = self._install_hint(name, install_hint, guessed=bool(guess))
        if hint:
            message += f"; try `pip install {shorten(hint, 100)}`"
        if self.failures:
            which = "a plugin" if len(self.failures) == 1 else "plugins"
            message += f"; {which} that failed to load may provide it: " + "; ".join(
                f"{_failed(failure)}: {failure.reason}" for failure in self.failures
            )
        if not any(self._entries.values()):
            message += (
                "; no acumen plugins were found at all: is acumen itself installed "
                "(`pip install -e .` in a clone of its repository)?"
            )
        return message

    def _install_hint(self, name: str, recorded: str | None, guessed: bool) -> str | None:
        """The distribution a manifest records (unless it is loaded: it lacks the name), or
        the conventional ``acumen-NAME`` when no installed name is close to ``name``."""
        if recorded is not None and not self._loaded_from(recorded):
            return recorded
        return None if guessed else f"acumen-{name}"

    def _failures_for(self, name: str, distribution: str | None) -> list[LoadFailure]:
        """Load failures of the plugin that provides ``name``, as far as can be told: the
        entry point named like it, its conventional distribution, or the one a manifest
        records."""
        wanted = {f"acumen-{name}", distribution} - {None}
        return [f for f in self.failures if f.plugin == name or f.distribution in wanted]

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


def _failed_to_load(kind: str, name: str, asker: str, failures: list[LoadFailure]) -> str:
    causes = "; ".join(
        f"its plugin {_failed(failure)} is installed but failed to load: {failure.reason}"
        for failure in failures
    )
    return f"{KINDS[kind][2]} {quote(name, 100)} cannot be used{asker}: {causes}"


def _failed(failure: LoadFailure) -> str:
    source = f" from {failure.distribution}" if failure.distribution else ""
    return f"'{failure.plugin}'{source}"


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {shorten(str(error))}"


def _import(target: str) -> object:
    module_name, _, attribute = target.partition(":")
    obj: object = importlib.import_module(module_name)
    for part in filter(None, attribute.split(".")):
        obj = getattr(obj, part)
    return obj
