"""Built-in readers for conversions, one per module; found by name via :mod:`acumen.plugins`."""
