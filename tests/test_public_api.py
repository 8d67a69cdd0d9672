"""The public surface: what __all__ lists, and the typing marker."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import v1op_pb


def _isort_style(name: str) -> tuple[int, str]:
    # Constants, then classes, then functions: the order ruff's RUF022 keeps __all__ in.
    kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return kind, name


def test_all_is_sorted_and_complete():
    assert v1op_pb.__all__ == sorted(v1op_pb.__all__, key=_isort_style)
    for name in v1op_pb.__all__:
        assert hasattr(v1op_pb, name), name
    # Subpackages (server, client, ...) appear as attributes once imported; they are parts,
    # not names of the binding's API.
    public = {
        n
        for n, v in vars(v1op_pb).items()
        if not n.startswith("_") and not isinstance(v, ModuleType)
    }
    assert public == set(v1op_pb.__all__)


def test_the_package_is_typed():
    assert (Path(v1op_pb.__file__).parent / "py.typed").is_file()
