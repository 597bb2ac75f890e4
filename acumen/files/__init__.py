"""How acumen reaches files: the I/O layer (local files, URLs through fsspec, the cache).

Every module here is imported by name; this file only makes the folder a regular package
(tools such as griffe, which builds the API reference, skip namespace packages).
"""
