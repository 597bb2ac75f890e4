"""What every plugin shares: a stable name and a configuration that round-trips through JSON."""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Mapping
from typing import Any, ClassVar

from acumen.errors import did_you_mean, quote


class Plugin:
    """Base of codecs, storages and index formats.

    A plugin instance is fully described by ``{"name": ..., "configuration": {...}}``; the
    manifest stores exactly that, and equality and ``repr`` follow from it.
    """

    name: ClassVar[str]

    #: The configuration keys the constructor accepts. None (the default): its keyword
    #: parameters, read from its signature; a constructor taking ``**options`` declares
    #: them here, or leaves None to judge every key itself.
    option_names: ClassVar[tuple[str, ...] | None] = None

    @property
    def configuration(self) -> dict[str, Any]:
        """The keyword arguments that rebuild this instance; JSON-able."""
        return {}

    @property
    def reading_configuration(self) -> dict[str, Any]:
        """The part of :attr:`configuration` that changes how stored data is read back.

        ``acumen.open(path, codec=...)`` accepts a plugin that agrees with the manifest's on
        this: a compression level only matters to writing, a dictionary matters to reading.
        Default: all of the configuration (the safe answer for a plugin that says nothing).
        """
        return self.configuration

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "configuration": dict(self.configuration)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Plugin:
        if config.get("name", cls.name) != cls.name:
            raise ValueError(f"config names '{config.get('name')}', not '{cls.name}'")
        configuration = config.get("configuration", {})
        problem = cls.configuration_problem(configuration)
        if problem is not None:
            raise TypeError(f"{cls.__name__}: {problem}")
        return cls(**configuration)

    @classmethod
    def configuration_problem(cls, configuration: Mapping[str, Any], skip: int = 0) -> str | None:
        """What is wrong with the keys of ``configuration`` (an unknown key, with the close
        names and the valid ones; a required key missing), or None. A misspelt option would
        otherwise surface as Python's "unexpected keyword argument", naming no valid key.
        ``skip``: leading constructor arguments the caller passes itself (a storage's paths).
        """
        options = _options(cls, skip)
        if options is None:
            return None
        names, required = options
        listed = f"options: {', '.join(names) or 'none'}"
        unknown = [key for key in configuration if key not in names]
        if unknown:
            plural = "s" if len(unknown) > 1 else ""
            guess = did_you_mean(unknown[0], names) if len(unknown) == 1 else ""
            guess = f" ({guess})" if guess else ""
            keys = ", ".join(quote(key, 60) for key in unknown[:8])
            return f"unknown option{plural} {keys}{guess}; {listed}"
        missing = [name for name in required if name not in configuration]
        if missing:
            return f"option {quote(missing[0])} is required; {listed}"
        return None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Plugin):
            return NotImplemented
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash(json.dumps(self.get_config(), sort_keys=True))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.configuration.items())
        return f"{type(self).__name__}({args})"


@functools.cache
def _options(cls: type[Plugin], skip: int) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(accepted keys, required keys) of ``cls``'s configuration; None when it takes any."""
    if cls.option_names is not None:
        return tuple(cls.option_names), ()
    try:
        parameters = list(inspect.signature(cls).parameters.values())[skip:]
    except (TypeError, ValueError):  # no signature to read (a C constructor)
        return None
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    named = [p for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    required = [p.name for p in named if p.default is p.empty]
    return tuple(p.name for p in named), tuple(required)
