"""The OpenAPI (Swagger 2.0) document of the REST API, made from the protos as
protoc-gen-openapiv2 makes it: every ``google.api.http`` route with its method, path and
query parameters, request body and response schemas in proto3 JSON types (int64 as string,
Timestamp as date-time, Any with ``@type``), descriptions from the proto comments, and
OUTPUT_ONLY fields read-only. operationIds are ``<Service>_<Method>``, as in the documented
API's own document.

The descriptions are the protos' comments (``comments``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson
from google.api import field_behavior_pb2
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import (
    Descriptor,
    EnumDescriptor,
    FieldDescriptor,
    MethodDescriptor,
    ServiceDescriptor,
)
from google.rpc import status_pb2

from .._codec.descriptors import is_repeated
from .comments import proto_comments
from .http_rules import Route, routes_of

__all__ = ["openapi", "openapi_document"]

_SCALARS: dict[int, dict[str, str]] = {
    FieldDescriptor.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldDescriptor.TYPE_INT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_UINT64: {"type": "string", "format": "uint64"},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_FIXED64: {"type": "string", "format": "uint64"},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT64: {"type": "string", "format": "int64"},
}
# The well-known types that proto3 JSON writes as something other than an object.
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.DoubleValue": {"type": "number", "format": "double"},
    "google.protobuf.FloatValue": {"type": "number", "format": "float"},
    "google.protobuf.Int64Value": {"type": "string", "format": "int64"},
    "google.protobuf.UInt64Value": {"type": "string", "format": "uint64"},
    "google.protobuf.Int32Value": {"type": "integer", "format": "int32"},
    "google.protobuf.UInt32Value": {"type": "integer", "format": "int64"},
    "google.protobuf.BoolValue": {"type": "boolean"},
    "google.protobuf.StringValue": {"type": "string"},
    "google.protobuf.BytesValue": {"type": "string", "format": "byte"},
}
_NOT_FROM_A_QUERY = {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"}
_VARIABLE = re.compile(r"\{([^}=]+)(?:=([^}]*))?\}")
_SUCCESS = "A successful response."
_STATUS: Descriptor = status_pb2.Status.DESCRIPTOR  # type: ignore[assignment]
_FAILURE = "An unexpected error response."


def openapi_document(services: Iterable[ServiceDescriptor]) -> bytes:
    """The document as JSON text (UTF-8, indented)."""
    return orjson.dumps(openapi(services), option=orjson.OPT_INDENT_2) + b"\n"


def openapi(services: Iterable[ServiceDescriptor]) -> dict[str, Any]:
    """The document of the REST routes of ``services``."""
    services = tuple(services)
    writer = _Writer(proto_comments())
    paths: dict[str, dict[str, Any]] = {}
    seen: dict[str, int] = {}
    for route in routes_of(*services):
        path, operation = writer.operation(route)
        base = f"{route.method.containing_service.name}_{route.method.name}"
        seen[base] = seen.get(base, 0) + 1
        operation["operationId"] = base if seen[base] == 1 else f"{base}{seen[base]}"
        paths.setdefault(path, {})[route.http_method.lower()] = operation
    first = services[0].file.name if services else ""
    document: dict[str, Any] = {
        "swagger": "2.0",
        "info": {"title": first, "version": "version not set"},
        "tags": [
            {"name": s.name, **_described(writer.comments.get(s.full_name))} for s in services
        ],
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "paths": paths,
        "definitions": dict(sorted(writer.definitions.items())),
        "securityDefinitions": {
            "Bearer": {
                "type": "apiKey",
                "name": "Authorization",
                "in": "header",
                "description": "A bearer token: 'Bearer <token>'.",
            }
        },
        "security": [{"Bearer": []}],
    }
    return document


def _described(comment: str | None) -> dict[str, str]:
    return {"description": comment} if comment else {}


class _Writer:
    """Operations and the schemas they refer to, gathered in ``definitions``."""

    def __init__(self, comments: dict[str, str]) -> None:
        self.comments = comments
        self.definitions: dict[str, dict[str, Any]] = {}

    def operation(self, route: Route) -> tuple[str, dict[str, Any]]:
        method = route.method
        request = method.input_type
        path, variables = _path_of(route.template.template)
        parameters: list[dict[str, Any]] = []
        for field_path, pattern in variables:
            field = _field_at(request, field_path)
            parameter = {
                "name": field_path,
                **_described(self._field_comment(field)),
                "in": "path",
                "required": True,
                **self._query_schema(field),
                "pattern": pattern,
            }
            parameters.append(parameter)
        bound = {p for p, _ in variables}
        if route.body == "*":
            parameters.append(
                {
                    "name": "body",
                    "in": "body",
                    "required": True,
                    "schema": self._body_schema(request, bound, ""),
                }
            )
        elif route.body:
            field = request.fields_by_name[route.body]
            assert field.message_type is not None  # http_rules checks the body is a message
            parameters.append(
                {
                    "name": route.body,
                    **_described(self._field_comment(field)),
                    "in": "body",
                    "required": True,
                    "schema": self._body_schema(field.message_type, bound, route.body + "."),
                }
            )
        if route.body != "*":
            skip = route.body
            parameters += self._query_parameters(request, "", bound, skip)
        response = method.output_type
        if route.response_body:
            schema = self._schema(response.fields_by_name[route.response_body])
        else:
            schema = self._ref(response)
        operation: dict[str, Any] = {
            **self._summary(method),
            "responses": {
                "200": {"description": _SUCCESS, "schema": schema},
                "default": {
                    "description": _FAILURE,
                    "schema": self._ref(_STATUS),
                },
            },
            "parameters": parameters,
            "tags": [method.containing_service.name],
        }
        return path, operation

    def _summary(self, method: MethodDescriptor) -> dict[str, str]:
        comment = self.comments.get(method.full_name)
        if not comment:
            return {}
        summary, _, rest = comment.partition("\n\n")
        return {"summary": summary, **({"description": rest} if rest else {})}

    def _field_comment(self, field: FieldDescriptor) -> str | None:
        return self.comments.get(field.full_name)

    def _body_schema(self, message: Descriptor, bound: set[str], prefix: str) -> dict[str, Any]:
        """The message, less the fields the path sets (an inline schema, as
        protoc-gen-openapiv2 writes it), else a reference."""
        taken = {
            p[len(prefix) :] for p in bound if p.startswith(prefix) and "." not in p[len(prefix) :]
        }
        if not taken:
            return self._ref(message)
        schema = self._message_schema(message, skip=taken)
        schema.pop("description", None)
        return schema

    def _query_parameters(
        self, message: Descriptor, prefix: str, bound: set[str], skip: str, depth: int = 0
    ) -> list[dict[str, Any]]:
        parameters = []
        for field in message.fields:
            path = prefix + field.name
            if path in bound or (not prefix and field.name == skip) or is_map(field):
                continue
            name = _json_path(prefix, field)
            target = field.message_type
            if target is not None and target.full_name not in _WELL_KNOWN:
                if depth < 8 and not is_repeated(field):
                    parameters += self._query_parameters(target, path + ".", bound, skip, depth + 1)
                continue
            if target is not None and target.full_name in _NOT_FROM_A_QUERY:
                continue
            parameter: dict[str, Any] = {
                "name": name,
                **_described(self._field_comment(field)),
                "in": "query",
                "required": False,
            }
            item = self._query_schema(field)
            if is_repeated(field):
                parameter.update({"type": "array", "items": item, "collectionFormat": "multi"})
            else:
                parameter.update(item)
            parameters.append(parameter)
        return parameters

    def _query_schema(self, field: FieldDescriptor) -> dict[str, Any]:
        """A path or query parameter's type: scalars, enums by name, well-known types."""
        if field.enum_type is not None:
            names = [value.name for value in field.enum_type.values]
            return {"type": "string", "enum": names, "default": names[0]}
        if field.message_type is not None:
            return dict(_WELL_KNOWN.get(field.message_type.full_name, {"type": "string"}))
        return dict(_SCALARS[field.type])

    def _schema(self, field: FieldDescriptor) -> dict[str, Any]:
        """A field's schema in a message schema."""
        if is_map(field):
            assert field.message_type is not None
            value = field.message_type.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self._single(value)}
        single = self._single(field)
        if is_repeated(field):
            return {"type": "array", "items": single}
        return single

    def _single(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.enum_type is not None:
            return self._ref(field.enum_type)
        if field.message_type is not None:
            known = _WELL_KNOWN.get(field.message_type.full_name)
            if known is not None:
                return dict(known)
            return self._ref(field.message_type)
        return dict(_SCALARS[field.type])

    def _ref(self, element: Descriptor | EnumDescriptor) -> dict[str, str]:
        name = _definition_name(element.full_name, element.file.package)
        if name not in self.definitions:
            self.definitions[name] = {}  # taken: a message that refers to itself stops here
            if isinstance(element, EnumDescriptor):
                self.definitions[name] = self._enum_schema(element)
            else:
                self.definitions[name] = self._message_schema(element)
        return {"$ref": f"#/definitions/{name}"}

    def _enum_schema(self, enum: EnumDescriptor) -> dict[str, Any]:
        names = [value.name for value in enum.values]
        lines = [self.comments.get(enum.full_name, "")]
        described = [
            f" - {value.name}: {self.comments[f'{enum.full_name}.{value.name}']}"
            for value in enum.values
            if f"{enum.full_name}.{value.name}" in self.comments
        ]
        if described:
            lines.append("\n".join(described))
        description = "\n\n".join(line for line in lines if line)
        return {
            "type": "string",
            "enum": names,
            "default": names[0],
            **_described(description),
        }

    def _message_schema(
        self, message: Descriptor, skip: frozenset[str] | set[str] = frozenset()
    ) -> dict[str, Any]:
        if message.full_name == "google.protobuf.Any":
            return {
                "type": "object",
                **_described(self.comments.get(message.full_name)),
                "properties": {
                    "@type": {
                        "type": "string",
                        **_described(self.comments.get("google.protobuf.Any.type_url")),
                    }
                },
                "additionalProperties": {},
            }
        properties: dict[str, Any] = {}
        required = []
        for field in message.fields:
            if field.name in skip:
                continue
            schema = self._schema(field)
            comment = self._field_comment(field)
            if comment:
                schema["description"] = comment
            behaviors = _behaviors(field)
            if field_behavior_pb2.OUTPUT_ONLY in behaviors:
                schema["readOnly"] = True
            if field_behavior_pb2.REQUIRED in behaviors:
                required.append(field.json_name)
            properties[field.json_name] = schema
        schema = {"type": "object", **_described(self.comments.get(message.full_name))}
        schema["properties"] = properties
        if required:
            schema["required"] = required
        return schema


def _definition_name(full_name: str, package: str) -> str:
    """protoc-gen-openapiv2's names: the package's last part, then the message's (nested
    ones joined): ``v1Operation``, ``rpcStatus``, ``protobufAny``."""
    local = full_name[len(package) + 1 :] if package else full_name
    return package.rpartition(".")[2] + local.replace(".", "")


def _path_of(template: str) -> tuple[str, list[tuple[str, str]]]:
    """The OpenAPI path of a template and its variables with their patterns:
    ``/v1/{name=operations/*}`` is ``/v1/{name}``, pattern ``operations/[^/]+``."""
    variables = []

    def replace(match: re.Match[str]) -> str:
        field, segments = match.group(1), match.group(2) or "*"
        pattern = "/".join(
            "[^/]+" if s == "*" else ".+" if s == "**" else re.escape(s)
            for s in segments.split("/")
        )
        variables.append((field, pattern))
        return "{" + field + "}"

    return _VARIABLE.sub(replace, template), variables


def _field_at(message: Descriptor, path: str) -> FieldDescriptor:
    current: Descriptor | None = message
    field = None
    for name in path.split("."):
        assert current is not None  # http_rules checked every step is a message field
        field = current.fields_by_name[name]
        current = field.message_type
    assert field is not None
    return field


def _json_path(prefix: str, field: FieldDescriptor) -> str:
    """A query parameter's name: the JSON names of the fields on its path."""
    return ".".join([*_json_names(prefix), field.json_name]) if prefix else field.json_name


def _json_names(prefix: str) -> list[str]:
    # Request paths here are snake_case field names; their JSON names are lowerCamelCase.
    return [_camel(part) for part in prefix.rstrip(".").split(".")]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def is_map(field: FieldDescriptor) -> bool:
    message = field.message_type
    return message is not None and message.GetOptions().map_entry and is_repeated(field)


def _behaviors(field: FieldDescriptor) -> set[int]:
    options = descriptor_pb2.FieldOptions.FromString(field.GetOptions().SerializeToString())
    # googleapis-common-protos' stubs type the extension as a plain FieldDescriptor.
    return set(options.Extensions[field_behavior_pb2.field_behavior])  # type: ignore[index]
