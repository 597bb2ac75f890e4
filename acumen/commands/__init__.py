"""Subcommands of ``acumen`` that live in modules of their own: each module adds its parsers
(``add_parsers``), names them (``NAMES``) and runs them (``run``), and ``acumen.cli``
dispatches to it."""
