"""``callable``: a function ``module:function`` of yours, ``function(item) -> (sample, meta)``."""

from __future__ import annotations

import importlib
from typing import Any

from acumen.abc.reader import Reader


def load_callable(target: str, what: str) -> Any:
    """Import ``package.module:function``; errors say which setting named it."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{what} must look like 'package.module:function', got {target!r}")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"{what} {target!r} cannot be imported: {error}") from None
    if not callable(obj):
        raise ValueError(f"{what} {target!r} is not callable")
    return obj


class CallableReader(Reader):
    name = "callable"

    def __init__(self, function: str) -> None:
        self.function = function
        self._function = load_callable(function, "reader function")

    @property
    def configuration(self) -> dict:
        return {"function": self.function}

    def read(self, item: Any) -> tuple[Any, dict[str, Any]]:
        result = self._function(item)
        if not (isinstance(result, tuple) and len(result) == 2):
            raise TypeError(f"{self.function} must return (sample, metadata), got {type(result)}")
        return result

    def __reduce__(self) -> tuple:
        return (type(self), (self.function,))
