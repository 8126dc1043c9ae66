"""Every link of README.md and docs/*.md resolves (a file of the repository, and its heading when
the link names one), and every repository path the documents quote in a code span exists.
Links to other sites are not fetched (the tests have no network); they are listed below."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs.markdown import DOCUMENTS, ROOT, all_code_spans, anchors, links

EXTERNAL = re.compile(r"^[a-z]+://")
_MADE = {
    line.strip("/") for line in (ROOT / ".gitignore").read_text().split() if line.endswith("/")
}
"""Folders git ignores (.gitignore), which the tests and builds make (``artifacts/``): the
documents may name what goes there before it exists."""
TOP = (
    *[
        p.name + "/"
        for p in ROOT.iterdir()
        if p.is_dir() and p.name[0] != "." and p.name not in _MADE
    ],
    ".ci/",
)
"""Quoted paths are checked when they start with a top-level folder of the repository."""
PATH = re.compile(r"^[\w.\-/]+\.(py|md|yaml|yml|sh|toml|png|txt)$|^[\w.\-]+/[\w.\-/]*$")


def _relative_links(path: Path) -> list[tuple[int, str]]:
    return [(line, target) for line, target in links(path) if not EXTERNAL.match(target)]


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve(path: Path) -> None:
    broken = []
    for line, target in _relative_links(path):
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        if not resolved.exists():
            broken.append((line, target, "no such file"))
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append((line, target, "no such heading"))
    assert broken == []


def _quoted_paths(path: Path) -> list[tuple[int, str]]:
    found = []
    for line, span in all_code_spans(path):
        first = span.split()[0] if span.split() else ""
        if first.startswith(TOP) and PATH.match(first) and "<" not in first:
            found.append((line, first))
    return found


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_quoted_repository_paths_exist(path: Path) -> None:
    missing = [(line, p) for line, p in _quoted_paths(path) if not (ROOT / p).exists()]
    assert missing == []


def test_the_documents_link_and_quote_paths_at_all() -> None:
    """The two checks above find something to check (a broken reader would pass them)."""
    assert sum(len(_relative_links(p)) for p in DOCUMENTS) > 40
    assert sum(len(_quoted_paths(p)) for p in DOCUMENTS) > 40
    assert "deploy/rbac.yaml" in {p for d in DOCUMENTS for _, p in _quoted_paths(d)}
