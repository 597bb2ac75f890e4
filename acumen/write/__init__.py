"""From samples to committed files: the Writer, encoding, chunk files, commits.

Every module here is imported by name; this file only makes the folder a regular package
(tools such as griffe, which builds the API reference, skip namespace packages).
"""
