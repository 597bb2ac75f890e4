"""What every plugin shares: a stable name and a configuration that round-trips through JSON."""

from __future__ import annotations

import json
from typing import Any, ClassVar


class Plugin:
    """Base of codecs, storages and index formats.

    A plugin instance is fully described by ``{"name": ..., "configuration": {...}}``; the
    manifest stores exactly that, and equality and ``repr`` follow from it.
    """

    name: ClassVar[str]

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
        return cls(**config.get("configuration", {}))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Plugin):
            return NotImplemented
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash(json.dumps(self.get_config(), sort_keys=True))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.configuration.items())
        return f"{type(self).__name__}({args})"
