"""Built-in index formats, one per module; reach them by name through :mod:`acumen.plugins`."""
