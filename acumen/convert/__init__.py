"""Config-driven conversion of many small files into one dataset (``acumen convert``)."""

from acumen.convert.checking import CheckReport, check
from acumen.convert.config import ConfigError, ConvertConfig, load_config
from acumen.convert.parts import ConversionError
from acumen.convert.run import ConversionSummary, convert

__all__ = [
    "CheckReport",
    "ConfigError",
    "ConversionError",
    "ConversionSummary",
    "ConvertConfig",
    "check",
    "convert",
    "load_config",
]
