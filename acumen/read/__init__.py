"""From a path to samples: opening, checks, the Dataset and its read paths.

Every module here is imported by name; this file only makes the folder a regular package
(tools such as griffe, which builds the API reference, skip namespace packages).
"""
