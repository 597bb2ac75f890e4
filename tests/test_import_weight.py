"""``import acumen`` stays light (every spawned DataLoader worker pays for it): it loads
neither pandas, pyarrow nor the conversion package; ``acumen.convert``, ``acumen.ConfigError``
and ``acumen.ConversionError`` load on first use; a worker unpickling a dataset loads no
pandas either. Each case runs in a fresh interpreter."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import acumen

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "pyarrow", "acumen.convert")


def run_python(code: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_import_acumen_loads_no_heavy_module() -> None:
    result = run_python(
        "import json, sys\n"
        "import acumen\n"
        f"print(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    )
    assert result == dict.fromkeys(HEAVY, False)


def test_conversion_names_load_on_first_use() -> None:
    result = run_python(
        "import json, sys\n"
        "import acumen\n"
        "from acumen.convert.config import ConfigError\n"
        "from acumen.convert.parts import ConversionError\n"
        "from acumen.convert.run import convert\n"
        "print(json.dumps({\n"
        "    'config_error': acumen.ConfigError is ConfigError,\n"
        "    'conversion_error': acumen.ConversionError is ConversionError,\n"
        "    'convert': acumen.convert is convert,\n"
        "    'loaded': 'acumen.convert' in sys.modules,\n"
        "}))"
    )
    assert result == {
        "config_error": True,
        "conversion_error": True,
        "convert": True,
        "loaded": True,
    }


def test_lazy_names_resolve_through_attribute_and_from_import() -> None:
    result = run_python(
        "import json, sys\n"
        "import acumen\n"
        "from acumen import ConfigError, ConversionError, convert\n"
        "print(json.dumps({\n"
        "    'function': callable(convert) and convert.__module__ == 'acumen.convert.run',\n"
        "    'errors': [ConfigError.__name__, ConversionError.__name__],\n"
        "    'loaded': 'acumen.convert' in sys.modules,\n"
        "}))"
    )
    assert result == {
        "function": True,
        "errors": ["ConfigError", "ConversionError"],
        "loaded": True,
    }


def test_convert_stays_the_function_when_the_subpackage_is_imported_first() -> None:
    # Importing the subpackage binds the package's attribute ``convert`` to it.
    result = run_python(
        "import json\n"
        "import acumen\n"
        "import acumen.convert\n"
        "from acumen.convert import load_config\n"
        "from acumen.convert.run import convert\n"
        "print(json.dumps({'convert': acumen.convert is convert}))"
    )
    assert result == {"convert": True}


def test_every_name_in_all_resolves() -> None:
    result = run_python(
        "import json\n"
        "import acumen\n"
        "missing = [n for n in acumen.__all__ if not hasattr(acumen, n)]\n"
        "listed = [n for n in acumen.__all__ if n not in dir(acumen)]\n"
        "print(json.dumps({'missing': missing, 'not_in_dir': listed}))"
    )
    assert result == {"missing": [], "not_in_dir": []}


@pytest.mark.parametrize("index_format", ["csv", "arrow", "parquet"])
def test_a_worker_unpickling_a_dataset_loads_no_pandas_and_no_writing_code(
    tmp_path: Path, index_format: str
) -> None:
    """What a spawned DataLoader worker does: unpickle the dataset, read samples and their
    metadata (a text column with few distinct values: dictionary codes in arrow/parquet)."""
    path = tmp_path / index_format
    with acumen.Writer(path, index_format=index_format) as writer:
        for i in range(20):
            writer.add(np.full(3, i, dtype=np.float32), label=i, split=("train", "val")[i % 2])
    with acumen.open(path) as dataset:
        blob = pickle.dumps(dataset)
    code = (
        "import json, pickle, sys\n"
        f"dataset = pickle.loads({blob!r})\n"
        "array, metadata = dataset[5]\n"
        "loaded = [m for m in ('pandas', 'acumen.write.writer', 'acumen.convert') "
        "if m in sys.modules]\n"
        "print(json.dumps({'array': array.tolist(), 'metadata': metadata, 'loaded': loaded}))"
    )
    result = run_python(code)
    assert result == {
        "array": [5.0, 5.0, 5.0],
        "metadata": {"label": 5, "split": "val"},
        "loaded": [],
    }
