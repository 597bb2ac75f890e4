"""Load only acumen's built-ins and this plugin, so other installed plugins cannot interfere."""

from __future__ import annotations

import os

os.environ["ACUMEN_PLUGINS"] = "builtin,blosc2"

# Imported once the variable is set; reloaded in case something imported acumen before.
from acumen import plugins

plugins.reload()
