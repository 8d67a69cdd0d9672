"""The floors in pyproject.toml are the versions `make test-lowest` runs on."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).parent.parent
# Extras that name runtime dependencies (test and dev name tools).
RUNTIME_EXTRAS = ("grpc", "rest", "postgres", "auth", "metrics", "otel")


def _floors() -> dict[str, Version]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in RUNTIME_EXTRAS:
        requirements += project["optional-dependencies"][extra]
    floors = {}
    for text in requirements:
        requirement = Requirement(text)
        if canonicalize_name(requirement.name) == "v1op-pb":
            continue
        (floor,) = [s.version for s in requirement.specifier if s.operator == ">="]
        floors[canonicalize_name(requirement.name)] = Version(floor)
    return floors


def _pins() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "requirements" / "lowest.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = Version(version)
    return pins


def test_every_runtime_floor_is_pinned_in_lowest_txt() -> None:
    floors, pins = _floors(), _pins()
    assert {name: pins.get(name) for name in floors} == floors
