"""README.md and docs/*.md as markdown-it-py reads them: tables under their headings, fenced
blocks, links and code spans. No parsing of our own beyond picking code spans out of a cell."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from tests.docs.snippets import DOCUMENTS, ROOT

_MD = MarkdownIt("commonmark").enable("table")
_CODE = re.compile(r"`([^`]+)`")


def code_spans(text: str) -> list[str]:
    """The code spans of a cell's markdown, in order (``a \\| b`` read as ``a | b``)."""
    return [span.replace("\\|", "|") for span in _CODE.findall(text)]


@dataclass
class Table:
    path: Path
    line: int
    heading: str
    """The nearest heading above the table."""
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    """Each cell's markdown source."""

    def column(self, name: str) -> int:
        return self.header.index(name)


@dataclass(frozen=True)
class Fence:
    path: Path
    line: int
    info: str
    text: str


@cache
def tokens(path: Path) -> list[Token]:
    return _MD.parse(path.read_text())


def tables(path: Path) -> list[Table]:
    found: list[Table] = []
    heading, table, row, in_head = "", None, None, False
    stream = tokens(path)
    for i, token in enumerate(stream):
        if token.type == "heading_open":
            heading = stream[i + 1].content
        elif token.type == "table_open":
            line = token.map[0] + 1 if token.map else 0
            table = Table(path, line, heading, [])
        elif token.type == "thead_open":
            in_head = True
        elif token.type == "thead_close":
            in_head = False
        elif token.type == "tr_open":
            row = []
        elif token.type == "inline" and row is not None and table is not None:
            row.append(token.content)
        elif token.type == "tr_close" and table is not None and row is not None:
            if in_head:
                table.header = row
            else:
                table.rows.append(row)
            row = None
        elif token.type == "table_close" and table is not None:
            found.append(table)
            table = None
    return found


def fences(path: Path) -> list[Fence]:
    return [
        Fence(path, (t.map[0] + 1) if t.map else 0, t.info.strip(), t.content)
        for t in tokens(path)
        if t.type == "fence"
    ]


def links(path: Path) -> list[tuple[int, str]]:
    """``(line, target)`` of every link and image."""
    found = []
    for block in tokens(path):
        line = (block.map[0] + 1) if block.map else 0
        for child in block.children or []:
            if child.type == "link_open":
                found.append((line, str(child.attrs["href"])))
            elif child.type == "image":
                found.append((line, str(child.attrs["src"])))
    return found


def all_code_spans(path: Path) -> list[tuple[int, str]]:
    """``(line, text)`` of every inline code span, tables included."""
    found = []
    for block in tokens(path):
        line = (block.map[0] + 1) if block.map else 0
        found.extend(
            (line, child.content) for child in block.children or [] if child.type == "code_inline"
        )
    return found


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for the document's headings: lower case, punctuation dropped, spaces
    to hyphens."""
    stream = tokens(path)
    return {
        re.sub(r"[^\w\- ]", "", stream[i + 1].content.lower()).replace(" ", "-")
        for i, token in enumerate(stream)
        if token.type == "heading_open"
    }


__all__ = [
    "DOCUMENTS",
    "ROOT",
    "Fence",
    "Table",
    "anchors",
    "code_spans",
    "fences",
    "links",
    "tables",
]
