"""``callable``: a function ``module:function`` of yours, ``function(item) -> (sample, meta)``."""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from typing import Any

from acumen.abc.reader import Reader

_folders: list[str] = []  # config folders on the import path now (for the error message)


@contextlib.contextmanager
def config_folder_on_path(folder: str | None) -> Iterator[None]:
    """Put a conversion config's folder first on the import path while its callables are
    imported (a module beside the config, like a script's folder for a script).

    Only for the import: the folder leaves ``sys.path`` afterwards, the module stays in
    ``sys.modules``. Worker processes and Dask tasks call it themselves with the folder
    their task carries, so it works under every start method and on every Dask worker that
    sees the folder (the same shared filesystem the output needs).
    """
    if folder is None:
        yield
        return
    sys.path.insert(0, folder)
    _folders.append(folder)
    try:
        yield
    finally:
        _folders.pop()
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)


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
        hint = ""
        if isinstance(error, ModuleNotFoundError):
            searched = f"the config's folder {_folders[-1]} and " if _folders else ""
            hint = (
                f" (searched {searched}sys.path: put the module beside the config, or "
                "install it, or add its folder to PYTHONPATH)"
            )
        raise ValueError(f"{what} {target!r} cannot be imported: {error}{hint}") from None
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
