"""The two image presets of docs/images.md convert a class-folder tree as the page says.

The TOML blocks are taken from the page itself, so the presets users copy are the ones
tested: the bytes preset keeps every file's bytes exactly (and the dataset stays about the
folder's size), the decoded preset stores what Pillow decodes, as RGB.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import acumen

PAGE = Path(__file__).resolve().parents[1] / "docs" / "images.md"


def presets() -> dict[str, str]:
    """The page's TOML blocks by the name in their first comment line."""
    blocks = re.findall(r"```toml\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S)
    return {block.splitlines()[0].lstrip("# ").split(":")[0]: block for block in blocks}


def photo_folder(root: Path) -> dict[str, bytes]:
    """A class-folder tree of small JPEGs of varied modes; their bytes by relative path."""
    rng = np.random.default_rng(1)
    files = {}
    for label, mode in (("cat", "RGB"), ("dog", "L"), ("owl", "CMYK")):
        for i in range(4):
            size = (24 + 8 * i, 16 + 4 * i)
            channels = len(mode)
            pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
            image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode)
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=90)
            relative = f"{label}/{i:04d}.jpg"
            (root / label).mkdir(parents=True, exist_ok=True)
            (root / relative).write_bytes(buffer.getvalue())
            files[relative] = buffer.getvalue()
    return files


def test_the_page_has_both_presets() -> None:
    assert set(presets()) == {"images-bytes", "images-decoded"}


@pytest.mark.parametrize("name", ["images-bytes", "images-decoded"])
def test_a_preset_converts_a_class_folder_tree(tmp_path: Path, name: str) -> None:
    files = photo_folder(tmp_path / "photos")
    (tmp_path / "convert.toml").write_text(presets()[name], encoding="utf-8")
    acumen.convert(tmp_path / "convert.toml", progress=False)
    output = tmp_path / ("photos-bytes" if name == "images-bytes" else "photos-decoded")
    with acumen.open(output) as ds:
        assert len(ds) == len(files)
        seen = set()
        for i in range(len(ds)):
            sample, metadata = ds[i]
            path = metadata["path"]
            seen.add(path)
            if name == "images-bytes":
                assert sample == {"data": files[path]}
            else:
                with Image.open(io.BytesIO(files[path])) as image:
                    expected = np.asarray(image.convert("RGB"))
                np.testing.assert_array_equal(sample, expected)
        assert seen == set(files)
    if name == "images-bytes":  # about the folder's size: the bytes plus a small index
        stored = sum(p.stat().st_size for p in output.rglob("*") if p.is_file())
        assert sum(map(len, files.values())) < stored < sum(map(len, files.values())) + 64_000
