"""Descriptor questions whose spelling changed across the supported protobuf releases.

protobuf 7 removed ``FieldDescriptor.label``; the releases before ``is_repeated`` and
``is_required`` were added (5.x, early 6.x) have only ``label``. Both spellings are asked
here, once, so that the rest of the package reads the same on every supported release.
"""

from __future__ import annotations

from collections.abc import Callable

from google.protobuf.descriptor import FieldDescriptor

__all__ = ["is_repeated", "is_required"]

is_repeated: Callable[[FieldDescriptor], bool]
is_required: Callable[[FieldDescriptor], bool]

if hasattr(FieldDescriptor, "is_repeated"):

    def is_repeated(field: FieldDescriptor) -> bool:
        return field.is_repeated

    def is_required(field: FieldDescriptor) -> bool:
        return field.is_required

else:  # pragma: no cover - exercised by `make test-lowest`
    _REPEATED = FieldDescriptor.LABEL_REPEATED
    _REQUIRED = FieldDescriptor.LABEL_REQUIRED

    def is_repeated(field: FieldDescriptor) -> bool:
        # The typing stubs follow protobuf 7 and no longer list `label`.
        return bool(getattr(field, "label") == _REPEATED)  # noqa: B009

    def is_required(field: FieldDescriptor) -> bool:
        return bool(getattr(field, "label") == _REQUIRED)  # noqa: B009
