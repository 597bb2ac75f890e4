"""The docs site builds with ``mkdocs build --strict``: a broken link, anchor or API reference
fails the suite, and the pages people look for are there (mkdocs.yml, docs/hooks.py)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]


def test_the_site_builds_strictly_with_its_pages(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet"]
    command += ["-f", str(ROOT / "mkdocs.yml"), "-d", str(site)]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}{done.stderr}"

    home = (site / "index.html").read_text(encoding="utf-8")
    assert 'id="installing"' in home  # the README, with its install section
    assert 'href="changelog/"' in home  # README's link to CHANGELOG.md, on the site

    reference = (site / "api" / "read" / "index.html").read_text(encoding="utf-8")
    assert 'id="acumen.open"' in reference
    signature = re.sub(r"<[^>]+>", "", reference)  # the signature, highlighted, as text
    assert "storage_options: dict[str, Any] | None = None" in signature
    assert ":class:" not in reference  # docstrings' roles shown as code
    for page in ("write", "torch", "abc", "errors", "versions", "training", "convert"):
        assert "doc-heading" in (site / "api" / page / "index.html").read_text(encoding="utf-8")

    changelog = (site / "changelog" / "index.html").read_text(encoding="utf-8")
    newest = re.search(r"^## (.+)$", (ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert newest is not None and newest[1] in changelog

    usage = (site / "usage" / "index.html").read_text(encoding="utf-8")
    assert 'href="../#installing"' in usage  # ../README.md#installing in docs/usage.md
    assert (site / "benchmarks.png").is_file() and (site / "shuffle_quality.png").is_file()


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_links_written_for_github_point_at_the_site() -> None:
    hooks = _hooks()

    def relinked(markdown: str, page: str) -> str:
        fake = SimpleNamespace(file=SimpleNamespace(src_uri=page))
        return hooks.on_page_markdown(markdown, page=fake, config=None, files=None)

    readme = "See [docs/usage.md](docs/usage.md#fields), [log](CHANGELOG.md), [x](#installing)."
    assert relinked(readme, "index.md") == (
        "See [docs/usage.md](usage.md#fields), [log](changelog.md), [x](#installing)."
    )
    page = (
        "[Installing](../README.md#installing), [`plugins/acumen-image`](../plugins/acumen-image)"
    )
    site = "[Installing](index.md#installing), `plugins/acumen-image`"
    assert relinked(page, "convert.md") == site
    assert relinked("[guide](../usage.md)", "api/read.md") == "[guide](../usage.md)"
    assert relinked("[the code](../acumen/cli.py)", "plugins.md") == "the code (`acumen/cli.py`)"
    code = "```python\nfunctions[0](x)\n[a](../b.md)\n```"
    assert relinked(code, "usage.md") == code  # code blocks stay as written
