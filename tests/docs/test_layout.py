"""The README's layout section is the import contracts' layers, and names every folder.

A newcomer finds where a change goes from that section alone, so it must not drift: the picture's
layers are, top to bottom, the layers contract of ``pyproject.toml``; every package folder of
``airflow_tfjob`` has its sentence; every file the section names exists.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from tests.docs.markdown import fences

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PACKAGE = ROOT / "airflow_tfjob"


def _section() -> str:
    text = README.read_text()
    start = text.index("## Layout\n")
    return text[start : text.index("\nBenchmarks (`bench/`", start)]


def _picture() -> list[set[str]]:
    """The layers of the picture, top down, each a set of module names (``backends/kubernetes``
    as ``backends``: the contract's layer is the package)."""
    (fence,) = [f for f in fences(README) if f.info == "layers"]
    layers = []
    for line in fence.text.splitlines():
        if line.strip() in ("", "↓"):
            continue
        names = re.split(r"\s{2,}", line.strip())[0]
        layers.append({n.strip().split("/")[0] for n in names.split("·")})
    return layers


def _contract() -> list[set[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (layers,) = [
        c["layers"] for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"
    ]
    return [
        {m.strip().removeprefix("airflow_tfjob.") for m in layer.split("|")} for layer in layers
    ]


def test_the_picture_is_the_layers_contract() -> None:
    picture, contract = _picture(), _contract()
    assert len(picture) == len(contract) >= 7
    assert picture == contract


def test_every_package_folder_has_its_sentence() -> None:
    section = _section()
    folders = sorted(
        str(p.parent.relative_to(PACKAGE))
        for p in PACKAGE.rglob("__init__.py")
        if p.parent != PACKAGE
    )
    assert "model" in folders and "rules" in folders and "backends/kubernetes" in folders
    missing = [f for f in folders if f"{f.split('/')[-1]}/`" not in section]
    assert missing == [], f"folders the layout section does not describe: {missing}"


def test_every_file_the_section_names_exists() -> None:
    section = _section()
    named = set(re.findall(r"`((?:airflow_tfjob/)?[a-z_/]+\.py)`", section))
    missing = [
        path for path in named if not (PACKAGE / path.removeprefix("airflow_tfjob/")).is_file()
    ]
    assert len(named) >= 10
    assert missing == [], f"files named in the layout section that do not exist: {missing}"
