"""Plugin names and options people get wrong, and plugins that are installed but broken.

A misspelt name gets "did you mean" over the installed names of its kind, never an install
hint for a package that cannot exist; a misspelt option lists the plugin's options; a plugin
that fails to import says so, with the import error, instead of "not installed". Each is
tried through every door: the Python API, a convert config and a dataset's manifest.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

import acumen
from acumen import cli, plugins
from acumen.codecs.zstd import ZstdCodec
from acumen.convert import ConfigError, convert
from acumen.errors import AcumenError, ManifestError, PluginLoadError, PluginNotFoundError
from acumen.plugins import PluginLoadWarning
from acumen.plugins.registry import Registration, Registry
from tests.dataset_edits import manifest_of, save_manifest
from tests.test_plugins import XOR_CODEC, XOR_HOOKS, make_distribution

CODECS = "installed codecs: gzip, lz4, raw, zstd"
ZSTD_OPTIONS = "options: level, dictionary_size, train_samples, dictionary"


def write(root: Path, codec: str = "lz4", index_format: str = "csv") -> Path:
    with acumen.Writer(root, codec=codec, index_format=index_format, durable=False) as writer:
        for i in range(2):
            writer.add(np.full(3, i, np.int16), i=i)
    return root


def config_file(folder: Path, output: str, reader: str = 'name = "npy"') -> Path:
    """A TOML config over two .npy files; ``output`` and ``reader`` are TOML lines."""
    (folder / "data").mkdir()
    for i in range(2):
        np.save(folder / "data" / f"{i}.npy", np.arange(3) + i)
    path = folder / "config.toml"
    path.write_text(
        '[source]\nglob = "data/*.npy"\n\n'
        f"[reader]\n{reader}\n\n"
        f'[output]\npath = "out"\n{output}\n\n'
        "[run]\nprogress = false\n",
        encoding="utf-8",
    )
    return path


# --- item 9: misspelt names -----------------------------------------------------------------
MISSPELT = {
    "codec": (
        lambda tmp: plugins.codec("lz5"),
        f"codec 'lz5' is not installed; did you mean 'lz4'? {CODECS}",
    ),
    "codec, Writer": (
        lambda tmp: acumen.Writer(tmp / "ds", codec="zsdt"),
        f"codec 'zsdt' is not installed; did you mean 'zstd'? {CODECS}",
    ),
    "storage": (
        lambda tmp: acumen.open(write(tmp / "ds"), "mmpa"),
        "storage backend 'mmpa' is not installed; did you mean 'mmap'? "
        "installed storage backends: memory, mmap, remote, seek",
    ),
    "index format": (
        lambda tmp: acumen.Writer(tmp / "ds", index_format="parqet"),
        "index format 'parqet' is not installed; did you mean 'parquet'? "
        "installed index formats: arrow, csv, parquet",
    ),
    "reader": (
        lambda tmp: plugins.reader({"name": "imgae", "configuration": {}}),
        "reader 'imgae' is not installed; did you mean 'image'? "
        "installed readers: bytes, callable, column, image, npy, webdataset",
    ),
}


@pytest.mark.parametrize("case", list(MISSPELT))
def test_a_misspelt_name_from_python_asks_did_you_mean(tmp_path, case):
    call, message = MISSPELT[case]
    with pytest.raises(PluginNotFoundError) as caught:
        call(tmp_path)
    assert str(caught.value) == message
    assert "pip install" not in str(caught.value)
    assert not (tmp_path / "ds").exists() or case == "storage"


def test_a_name_nothing_is_close_to_keeps_the_install_hint():
    with pytest.raises(PluginNotFoundError) as caught:
        plugins.codec("blosc2")
    assert str(caught.value) == f"codec 'blosc2' is not installed; {CODECS}; " + (
        "try `pip install acumen-blosc2`"
    )


def test_two_close_names_are_both_offered():
    registry = Registry()
    for name in ("zstd", "zst2"):
        registry.register(Registration("codec", name, "acumen.codecs.zstd:ZstdCodec"))
    with pytest.raises(PluginNotFoundError, match=r"did you mean 'zstd' or 'zst2'\?"):
        registry.get("codec", "zst")


@pytest.mark.parametrize(
    ("output", "reader", "key", "message"),
    [
        ('codec = "lz5"', 'name = "npy"', "output.codec", f"did you mean 'lz4'? {CODECS}"),
        (
            'index_format = "parqet"',
            'name = "npy"',
            "output.index_format",
            "index format 'parqet' is not installed; did you mean 'parquet'?",
        ),
        ("", 'name = "nyp"', "reader", "reader 'nyp' is not installed; did you mean 'npy'?"),
    ],
    ids=["codec", "index format", "reader"],
)
def test_a_misspelt_name_in_a_convert_config_asks_did_you_mean(
    tmp_path, output, reader, key, message
):
    path = config_file(tmp_path, output, reader)
    with pytest.raises(ConfigError) as caught:
        convert(path)
    assert str(caught.value).startswith(f"{path}: key '{key}': ")
    assert message in str(caught.value)
    assert "pip install" not in str(caught.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("key", "name", "close"), [("codec", "lz5", "lz4"), ("index", "cvs", "csv")]
)
def test_a_misspelt_name_in_a_manifest_asks_did_you_mean(tmp_path, key, name, close):
    root = write(tmp_path / "ds")
    manifest = manifest_of(root)
    manifest[key]["name"] = name  # the provenance still says acumen-indexer, which is loaded
    save_manifest(root, manifest)
    with pytest.raises(PluginNotFoundError) as caught:
        acumen.open(root)
    message = str(caught.value)
    assert f"'{name}' is not installed (the manifest of {root} asks for it); " in message
    assert f"did you mean '{close}'?" in message
    assert "pip install" not in message


def test_a_manifest_naming_a_distribution_keeps_its_hint_beside_the_close_name(tmp_path):
    root = write(tmp_path / "ds")
    manifest = manifest_of(root)
    manifest["codec"]["name"] = "lz5"
    manifest["plugins"]["codec"] = {"distribution": "acumen-lz5", "version": "1.0"}
    save_manifest(root, manifest)
    with pytest.raises(PluginNotFoundError) as caught:
        acumen.open(root)
    assert str(caught.value) == (
        f"codec 'lz5' is not installed (the manifest of {root} asks for it); did you mean "
        f"'lz4'? {CODECS}; try `pip install acumen-lz5`"
    )


def test_a_misspelt_name_on_the_command_line_is_one_line(tmp_path, capsys):
    root = write(tmp_path / "ds")
    assert cli.main(["recode", str(root), str(tmp_path / "out"), "--codec", "lz5"]) == 1
    err = capsys.readouterr().err
    assert err == f"acumen: error: codec 'lz5' is not installed; did you mean 'lz4'? {CODECS}\n"


# --- item 9: misspelt options ---------------------------------------------------------------
OPTIONS = {
    "codec": (
        lambda tmp: plugins.codec({"name": "zstd", "configuration": {"levle": 9}}),
        f"codec 'zstd': bad configuration: unknown option 'levle' (did you mean 'level'?); "
        f"{ZSTD_OPTIONS}",
    ),
    "codec, Writer": (
        lambda tmp: acumen.Writer(
            tmp / "ds", codec={"name": "zstd", "configuration": {"levle": 9}}
        ),
        f"codec 'zstd': bad configuration: unknown option 'levle' (did you mean 'level'?); "
        f"{ZSTD_OPTIONS}",
    ),
    "codec without options": (
        lambda tmp: plugins.codec({"name": "raw", "configuration": {"level": 1}}),
        "codec 'raw': bad configuration: unknown option 'level'; options: none",
    ),
    "storage": (  # the paths a storage is given are no option
        lambda tmp: acumen.open(
            write(tmp / "ds"), {"name": "memory", "configuration": {"prelaod": True}}
        ),
        "storage backend 'memory': bad configuration: unknown option 'prelaod' "
        "(did you mean 'preload'?); options: preload",
    ),
    "index format": (
        lambda tmp: plugins.index_format({"name": "parquet", "configuration": {"compresion": 1}}),
        "index format 'parquet': bad configuration: unknown option 'compresion' "
        "(did you mean 'compression'?); options: compression",
    ),
    "reader": (
        lambda tmp: plugins.reader({"name": "image", "configuration": {"mdoe": "L"}}),
        "reader 'image': bad configuration: unknown option 'mdoe' (did you mean 'mode'?); "
        "options: mode",
    ),
    "two unknown": (
        lambda tmp: plugins.codec({"name": "gzip", "configuration": {"a": 1, "b": 2}}),
        "codec 'gzip': bad configuration: unknown options 'a', 'b'; options: level",
    ),
    "a required option missing": (
        lambda tmp: plugins.reader({"name": "callable", "configuration": {}}),
        "reader 'callable': bad configuration: option 'function' is required; options: function",
    ),
}


@pytest.mark.parametrize("case", list(OPTIONS))
def test_a_misspelt_option_from_python_lists_the_options(tmp_path, case):
    call, message = OPTIONS[case]
    with pytest.raises(ValueError) as caught:
        call(tmp_path)
    assert str(caught.value) == message
    assert not isinstance(caught.value, AcumenError)  # the caller's argument, as before
    assert not (tmp_path / "ds").exists() or case == "storage"


def test_a_misspelt_option_in_a_convert_config_lists_the_options(tmp_path):
    path = config_file(tmp_path, 'codec = { name = "zstd", configuration = { levle = 9 } }')
    with pytest.raises(ConfigError) as caught:
        convert(path)
    assert str(caught.value) == (
        f"{path}: key 'output.codec': codec 'zstd': bad configuration: unknown option 'levle' "
        f"(did you mean 'level'?); {ZSTD_OPTIONS}"
    )
    assert not (tmp_path / "out").exists()


def test_a_misspelt_reader_option_in_a_convert_config_lists_the_options(tmp_path):
    path = config_file(tmp_path, "", 'name = "bytes"\nconfiguration = { feild = "x" }')
    with pytest.raises(ConfigError, match=r"key 'reader': .*'feild' \(did you mean 'field'\?\)"):
        convert(path)


def test_a_misspelt_option_in_a_manifest_lists_the_options(tmp_path):
    root = write(tmp_path / "ds", codec="zstd")
    manifest = manifest_of(root)
    manifest["codec"]["configuration"] = {"levle": 9}
    save_manifest(root, manifest)
    with pytest.raises(ManifestError) as caught:
        acumen.open(root)
    assert caught.value.key == "codec.configuration"
    assert str(caught.value) == (
        f"{root / 'manifest.json'}: key 'codec.configuration': codec 'zstd' refuses "
        f"{{'levle': 9}}: unknown option 'levle' (did you mean 'level'?); {ZSTD_OPTIONS}"
    )


def test_from_config_lists_the_options_too():
    with pytest.raises(TypeError) as caught:
        ZstdCodec.from_config({"name": "zstd", "configuration": {"levle": 9}})
    assert str(caught.value) == (
        f"ZstdCodec: unknown option 'levle' (did you mean 'level'?); {ZSTD_OPTIONS}"
    )


KWARGS_CODEC = '''
from acumen.codecs.raw import RawCodec


class DeclaredCodec(RawCodec):
    """Takes **options and declares which it knows."""

    name = "declared"
    option_names = ("speed", "window")

    def __init__(self, **options) -> None:
        self.options = options


class OpenCodec(RawCodec):
    """Takes **options and declares nothing: it judges them itself."""

    name = "open"

    def __init__(self, **options) -> None:
        self.options = options
'''

KWARGS_HOOKS = """
from acumen.hookspecs import hookimpl


@hookimpl
def acumen_codecs():
    return {"declared": "acumen_testkw.impl:DeclaredCodec", "open": "acumen_testkw.impl:OpenCodec"}
"""


def test_a_plugin_taking_any_options_is_checked_against_what_it_declares(site, monkeypatch):
    make_distribution(
        site,
        "acumen_testkw",
        "acumen-testkw",
        "kw",
        {"__init__.py": KWARGS_HOOKS, "impl.py": KWARGS_CODEC},
    )
    importlib.invalidate_caches()
    monkeypatch.setenv("ACUMEN_PLUGINS", "builtin,kw")
    plugins.reload()
    assert plugins.codec({"name": "declared", "configuration": {"speed": 1}}).options == {
        "speed": 1
    }
    with pytest.raises(ValueError) as caught:
        plugins.codec({"name": "declared", "configuration": {"sped": 1}})
    assert str(caught.value) == (
        "codec 'declared': bad configuration: unknown option 'sped' (did you mean 'speed'?); "
        "options: speed, window"
    )
    assert plugins.codec({"name": "open", "configuration": {"anything": 1}}).options == {
        "anything": 1
    }


# --- item 10: installed, but failing to load -----------------------------------------------
def install_broken(site: Path, monkeypatch, entry_point: str = "testblosc") -> None:
    """acumen-testblosc: its hooks module raises ImportError (a missing native library)."""
    make_distribution(
        site,
        "acumen_testblosc",
        "acumen-testblosc",
        entry_point,
        {"__init__.py": 'raise ImportError("libblosc2.so: cannot open shared object file")\n'},
    )
    importlib.invalidate_caches()
    monkeypatch.setenv("ACUMEN_PLUGINS", f"builtin,{entry_point}")
    with pytest.warns(PluginLoadWarning, match="acumen-testblosc was skipped"):
        plugins.reload()


BROKEN = "ImportError: libblosc2.so: cannot open shared object file"


def test_a_plugin_failing_to_import_is_not_reported_as_not_installed(site, tmp_path, monkeypatch):
    install_broken(site, monkeypatch)
    with pytest.raises(PluginLoadError) as caught:
        acumen.Writer(tmp_path / "ds", codec="testblosc")
    assert isinstance(caught.value, AcumenError) and isinstance(caught.value, ImportError)
    assert str(caught.value) == (
        "codec 'testblosc' cannot be used: its plugin 'testblosc' from acumen-testblosc is "
        f"installed but failed to load: {BROKEN}"
    )
    assert not (tmp_path / "ds").exists()


def test_a_manifest_naming_a_plugin_that_fails_to_import(site, tmp_path, monkeypatch):
    root = write(tmp_path / "ds")
    manifest = manifest_of(root)
    manifest["codec"] = {"name": "blosc", "configuration": {}}
    manifest["plugins"]["codec"] = {"distribution": "acumen-testblosc", "version": "0.1"}
    save_manifest(root, manifest)
    install_broken(site, monkeypatch)
    with pytest.raises(PluginLoadError) as caught:
        acumen.open(root)
    assert str(caught.value) == (
        f"codec 'blosc' cannot be used (the manifest of {root} asks for it): its plugin "
        f"'testblosc' from acumen-testblosc is installed but failed to load: {BROKEN}"
    )


def test_a_convert_config_naming_a_plugin_that_fails_to_import(site, tmp_path, monkeypatch):
    install_broken(site, monkeypatch)
    path = config_file(tmp_path, 'codec = "testblosc"')
    with pytest.raises(ConfigError) as caught:
        convert(path)
    assert str(caught.value) == (
        f"{path}: key 'output.codec': codec 'testblosc' cannot be used: its plugin "
        f"'testblosc' from acumen-testblosc is installed but failed to load: {BROKEN}"
    )


def test_a_failed_plugin_that_may_provide_an_unknown_name_is_mentioned(site, monkeypatch):
    install_broken(site, monkeypatch, entry_point="compression-extras")
    with pytest.raises(PluginNotFoundError) as caught:
        plugins.codec("blosc2")
    assert str(caught.value) == (
        f"codec 'blosc2' is not installed; {CODECS}; try `pip install acumen-blosc2`; "
        "a plugin that failed to load may provide it: 'compression-extras' from "
        f"acumen-testblosc: {BROKEN}"
    )


def test_a_plugin_class_failing_to_import_says_it_is_installed(site, monkeypatch):
    """The hooks load, but the module holding the class needs what is missing."""
    codec = "raise ModuleNotFoundError(\"No module named 'xorlib'\")\n" + XOR_CODEC
    make_distribution(
        site,
        "acumen_testcodec",
        "acumen-testcodec",
        "testcodec",
        {"__init__.py": XOR_HOOKS, "codec.py": codec},
    )
    importlib.invalidate_caches()
    monkeypatch.setenv("ACUMEN_PLUGINS", "builtin,testcodec")
    plugins.reload()  # names only: nothing is wrong yet
    with pytest.raises(PluginLoadError) as caught:
        plugins.codec("xor")
    assert isinstance(caught.value, ImportError)
    assert str(caught.value) == (
        "codec 'xor' from acumen-testcodec 0.1 is installed but failed to load: "
        "acumen_testcodec.codec:XorCodec: ModuleNotFoundError: No module named 'xorlib'"
    )
