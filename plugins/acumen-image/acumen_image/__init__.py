"""acumen-image: store uint8 images in acumen datasets as PNG, JPEG or WebP payloads."""

__version__ = "0.1.0"
