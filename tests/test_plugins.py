"""Plugin discovery through the ``acumen`` entry-point group, and the registry.

Third-party distributions are real ones: a package and a ``.dist-info`` folder written to
``tmp_path`` and put on ``sys.path``, so ``importlib.metadata`` finds their entry points
exactly as it would after ``pip install``.
"""

from __future__ import annotations

import importlib
import json
import pickle
import sys
import textwrap
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest

import acumen
import acumen.codecs
from acumen import plugins
from acumen.abc import Codec, IndexFormat, Reader, Storage
from acumen.errors import PluginConflictError, PluginNotFoundError
from acumen.plugins import PluginLoadWarning
from acumen.plugins.registry import LoadFailure, Registration, Registry

BUILTINS = {
    "codec": {
        "raw": "acumen.codecs.raw:RawCodec",
        "gzip": "acumen.codecs.gzip:GzipCodec",
        "zstd": "acumen.codecs.zstd:ZstdCodec",
        "lz4": "acumen.codecs.lz4:Lz4Codec",
    },
    "storage": {
        "seek": "acumen.storage.seek:SeekStorage",
        "mmap": "acumen.storage.mmap:MmapStorage",
        "memory": "acumen.storage.memory:MemoryStorage",
        "remote": "acumen.storage.remote:RemoteStorage",
    },
    "index_format": {
        "arrow": "acumen.index_formats.arrow:ArrowIndex",
        "csv": "acumen.index_formats.csv:CsvIndex",
        "parquet": "acumen.index_formats.parquet:ParquetIndex",
    },
    "reader": {
        "npy": "acumen.readers.npy:NpyReader",
        "image": "acumen.readers.image:ImageReader",
        "bytes": "acumen.readers.bytes:BytesReader",
        "callable": "acumen.readers.callable:CallableReader",
        "column": "acumen.readers.column:ColumnReader",
        "webdataset": "acumen.readers.webdataset:WebDatasetReader",
    },
}

XOR_CODEC = '''
import numpy as np

from acumen.abc import Codec
from acumen.errors import CorruptDatasetError


class XorCodec(Codec):
    """Every byte XOR a key: trivial, but a real, configurable third-party codec."""

    name = "xor"

    def __init__(self, key: int = 90) -> None:
        if not 0 <= int(key) <= 255:
            raise ValueError(f"xor key must be 0..255, got {key}")
        self.key = int(key)

    @property
    def configuration(self) -> dict:
        return {"key": self.key}

    def encode(self, data):
        return (np.frombuffer(data, np.uint8) ^ np.uint8(self.key)).tobytes()

    def decode(self, payload, decoded_size):
        if memoryview(payload).nbytes != decoded_size:
            raise CorruptDatasetError(f"xor payload is not {decoded_size} bytes")
        return (np.frombuffer(payload, np.uint8) ^ np.uint8(self.key)).tobytes()
'''

XOR_HOOKS = """
from acumen.hookspecs import hookimpl


@hookimpl
def acumen_codecs():
    return {"xor": "acumen_testcodec.codec:XorCodec"}
"""


# The ``site`` fixture (a fresh site directory on ``sys.path``) is in conftest.py.
def make_distribution(
    site: Path, package: str, distribution: str, entry_point: str, files: dict[str, str]
) -> None:
    """Write package ``package`` (``files``: module path -> source) and its dist-info."""
    for relative, source in files.items():
        path = site / package / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
    info = site / f"{package}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        f"[acumen]\n{entry_point} = {package}\n", encoding="utf-8"
    )


def install_xor(site: Path) -> None:
    make_distribution(
        site,
        "acumen_testcodec",
        "acumen-testcodec",
        "testcodec",
        {"__init__.py": XOR_HOOKS, "codec.py": XOR_CODEC},
    )
    importlib.invalidate_caches()


# --- acumen's own plugins -----------------------------------------------------------
def test_builtins_come_through_the_builtin_entry_point():
    registry = plugins.registry()
    assert registry.failures == []
    for kind, expected in BUILTINS.items():
        assert registry.names(kind) == sorted(expected)
        for name, target in expected.items():
            registration = registry.get(kind, name)
            assert registration.kind == kind
            assert registration.name == name
            assert registration.target == target
            assert registration.plugin == "builtin"
            assert registration.distribution == "acumen-indexer"
            assert registration.version == acumen.__version__


def test_builtin_classes_fulfil_their_contracts():
    contracts = {
        "codec": Codec,
        "storage": Storage,
        "index_format": IndexFormat,
        "reader": Reader,
    }
    for kind, names in BUILTINS.items():
        for name in names:
            cls = plugins.plugin_class(kind, name)
            assert issubclass(cls, contracts[kind])
            assert cls.name == name


def test_builtin_codec_modules_are_imported_only_when_asked_for(monkeypatch):
    monkeypatch.delitem(sys.modules, "acumen.codecs.lz4", raising=False)
    monkeypatch.delattr(acumen.codecs, "lz4", raising=False)
    plugins.reload()
    assert "acumen.codecs.lz4" not in sys.modules
    registration = plugins.registry().get("codec", "lz4")  # looking it up imports nothing
    assert registration.target == "acumen.codecs.lz4:Lz4Codec"
    assert "acumen.codecs.lz4" not in sys.modules
    codec = plugins.codec("lz4")
    assert "acumen.codecs.lz4" in sys.modules
    assert type(codec) is sys.modules["acumen.codecs.lz4"].Lz4Codec
    assert plugins.plugin_class("codec", "lz4") is type(codec)  # imported once, cached


def test_acumen_plugins_restricts_what_loads(monkeypatch):
    monkeypatch.setenv("ACUMEN_PLUGINS", " something-else , ")
    registry = plugins.reload()
    assert all(registry.names(kind) == [] for kind in BUILTINS)
    with pytest.raises(PluginNotFoundError) as caught:
        plugins.codec("raw")
    assert str(caught.value) == (
        "codec 'raw' is not installed; installed codecs: none; try `pip install acumen-raw`; "
        "no acumen plugins were found at all: is acumen itself installed "
        "(`pip install -e .` in a clone of its repository)?"
    )


def test_allowed_plugins_parsing(monkeypatch):
    monkeypatch.setenv("ACUMEN_PLUGINS", " builtin, testcodec ,,")
    assert plugins.allowed_plugins() == {"builtin", "testcodec"}
    monkeypatch.setenv("ACUMEN_PLUGINS", "  ")
    assert plugins.allowed_plugins() is None
    monkeypatch.delenv("ACUMEN_PLUGINS")
    assert plugins.allowed_plugins() is None


# --- a third-party distribution ---------------------------------------------------------
@pytest.mark.parametrize("allowed", [None, "builtin,testcodec"], ids=["unset", "listed"])
def test_third_party_codec_is_discovered_and_used(site, tmp_path, monkeypatch, allowed):
    install_xor(site)
    if allowed is None:
        monkeypatch.delenv("ACUMEN_PLUGINS")
    else:
        monkeypatch.setenv("ACUMEN_PLUGINS", allowed)
    registry = plugins.reload()
    if allowed is not None:  # unset: other installed plugins may load too
        assert registry.failures == []
    registration = registry.get("codec", "xor")
    assert registration.target == "acumen_testcodec.codec:XorCodec"
    assert registration.plugin == "testcodec"
    assert registration.distribution == "acumen-testcodec"
    assert registration.version == "0.1"
    expected = {"gzip", "lz4", "raw", "xor", "zstd"}
    if allowed is None:
        assert expected <= set(registry.names("codec"))
    else:
        assert registry.names("codec") == sorted(expected)
    # Registered by name only: the codec module is imported on first use.
    assert "acumen_testcodec" in sys.modules
    assert "acumen_testcodec.codec" not in sys.modules

    root = tmp_path / "ds"
    rng = np.random.default_rng(3)
    samples = [rng.standard_normal((5, 2)).astype(np.float32) for _ in range(4)]
    with acumen.Writer(root, codec={"name": "xor", "configuration": {"key": 7}}) as writer:
        for i, array in enumerate(samples):
            writer.add(array, i=i)
    assert "acumen_testcodec.codec" in sys.modules

    chunk = (root / "chunks" / "chunk_0.chnk").read_bytes()
    stored = np.frombuffer(chunk, np.uint8)
    plain = np.frombuffer(b"".join(a.tobytes() for a in samples), np.uint8)
    np.testing.assert_array_equal(stored, plain ^ 7)  # really went through the codec

    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["codec"] == {"name": "xor", "configuration": {"key": 7}}
    assert manifest["plugins"]["codec"] == {"distribution": "acumen-testcodec", "version": "0.1"}
    assert manifest["plugins"]["index"]["distribution"] == "acumen-indexer"

    with acumen.open(root) as ds:
        assert ds.codec.name == "xor"
        assert ds.codec.key == 7
        for i, array in enumerate(samples):
            got, metadata = ds[i]
            np.testing.assert_array_equal(got, array)
            assert metadata == {"i": i}

    # Without the plugin, the dataset says what to install: the distribution that wrote it.
    monkeypatch.setenv("ACUMEN_PLUGINS", "builtin")
    plugins.reload()
    with pytest.raises(PluginNotFoundError) as caught:
        acumen.open(root)
    assert str(caught.value) == (
        f"codec 'xor' is not installed (the manifest of {root} asks for it); installed "
        "codecs: gzip, lz4, raw, zstd; try `pip install acumen-testcodec`"
    )


def test_third_party_codec_works_with_split_into_chunks_in_workers(site, tmp_path, monkeypatch):
    install_xor(site)
    monkeypatch.setenv("ACUMEN_PLUGINS", "builtin,testcodec")
    plugins.reload()
    items = [(np.full(3, i, np.float32), {"i": i}) for i in range(40)]
    manifest = acumen.split_into_chunks(
        items, tmp_path / "ds", codec="xor", dtype=None, n_jobs=2, chunk_size_bytes=64
    )
    assert manifest.codec == {"name": "xor", "configuration": {"key": 90}}
    with acumen.open(tmp_path / "ds") as ds:
        assert [int(ds[i][0][0]) for i in range(len(ds))] == list(range(40))


def test_broken_plugin_is_skipped_with_a_warning(site, tmp_path, monkeypatch):
    make_distribution(
        site,
        "acumen_testbroken",
        "acumen-testbroken",
        "broken",
        {"__init__.py": 'raise ImportError("needs libfoo, which is not installed")\n'},
    )
    importlib.invalidate_caches()
    # Only the plugins under test, whatever else is installed on this machine.
    monkeypatch.setenv("ACUMEN_PLUGINS", "builtin,broken")
    with pytest.warns(PluginLoadWarning) as record:
        registry = plugins.reload()
    assert len(record) == 1
    assert str(record[0].message) == (
        "acumen plugin 'broken' from acumen-testbroken was skipped: "
        "ImportError: needs libfoo, which is not installed"
    )
    assert issubclass(PluginLoadWarning, UserWarning)
    assert registry.failures == [
        LoadFailure(
            "broken", "acumen-testbroken", "ImportError: needs libfoo, which is not installed"
        )
    ]
    # Everything acumen ships still works.
    for kind, expected in BUILTINS.items():
        assert registry.names(kind) == sorted(expected)
    with acumen.Writer(tmp_path / "ds", codec="zstd") as writer:
        writer.add(np.arange(6, dtype=np.int16))
    with acumen.open(tmp_path / "ds", "seek") as ds:
        np.testing.assert_array_equal(ds[0][0], np.arange(6))


def test_broken_plugin_not_loaded_when_not_allowed(site, monkeypatch):
    make_distribution(
        site, "acumen_testbroken", "acumen-testbroken", "broken", {"__init__.py": "1 / 0\n"}
    )
    importlib.invalidate_caches()
    monkeypatch.setenv("ACUMEN_PLUGINS", "builtin")
    registry = plugins.reload()  # no warning: warnings are errors here
    assert registry.failures == []
    assert "acumen_testbroken" not in sys.modules


@pytest.mark.parametrize(
    "returned",
    ['["xor"]', '"xor"', "None", '{"xor": object}', '{3: "acumen_testcodec.codec:XorCodec"}'],
)
def test_hook_returning_something_else_is_skipped_with_a_warning(site, monkeypatch, returned):
    hooks = f"""
        from acumen.hookspecs import hookimpl


        @hookimpl
        def acumen_codecs():
            return {returned}


        @hookimpl
        def acumen_storages():
            return {{"xorstore": "acumen_testodd:Nothing"}}
        """
    make_distribution(site, "acumen_testodd", "acumen-testodd", "odd", {"__init__.py": hooks})
    importlib.invalidate_caches()
    monkeypatch.setenv("ACUMEN_PLUGINS", "builtin,odd")
    with pytest.warns(PluginLoadWarning) as record:
        registry = plugins.reload()
    assert [str(w.message) for w in record] == [
        "acumen plugin 'odd' from acumen-testodd was skipped: TypeError: acumen_codecs() must "
        "return {name: 'module:Class'}"
    ]
    assert registry.failures[0].plugin == "odd"
    assert registry.names("codec") == sorted(BUILTINS["codec"])
    # Only the bad hook is skipped; the plugin's other hook still registered.
    assert registry.get("storage", "xorstore").distribution == "acumen-testodd"


def test_hook_raising_is_skipped_with_a_warning(site, monkeypatch):
    hooks = """
        from acumen.hookspecs import hookimpl


        @hookimpl
        def acumen_codecs():
            raise RuntimeError("cannot list codecs")
        """
    make_distribution(
        site, "acumen_testraise", "acumen-testraise", "raises", {"__init__.py": hooks}
    )
    importlib.invalidate_caches()
    monkeypatch.setenv("ACUMEN_PLUGINS", "builtin,raises")
    with pytest.warns(PluginLoadWarning, match="'raises' from acumen-testraise was skipped: "):
        registry = plugins.reload()
    assert registry.failures == [
        LoadFailure("raises", "acumen-testraise", "RuntimeError: cannot list codecs")
    ]


def test_third_party_cannot_shadow_a_builtin(site, monkeypatch):
    hooks = """
        from acumen.hookspecs import hookimpl


        @hookimpl
        def acumen_codecs():
            return {"zstd": "acumen_testshadow.codec:XorCodec"}
        """
    make_distribution(
        site,
        "acumen_testshadow",
        "acumen-testshadow",
        "aaa-shadow",  # sorts before "builtin": acumen's own still load first
        {"__init__.py": hooks, "codec.py": XOR_CODEC},
    )
    importlib.invalidate_caches()
    monkeypatch.setenv("ACUMEN_PLUGINS", "builtin,aaa-shadow")
    with pytest.warns(PluginLoadWarning) as record:
        registry = plugins.reload()
    assert [str(w.message) for w in record] == [
        f"acumen plugin 'aaa-shadow' from acumen-testshadow was skipped: codec 'zstd' is "
        f"registered already (by acumen-indexer {acumen.__version__}); pass replace=True to "
        "replace it"
    ]
    assert registry.get("codec", "zstd").distribution == "acumen-indexer"
    assert type(plugins.codec("zstd")).__module__ == "acumen.codecs.zstd"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "class NotACodec:\n    name = 'notcodec'\n",
            "acumen_testbad.impl:NotACodec is not a subclass of Codec",
        ),
        (
            "from acumen.abc import Storage\n\nclass NotACodec(Storage):\n    name = 'notcodec'\n",
            "acumen_testbad.impl:NotACodec is not a subclass of Codec",
        ),
        (
            "NotACodec = lambda: None\n",
            "acumen_testbad.impl:NotACodec is not a subclass of Codec",
        ),
        (
            "from acumen.codecs.raw import RawCodec as NotACodec\n",
            "acumen_testbad.impl:NotACodec.name is 'raw', but it is registered as 'notcodec'",
        ),
    ],
    ids=["plain class", "a storage", "not a class", "wrong name"],
)
def test_registered_class_breaking_the_contract_fails_on_load(site, monkeypatch, source, message):
    hooks = """
        from acumen.hookspecs import hookimpl


        @hookimpl
        def acumen_codecs():
            return {"notcodec": "acumen_testbad.impl:NotACodec"}
        """
    make_distribution(
        site, "acumen_testbad", "acumen-testbad", "bad", {"__init__.py": hooks, "impl.py": source}
    )
    importlib.invalidate_caches()
    monkeypatch.setenv("ACUMEN_PLUGINS", "builtin,bad")
    registry = plugins.reload()  # names only: nothing is wrong yet
    assert registry.get("codec", "notcodec").distribution == "acumen-testbad"
    with pytest.raises(TypeError) as caught:
        plugins.codec("notcodec")
    assert str(caught.value) == message


# --- the registry -----------------------------------------------------------------------
def test_registry_is_read_only():
    registry = plugins.registry()
    entries = registry.entries("codec")
    assert isinstance(entries, MappingProxyType)
    with pytest.raises(TypeError):
        entries["evil"] = Registration("codec", "evil", "os:system")  # type: ignore[index]
    with pytest.raises(TypeError):
        del entries["raw"]  # type: ignore[attr-defined]
    assert "evil" not in registry.names("codec")
    names = registry.names("codec")
    names.append("evil")  # a copy
    assert "evil" not in registry.names("codec")


def test_register_refuses_a_taken_name_unless_replacing():
    registry = plugins.discover(["builtin"])  # a private registry, not the global one
    assert registry is not plugins.registry()
    mine = Registration("codec", "zstd", "acumen.codecs.raw:RawCodec", "mine", "my-dist", "2.0")
    with pytest.raises(PluginConflictError) as caught:
        registry.register(mine)
    assert isinstance(caught.value, ValueError)
    assert str(caught.value) == (
        f"codec 'zstd' is registered already (by acumen-indexer {acumen.__version__}); pass "
        "replace=True to replace it"
    )
    assert registry.get("codec", "zstd").distribution == "acumen-indexer"
    registry.register(mine, replace=True)
    assert registry.get("codec", "zstd") is mine
    # Registered in code, the provider is named by its plugin name.
    again = Registration("codec", "zstd", "acumen.codecs.zstd:ZstdCodec")
    with pytest.raises(PluginConflictError, match=r"\(by my-dist 2.0\); pass replace=True"):
        registry.register(again)
    # The global registry never saw any of this.
    assert plugins.registry().get("codec", "zstd").distribution == "acumen-indexer"


def test_register_in_code_and_use():
    registry = Registry()
    registry.register(Registration("storage", "seek2", "acumen.storage.seek:SeekStorage"))
    assert registry.names("storage") == ["seek2"]
    with pytest.raises(TypeError, match="name is 'seek', but it is registered as 'seek2'"):
        registry.get("storage", "seek2").load()


def test_registry_unknown_kind():
    registry = plugins.registry()
    for call in (
        lambda: registry.names("compressor"),
        lambda: registry.entries("compressor"),
        lambda: registry.get("compressor", "zstd"),
        lambda: registry.register(Registration("compressor", "x", "os:path")),
    ):
        with pytest.raises(ValueError) as caught:
            call()
        assert str(caught.value) == (
            "unknown plugin kind 'compressor'; kinds: codec, storage, index_format, reader"
        )


def test_lookup_errors():
    with pytest.raises(PluginNotFoundError) as caught:
        plugins.index_format("feather")
    assert str(caught.value) == (
        "index format 'feather' is not installed; installed index formats: arrow, csv, parquet; "
        "try `pip install acumen-feather`"
    )
    with pytest.raises(KeyError):
        plugins.storage("s3", [])
    with pytest.raises(TypeError, match="expected a plugin name, config dict or instance, got int"):
        plugins.codec(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="a plugin config needs a 'name' string"):
        plugins.codec({"name": None})


# --- configurations ---------------------------------------------------------------------
CONFIGS = [
    ("codec", {"name": "raw", "configuration": {}}, "RawCodec()"),
    ("codec", {"name": "gzip", "configuration": {"level": 6}}, "GzipCodec(level=6)"),
    ("codec", {"name": "gzip", "configuration": {"level": 1}}, "GzipCodec(level=1)"),
    ("codec", {"name": "zstd", "configuration": {"level": 3}}, "ZstdCodec(level=3)"),
    ("codec", {"name": "zstd", "configuration": {"level": -5}}, "ZstdCodec(level=-5)"),
    ("codec", {"name": "zstd", "configuration": {"level": 19}}, "ZstdCodec(level=19)"),
    ("codec", {"name": "lz4", "configuration": {"level": 0}}, "Lz4Codec(level=0)"),
    ("codec", {"name": "lz4", "configuration": {"level": 9}}, "Lz4Codec(level=9)"),
    ("index_format", {"name": "csv", "configuration": {}}, "CsvIndex()"),
    (
        "index_format",
        {"name": "parquet", "configuration": {"compression": "zstd"}},
        "ParquetIndex(compression='zstd')",
    ),
    (
        "index_format",
        {"name": "parquet", "configuration": {"compression": "none"}},
        "ParquetIndex(compression='none')",
    ),
]


@pytest.mark.parametrize(("kind", "config", "text"), CONFIGS, ids=[c[2] for c in CONFIGS])
def test_config_round_trips_through_json(kind, config, text):
    make = plugins.codec if kind == "codec" else plugins.index_format
    plugin = make(config)
    assert plugin.get_config() == config
    dumped = json.dumps(plugin.get_config())
    rebuilt = type(plugin).from_config(json.loads(dumped))
    assert rebuilt == plugin
    assert rebuilt is not plugin
    assert hash(rebuilt) == hash(plugin)
    assert repr(plugin) == text
    assert make(json.loads(dumped)) == plugin  # through the registry as well
    assert pickle.loads(pickle.dumps(plugin)) == plugin


def test_defaults_equal_their_explicit_config():
    assert plugins.codec("zstd") == plugins.codec({"name": "zstd", "configuration": {"level": 3}})
    assert plugins.codec("gzip") != plugins.codec({"name": "gzip", "configuration": {"level": 1}})
    assert plugins.codec("raw") != plugins.codec("lz4")
    assert plugins.index_format("parquet").get_config() == {
        "name": "parquet",
        "configuration": {"compression": "zstd"},
    }


def test_codec_from_a_config_dict():
    codec = plugins.codec({"name": "zstd", "configuration": {"level": 7}})
    assert codec.level == 7
    assert codec.name == "zstd"
    assert plugins.codec({"name": "zstd"}).level == 3  # configuration may be left out
    assert plugins.codec(codec) is codec  # an instance passes through


def test_from_config_refuses_another_plugins_config():
    zstd = type(plugins.codec("zstd"))
    with pytest.raises(ValueError) as caught:
        zstd.from_config({"name": "gzip", "configuration": {"level": 3}})
    assert str(caught.value) == "config names 'gzip', not 'zstd'"


def test_codecs_round_trip_bytes():
    data = np.random.default_rng(1).integers(0, 4, 1000, dtype=np.uint8).tobytes()
    for name in BUILTINS["codec"]:
        codec = plugins.codec(name)
        payload = codec.encode(data)
        assert bytes(codec.decode(payload, len(data))) == data


# --- storages ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "config",
    [
        {"name": "seek", "configuration": {}},
        {"name": "mmap", "configuration": {}},
        {"name": "memory", "configuration": {"preload": False}},
        {"name": "memory", "configuration": {"preload": True}},
    ],
    ids=lambda c: f"{c['name']}{c['configuration']}",
)
def test_storage_pickles_by_paths_and_config(tmp_path, config):
    paths = []
    for n in range(2):
        path = tmp_path / f"chunk_{n}.chnk"
        path.write_bytes(bytes(range(n * 10, n * 10 + 50)))
        paths.append(str(path))
    storage = plugins.storage(config, paths)
    assert storage.get_config() == config
    assert bytes(storage.read(1, 5, 3)) == bytes([15, 16, 17])  # handles are open now

    rebuilder, args = storage.__reduce__()
    assert callable(rebuilder)
    assert args == (type(storage), paths, config["configuration"])
    clone = pickle.loads(pickle.dumps(storage))
    try:
        assert type(clone) is type(storage)
        assert clone.paths == paths
        assert clone.get_config() == config
        assert clone is not storage
        assert clone != storage  # a storage equals only itself
        assert bytes(clone.read(0, 0, 4)) == bytes([0, 1, 2, 3])
        assert bytes(clone.read(1, 45, 5)) == bytes(range(55, 60))
        with pytest.raises(acumen.CorruptDatasetError, match="past the end of the file"):
            clone.read(1, 48, 5)
    finally:
        clone.close()
        storage.close()

    # An instance given as spec lends its config, bound to the new paths.
    other = plugins.storage(storage, paths[:1])
    try:
        assert type(other) is type(storage)
        assert other.paths == paths[:1]
        assert other.get_config() == config
    finally:
        other.close()


def test_storage_pickle_carries_no_open_handles(tmp_path):
    path = tmp_path / "chunk.chnk"
    path.write_bytes(b"x" * 100)
    storage = plugins.storage("seek", [str(path)])
    try:
        storage.read(0, 0, 10)
        payload = pickle.dumps(storage)
        assert len(payload) < 400  # class reference, path and {} only
        assert str(path).encode() in payload
    finally:
        storage.close()
