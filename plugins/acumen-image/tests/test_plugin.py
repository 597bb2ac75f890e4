"""The codec arrives through this distribution's entry point, like any third-party plugin."""

from __future__ import annotations

import importlib.metadata

import acumen
from acumen import plugins

from acumen_image.codec import ImageCodec


def test_discovered_through_the_entry_point() -> None:
    entry = plugins.registry().entries("codec")["image"]
    assert entry.distribution == "acumen-image"
    assert entry.version == importlib.metadata.version("acumen-image")
    assert entry.plugin == "image"
    assert entry.target == "acumen_image.codec:ImageCodec"
    assert plugins.plugin_class("codec", "image") is ImageCodec
    assert plugins.registry().failures == []


def test_built_from_a_name_or_a_config() -> None:
    assert plugins.codec("image") == ImageCodec()
    spec = {"name": "image", "configuration": {"format": "jpeg", "quality": 80}}
    assert plugins.codec(spec) == ImageCodec(format="jpeg", quality=80)


def test_absent_when_acumen_plugins_leaves_it_out(monkeypatch) -> None:
    monkeypatch.setenv("ACUMEN_PLUGINS", "builtin")
    plugins.reload()
    assert "image" not in plugins.registry().names("codec")
    try:
        plugins.codec("image")
    except acumen.PluginNotFoundError as error:
        assert "image" in str(error)
    else:
        raise AssertionError("the image codec loaded although ACUMEN_PLUGINS left it out")
