"""Datasets that change: history, delete, compact, vacuum, concatenate (docs/versions.md).

The commit machinery is in :mod:`acumen.write.versioning` and :mod:`acumen.write.append`;
these are the operations built on it, and their commands.
"""
