"""The Python snippets of README.md and docs/*.md, read and run by Sybil, in the order a reader
meets them: each document has one namespace, so a snippet may use what an earlier one defined.

A snippet may hold placeholders that a reader fills in (``start_date=...``, a pod's
``/dev/termination-log``): ``PLACEHOLDERS`` names each and the value ``namespace`` binds it to.
A snippet that cannot run here carries its reason in the document, visible to readers:
``<!-- skip: next "why" -->`` (Sybil's skip directive)."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from sybil import Example, Sybil
from sybil.document import Document
from sybil.evaluators.python import PythonEvaluator, pad
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

PLACEHOLDERS = {
    "start_date=...": "start_date=START_DATE",
    '"/dev/termination-log"': "TERMINATION_LOG",
}
"""Text a reader replaces in a snippet -> the name of the value the tests give it."""


def namespace(tmp: Path) -> dict[str, Any]:
    """What the placeholders become, and what snippets use without importing (``datetime``)."""
    return {
        "datetime": datetime,
        "START_DATE": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
        "TERMINATION_LOG": str(tmp / "termination-log"),
    }


class FilledPython(PythonEvaluator):
    """Sybil's Python evaluator, with the placeholders filled in first."""

    def __call__(self, example: Example) -> None:
        source = str(example.parsed)
        for text, name in PLACEHOLDERS.items():
            source = source.replace(text, name)
        code = compile(
            pad(source, example.line + example.parsed.line_offset),
            example.path,
            "exec",
            dont_inherit=True,
        )
        exec(code, example.namespace)


SYBIL = Sybil(parsers=[PythonCodeBlockParser(), SkipParser()], path=str(ROOT))
_EVALUATOR = FilledPython()


def parse(path: Path) -> Document:
    """The document, its Python snippets evaluated by ``FilledPython``."""
    document = SYBIL.parse(path)
    for _, region in document.regions:
        if isinstance(region.evaluator, PythonEvaluator):
            region.evaluator = _EVALUATOR
    return document


def python_snippets(path: Path) -> list[Example]:
    """The document's Python snippets (not its skip directives)."""
    return [e for e in parse(path) if e.region.evaluator is _EVALUATOR]
