"""The package build compiles the native core: without it the native tests would only skip
and the codec run in pure Python, so a broken build must fail here instead."""

from __future__ import annotations

from v1op_pb._codec import jsontext


def test_the_native_core_is_built() -> None:
    assert jsontext._native is not None, "v1op_pb._codec._native is missing: rebuild the package"
