"""Where acumen keeps local copies for datasets in object storage: the read side's mirrors
(``remote/``) and the write side's staging folders (``staging/``)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

#: Where mirrors and staging folders live unless ``cache=`` or ``ACUMEN_CACHE`` says otherwise.
CACHE_ENV = "ACUMEN_CACHE"


def default_cache() -> Path:
    """``$ACUMEN_CACHE``, else ``$XDG_CACHE_HOME/acumen``, else ``~/.cache/acumen``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "acumen"


def cache_root(cache: str | os.PathLike[str] | None) -> Path:
    """The cache folder a caller's ``cache=`` names (None: :func:`default_cache`)."""
    return Path(cache).expanduser() if cache is not None else default_cache()


def url_folder(
    url: str, cache: str | os.PathLike[str] | None, kind: str, *, create: bool = True
) -> Path:
    """``<cache>/<kind>/<hash of url>``, created (unless ``create=False``), with a ``url``
    file saying which URL it stands for (for whoever looks at the cache), written once.
    The same URL gives the same folder."""
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:24]
    root = cache_root(cache) / kind / digest
    if not create:
        return root
    root.mkdir(parents=True, exist_ok=True)
    named = root / "url"
    if not named.exists():
        named.write_text(url + "\n", encoding="utf-8")
    return root
