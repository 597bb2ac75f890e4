"""Built-in storage backends, one per module; reach them by name through :mod:`acumen.plugins`."""
