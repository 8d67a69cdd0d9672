"""The protos' comments, by the full name of what they describe, for the OpenAPI document.

They come from ``v1op/v1/source_info.binpb``, which ``make gen`` writes beside the generated
modules (protoc's descriptor set with source info): the runtime's descriptors have no
comments.
"""

from __future__ import annotations

import functools
import importlib.resources
from typing import Any

from google.protobuf import descriptor_pb2

__all__ = ["proto_comments"]


@functools.cache
def proto_comments() -> dict[str, str]:
    """Leading comments by full name (fields as ``Message.field``, enum values as
    ``Enum.VALUE``), from the protos' source info."""
    data = importlib.resources.files("v1op.v1").joinpath("source_info.binpb").read_bytes()
    comments: dict[str, str] = {}
    for file in descriptor_pb2.FileDescriptorSet.FromString(data).file:
        _FileComments(file, comments).collect()
    return comments


class _FileComments:
    """The leading comments of one file's elements, by the path of each in the file."""

    def __init__(self, file: descriptor_pb2.FileDescriptorProto, into: dict[str, str]) -> None:
        self._file = file
        self._into = into
        self._located = {
            tuple(location.path): _clean(location.leading_comments)
            for location in file.source_code_info.location
            if location.leading_comments
        }

    def collect(self) -> None:
        file = self._file
        prefix = f"{file.package}." if file.package else ""
        self._messages(file.message_type, (4,), prefix)
        self._enums(file.enum_type, (5,), prefix)
        for i, service in enumerate(file.service):
            name = prefix + service.name
            self._put(name, (6, i))
            for j, method in enumerate(service.method):
                self._put(f"{name}.{method.name}", (6, i, 2, j))

    def _messages(self, types: Any, path: tuple[int, ...], scope: str) -> None:
        for i, message in enumerate(types):
            here, name = (*path, i), scope + message.name
            self._put(name, here)
            for j, field in enumerate(message.field):
                self._put(f"{name}.{field.name}", (*here, 2, j))
            self._messages(message.nested_type, (*here, 3), name + ".")
            self._enums(message.enum_type, (*here, 4), name + ".")

    def _enums(self, types: Any, path: tuple[int, ...], scope: str) -> None:
        for i, enum in enumerate(types):
            here, name = (*path, i), scope + enum.name
            self._put(name, here)
            for j, value in enumerate(enum.value):
                self._put(f"{name}.{value.name}", (*here, 2, j))

    def _put(self, name: str, path: tuple[int, ...]) -> None:
        comment = self._located.get(path)
        if comment:
            self._into[name] = comment


def _clean(comment: str) -> str:
    """A comment's text: each line without the one space after ``//``, no trailing
    newline."""
    lines = [line[1:] if line.startswith(" ") else line for line in comment.split("\n")]
    return "\n".join(lines).strip()
