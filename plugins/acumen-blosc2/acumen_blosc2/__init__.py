"""A Blosc2 codec for acumen; registered through the ``acumen`` entry point as ``blosc2``.

Nothing heavy is imported here: acumen imports :mod:`acumen_blosc2.codec` (and blosc2)
only when a dataset uses the codec.
"""

__version__ = "0.1.0"
