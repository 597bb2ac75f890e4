"""mkdocs hooks of the docs site: the README and the changelog as pages, links that work.

The Markdown files stay written for GitHub, where they are read too; this file makes the same
text work on the site, so nothing is copied by hand and nothing can drift:

- ``index.md`` (the home page) is README.md and ``changelog.md`` is CHANGELOG.md, read from
  the repository root at build time (mkdocs reads only ``docs/``).
- A relative link is resolved from the file it is written in (README.md at the root, the
  pages in ``docs/``): a link to a page goes to that page on the site (``../README.md``
  becomes the home page, ``docs/usage.md`` in the README ``usage.md``); a link to another
  file of the repository, which the site does not have (``../plugins/acumen-blosc2``),
  becomes its path as code. A path that does not exist is a warning, an error under
  ``--strict``.
- In the API reference, the reST of the docstrings (``:class:`Dataset```, ``text::``) shows
  as what it means (``Dataset``, ``text:``) instead of as itself.
"""

from __future__ import annotations

import logging
import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.hooks.acumen")

ROOT = Path(__file__).resolve().parents[1]
#: Site pages made from files at the repository root: their path there -> their page.
GENERATED = {"README.md": "index.md", "CHANGELOG.md": "changelog.md"}

_FENCE = re.compile(r"^\s*(```|~~~)")
# [text](target) and ![alt](target); the target has no spaces or parentheses here.
_LINK = re.compile(r"(?P<bang>!?)\[(?P<text>[^\]\n]*)\]\((?P<target>[^()\s]+)\)")
_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):<code>~?")
_LITERAL = re.compile(r"::</p>")  # reST's "text::" before a code block


def on_files(files: Files, config: Any) -> Files:
    """Add the pages made from README.md and CHANGELOG.md to the site."""
    for source, page in GENERATED.items():
        text = (ROOT / source).read_text(encoding="utf-8")
        files.append(File.generated(config, page, content=text))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Point every relative link of the page at the site (outside code blocks)."""
    page_path = page.file.src_uri
    origin = _origin(page_path)
    lines = markdown.split("\n")
    in_code = False
    for number, line in enumerate(lines):
        if _FENCE.match(line):
            in_code = not in_code
        elif not in_code and "](" in line:
            lines[number] = _LINK.sub(lambda m: _relink(m, origin, page_path), line)
    return "\n".join(lines)


def on_page_content(html: str, page: Any, config: Any, files: Files) -> str:
    """In the API reference, drop the reST that docstrings use (``:class:`X``` shows ``X``)."""
    if not page.file.src_uri.startswith("api/"):
        return html
    return _LITERAL.sub(":</p>", _ROLE.sub("<code>", html))


def _origin(page_path: str) -> str:
    """The repository path of the file a site page is made from."""
    for source, page in GENERATED.items():
        if page == page_path:
            return source
    return f"docs/{page_path}"


def _relink(match: re.Match[str], origin: str, page_path: str) -> str:
    target = match["target"]
    if re.match(r"^[a-z][a-z0-9+.-]*:|^#|^/", target):  # a URL, an anchor on this page
        return match[0]
    path, _, anchor = target.partition("#")
    repo_path = posixpath.normpath(posixpath.join(posixpath.dirname(origin), path))
    if repo_path in GENERATED:
        site_path = GENERATED[repo_path]
    elif repo_path.startswith("docs/"):
        site_path = repo_path.removeprefix("docs/")
    else:
        if not (ROOT / repo_path).exists():
            log.warning("%s: the link %r names %s, which does not exist", origin, target, repo_path)
        code = f"`{repo_path}`"
        text = match["text"]
        return code if text.strip("`") == repo_path else f"{text} ({code})"
    if not site_path.endswith(".md") and not (ROOT / "docs" / site_path).exists():
        log.warning("%s: the link %r names %s, which does not exist", origin, target, repo_path)
    relative = posixpath.relpath(site_path, posixpath.dirname(page_path) or ".")
    new_target = relative + (f"#{anchor}" if anchor else "")
    return f"{match['bang']}[{match['text']}]({new_target})"
