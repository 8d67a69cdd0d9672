"""The REST mapping written in ``google.api.http`` annotations, read from descriptors.

A ``Route`` is one HTTP binding of one RPC: method, path template, which request field the
body fills. ``PathTemplate`` implements the template syntax of google/api/http.proto:

    Template = "/" Segments [ Verb ] ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    Verb     = ":" LITERAL ;
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, MethodDescriptor, ServiceDescriptor

__all__ = ["PathTemplate", "Route", "TemplateError", "routes_of"]

_FIELD_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
_LITERAL = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=@%-]+\Z")


class TemplateError(ValueError):
    """A path template that does not follow the grammar of google/api/http.proto."""


class PathTemplate:
    """A compiled path template; ``match`` gives the variables' values by field path."""

    def __init__(self, template: str) -> None:
        self.template = template
        if not template.startswith("/"):
            raise TemplateError(f"path template {template!r} does not start with '/'")
        body, verb = _split_verb(template[1:])
        self.verb = verb
        self.variables: list[str] = []
        pattern = "/" + "/".join(self._segment(s) for s in _split_segments(body, template))
        if verb is not None:
            pattern += ":" + re.escape(verb)
        self._regex = re.compile(pattern + r"\Z")

    def match(self, path: str) -> dict[str, str] | None:
        """The variables of a percent-decoded path, or None when it does not match."""
        found = self._regex.match(path)
        if found is None:
            return None
        return {field: found.group(f"v{i}") for i, field in enumerate(self.variables)}

    def _segment(self, segment: str) -> str:
        if segment.startswith("{"):
            inner = segment[1:-1]
            field, _, sub = inner.partition("=")
            if not _FIELD_PATH.match(field):
                raise TemplateError(f"bad field path {field!r} in {self.template!r}")
            parts = sub.split("/") if sub else ["*"]
            if any(p.startswith("{") for p in parts):
                raise TemplateError(f"nested variable in {self.template!r}")
            group = f"v{len(self.variables)}"
            self.variables.append(field)
            return f"(?P<{group}>" + "/".join(self._plain(p) for p in parts) + ")"
        return self._plain(segment)

    def _plain(self, segment: str) -> str:
        if segment == "*":
            return "[^/]+"
        if segment == "**":
            return ".+"
        if not _LITERAL.match(segment):
            raise TemplateError(f"bad literal {segment!r} in {self.template!r}")
        return re.escape(segment)

    def __repr__(self) -> str:
        return f"PathTemplate({self.template!r})"


def _split_verb(text: str) -> tuple[str, str | None]:
    """Split off ``:verb``: a colon after the last '/' and outside braces."""
    depth = 0
    colon = None
    for i, char in enumerate(text):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "/" and depth == 0:
            colon = None
        elif char == ":" and depth == 0:
            colon = i
    if colon is None:
        return text, None
    return text[:colon], text[colon + 1 :]


def _split_segments(text: str, template: str) -> list[str]:
    """Top-level segments; a variable's own '/' stays inside it."""
    segments, current, depth = [], "", 0
    for char in text:
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth < 0:
                raise TemplateError(f"unbalanced braces in {template!r}")
        if char == "/" and depth == 0:
            segments.append(current)
            current = ""
        else:
            current += char
    if depth != 0:
        raise TemplateError(f"unbalanced braces in {template!r}")
    segments.append(current)
    if any(s == "" for s in segments):
        raise TemplateError(f"empty segment in {template!r}")
    return segments


@dataclass(frozen=True)
class Route:
    http_method: str
    template: PathTemplate
    body: str  # "" (no body), "*" (the whole request), or a request field name
    response_body: str  # "" (the whole response) or a response field name
    method: MethodDescriptor

    @property
    def grpc_path(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"


_PATTERNS = ("get", "put", "post", "delete", "patch")


def routes_of(*services: ServiceDescriptor) -> list[Route]:
    """Every HTTP binding (additional_bindings included) of the services' methods. A method
    without an annotation has none: it is not served."""
    routes = []
    for service in services:
        for method in service.methods:
            options = descriptor_pb2.MethodOptions.FromString(
                method.GetOptions().SerializeToString()
            )
            # googleapis-common-protos' stubs type the extension as a plain FieldDescriptor.
            if not options.HasExtension(annotations_pb2.http):  # type: ignore[arg-type]
                continue
            rule: http_pb2.HttpRule = options.Extensions[annotations_pb2.http]  # type: ignore[index]
            for binding in [rule, *rule.additional_bindings]:
                routes.append(_route(binding, method))
    return routes


def _route(rule: http_pb2.HttpRule, method: MethodDescriptor) -> Route:
    kind = rule.WhichOneof("pattern")
    if kind in _PATTERNS:
        http_method, template = kind.upper(), getattr(rule, kind)
    elif kind == "custom":
        http_method, template = rule.custom.kind.upper(), rule.custom.path
    else:
        raise TemplateError(f"{method.full_name} has an http rule without a pattern")
    compiled = PathTemplate(template)
    request = method.input_type
    if rule.body not in ("", "*") and rule.body not in request.fields_by_name:
        raise TemplateError(f"{method.full_name}: body {rule.body!r} is not a request field")
    for variable in compiled.variables:
        _check_field_path(request, variable, method)
    return Route(http_method, compiled, rule.body, rule.response_body, method)


def _check_field_path(message: Descriptor | None, path: str, method: MethodDescriptor) -> None:
    for i, name in enumerate(path.split(".")):
        assert message is not None  # checked below before going one level down
        field = message.fields_by_name.get(name)
        if field is None:
            raise TemplateError(f"{method.full_name}: path variable {path!r} names no field")
        if i < path.count("."):
            message = field.message_type
            if message is None:
                raise TemplateError(f"{method.full_name}: {path!r} goes through a scalar")
