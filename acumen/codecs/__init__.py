"""Built-in codecs, one per module; reach them by name through :mod:`acumen.plugins`."""
