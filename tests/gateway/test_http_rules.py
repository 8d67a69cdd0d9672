"""Path templates and routes read from google.api.http annotations."""

from __future__ import annotations

import re

import pytest
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, descriptor_pool
from v1op.v1 import operation_service_pb2 as pb

from v1op_pb.gateway.http_rules import PathTemplate, TemplateError, routes_of

# The documented REST mapping (operation-service.md), as (method, template, body, RPC).
DOCUMENTED = {
    ("GET", "/v1/{name=operations/*}", "", "GetOperation"),
    ("GET", "/v1/operations:batchGet", "", "BatchGetOperations"),
    ("GET", "/v1/operations", "", "ListOperations"),
    ("GET", "/v1/operations:unseen", "", "ListUnseenOperations"),
    ("PATCH", "/v1/{operation.name=operations/*}", "operation", "UpdateOperation"),
    ("PATCH", "/v1/{operation.name=operations/*}:finalize", "operation", "FinalizeOperation"),
    ("POST", "/v1/{name=operations/*}:abort", "", "AbortOperation"),
    ("POST", "/v1/{name=operations/*}:markSeenByCreator", "", "MarkOperationSeenByCreator"),
    ("POST", "/v1/operations:batchMarkSeenByCreator", "", "BatchMarkOperationSeenByCreator"),
    (
        "GET",
        "/v1/{parent=operations/*}/progresses:getByParent",
        "",
        "GetOperationProgressByParent",
    ),
}


def make_routes():
    return routes_of(*pb.DESCRIPTOR.services_by_name.values())


def test_the_proto_annotations_are_exactly_the_documented_mapping():
    routes = {(r.http_method, r.template.template, r.body, r.method.name) for r in make_routes()}
    assert routes == DOCUMENTED


def test_a_method_without_an_annotation_has_no_route():
    assert "CreateOperation" not in {r.method.name for r in make_routes()}


@pytest.mark.parametrize(
    ("template", "path", "variables"),
    [
        ("/v1/{name=operations/*}", "/v1/operations/abc", {"name": "operations/abc"}),
        ("/v1/{name=operations/*}", "/v1/operations/a/b", None),
        ("/v1/{name=operations/*}", "/v1/jobs/abc", None),
        ("/v1/{name}", "/v1/x", {"name": "x"}),
        ("/v1/{name}", "/v1/x/y", None),
        ("/v1/{name=**}", "/v1/x/y/z", {"name": "x/y/z"}),
        ("/v1/{a.b.c=p/*}:go", "/v1/p/1:go", {"a.b.c": "p/1"}),
        ("/v1/{a.b.c=p/*}:go", "/v1/p/1", None),
        ("/v1/operations:batchGet", "/v1/operations:batchGet", {}),
        ("/v1/operations:batchGet", "/v1/operations", None),
        (
            "/v1/{parent=operations/*}/progresses:getByParent",
            "/v1/operations/x/progresses:getByParent",
            {"parent": "operations/x"},
        ),
        ("/v1/{x=*}/{y=*}", "/v1/a/b", {"x": "a", "y": "b"}),
        ("/v1/*/items", "/v1/anything/items", {}),
    ],
)
def test_path_templates_match_and_capture(template, path, variables):
    assert PathTemplate(template).match(path) == variables


def test_literals_are_not_regular_expressions():
    assert PathTemplate("/v1/a.b").match("/v1/aXb") is None


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("v1/x", "does not start with '/'"),
        ("/v1/{name", "unbalanced braces"),
        ("/v1/name}", "unbalanced braces"),
        ("/v1//x", "empty segment"),
        ("/v1/{1name}", "bad field path '1name'"),
        ("/v1/{a={b}}", "nested variable"),
        ("/v1/a b", "bad literal 'a b'"),
    ],
)
def test_malformed_templates_are_refused(template, message):
    with pytest.raises(TemplateError, match=re.escape(message)):
        PathTemplate(template)


def make_service(rule: http_pb2.HttpRule, *, file_name: str = "rules_test.proto"):
    """A one-method service with the given HTTP rule, in a pool of its own."""
    pool = descriptor_pool.DescriptorPool()
    for dependency in (descriptor_pb2, http_pb2, annotations_pb2):
        proto = descriptor_pb2.FileDescriptorProto()
        dependency.DESCRIPTOR.CopyToProto(proto)
        pool.Add(proto)
    file = descriptor_pb2.FileDescriptorProto(
        name=file_name,
        package="rulestest",
        syntax="proto3",
        dependency=["google/api/annotations.proto"],
    )
    request = file.message_type.add(name="Req")
    request.field.add(name="name", number=1, type=9, label=1, json_name="name")
    request.field.add(name="thing", number=2, type=11, label=1, type_name=".rulestest.Req")
    file.message_type.add(name="Res")
    method = file.service.add(name="Svc").method.add(
        name="Do", input_type=".rulestest.Req", output_type=".rulestest.Res"
    )
    method.options.Extensions[annotations_pb2.http].CopyFrom(rule)
    pool.Add(file)
    return pool.FindServiceByName("rulestest.Svc")


def test_custom_patterns_and_additional_bindings_are_routes():
    rule = http_pb2.HttpRule(custom={"kind": "HEAD", "path": "/v1/{name=things/*}"})
    rule.additional_bindings.add(post="/v1/{name=things/*}:do", body="*")
    routes = routes_of(make_service(rule))
    assert [(r.http_method, r.template.template, r.body) for r in routes] == [
        ("HEAD", "/v1/{name=things/*}", ""),
        ("POST", "/v1/{name=things/*}:do", "*"),
    ]
    assert routes[0].grpc_path == "/rulestest.Svc/Do"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (http_pb2.HttpRule(get="/v1/{nope=things/*}"), "path variable 'nope' names no field"),
        (http_pb2.HttpRule(get="/v1/{name.x=things/*}"), "'name.x' goes through a scalar"),
        (http_pb2.HttpRule(post="/v1/things", body="nope"), "body 'nope' is not a request field"),
    ],
)
def test_rules_that_name_missing_fields_are_refused_at_start_up(rule, message):
    with pytest.raises(TemplateError, match=re.escape(message)):
        routes_of(make_service(rule))
