"""Every Python snippet of README.md and docs/*.md runs (tests/docs/snippets.py says how), and
what the documents say the snippets make is what they make."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sybil import Example
from sybil.document import Document

from tests.docs.snippets import (
    DOCUMENTS,
    ROOT,
    FilledPython,
    namespace,
    parse,
    python_snippets,
)

SNIPPETS = [
    pytest.param(path, index, id=f"{path.relative_to(ROOT)}:{example.line}")
    for path in DOCUMENTS
    for index, example in enumerate(python_snippets(path))
]


class Reader:
    """One document read in order: a snippet runs after every snippet (and skip directive)
    before it, so running one snippet alone (``-k``) works too."""

    def __init__(self, path: Path, tmp: Path) -> None:
        self.document: Document = parse(path)
        self.document.namespace.update(namespace(tmp))
        self.examples: list[Example] = list(self.document)
        self.snippets = [e for e in self.examples if isinstance(e.region.evaluator, FilledPython)]
        self.done = 0

    def run_through(self, index: int) -> None:
        """Run the document up to its ``index``-th Python snippet."""
        while self.done <= self.examples.index(self.snippets[index]):
            example = self.examples[self.done]
            self.done += 1
            example.evaluate()


_readers: dict[Path, Reader] = {}


@pytest.fixture
def reader(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    def get(path: Path) -> Reader:
        if path not in _readers:
            _readers[path] = Reader(path, tmp_path_factory.mktemp(path.stem))
        return _readers[path]

    return get


def _readme(ns: dict[str, Any]) -> None:
    assert ns["manifest"]["kind"] == "TFJob"
    assert ns["manifest"]["spec"]["tfReplicaSpecs"]["Worker"]["replicas"] == 4
    assert ns["train"].kwargs["namespace"] == "ml"  # the @task.tfjob one, defined last


def _termination_message(ns: dict[str, Any]) -> None:
    # Without TF_CONFIG the snippet takes itself for the chief and writes its message.
    assert json.loads(Path(ns["TERMINATION_LOG"]).read_text()) == {"loss": 0.12, "accuracy": 0.97}


def _quickstart(ns: dict[str, Any]) -> None:
    assert ns["train"].command[:2] == ["python", "-c"]


def _events(ns: dict[str, Any]) -> None:
    (watcher,) = ns["trained"].watchers
    assert watcher.trigger.namespace == "ml" and watcher.trigger.label_selector == "team=vision"
    catch_up = ns["dag"].get_task("catch_up")
    assert catch_up.upstream_task_ids == {"register"} and catch_up.asset is ns["trained"]


def _reference(ns: dict[str, Any]) -> None:
    assert ns["train"].kwargs["image"] == "python:3.11-slim"


def _migration(ns: dict[str, Any]) -> None:
    assert ns["train"].kwargs["task_config"].replica_counts()["Worker"] == 2


AFTERWARDS: dict[str, Callable[[dict[str, Any]], None]] = {
    "README.md": _readme,
    "outputs-and-logs.md": _termination_message,
    "quickstart.md": _quickstart,
    "events.md": _events,
    "reference.md": _reference,
    "migration-from-flytekit.md": _migration,
}
"""What each document's snippets make, checked once its last snippet ran."""


@pytest.mark.parametrize(("path", "index"), SNIPPETS)
def test_snippet_runs(reader: Callable[[Path], Reader], path: Path, index: int) -> None:
    document = reader(path)
    document.run_through(index)  # a skipped snippet raises SkipTest with the document's reason
    if index == len(document.snippets) - 1:
        AFTERWARDS[path.name](document.document.namespace)


def test_every_document_with_snippets_says_what_they_make() -> None:
    with_snippets = {path.name for path in DOCUMENTS if python_snippets(path)}
    assert with_snippets == set(AFTERWARDS)
