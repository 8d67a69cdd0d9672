"""The Operation message: its field numbers are frozen and its annotations are what the
documented shape says."""

from __future__ import annotations

import pytest
from google.api import field_behavior_pb2
from google.protobuf import descriptor_pb2

from v1op_pb import Operation

# Frozen once landed: a change here breaks every binary Operation already stored or sent.
FROZEN_FIELDS = {
    "name": (1, "string"),
    "create_time": (2, ".google.protobuf.Timestamp"),
    "creator": (3, "string"),
    "update_time": (4, ".google.protobuf.Timestamp"),
    "updater": (5, "string"),
    "delete_time": (6, ".google.protobuf.Timestamp"),
    "deleter": (7, "string"),
    "metadata": (8, ".google.protobuf.Any"),
    "done": (9, "bool"),
    "error": (10, ".google.rpc.Status"),
    "response": (11, ".google.protobuf.Any"),
    "seen_by_creator_time": (12, ".google.protobuf.Timestamp"),
}

# The eight fields the documented client's to_dict() drops as readOnly.
DOCUMENTED_OUTPUT_ONLY = {
    "name",
    "create_time",
    "creator",
    "update_time",
    "updater",
    "delete_time",
    "deleter",
    "seen_by_creator_time",
}


def make_descriptor_proto() -> descriptor_pb2.DescriptorProto:
    proto = descriptor_pb2.DescriptorProto()
    Operation.DESCRIPTOR.CopyToProto(proto)
    return proto


def _type_of(field: descriptor_pb2.FieldDescriptorProto) -> str:
    if field.type_name:
        return field.type_name
    return descriptor_pb2.FieldDescriptorProto.Type.Name(field.type)[len("TYPE_") :].lower()


def test_field_numbers_and_types_are_frozen():
    proto = make_descriptor_proto()
    actual = {f.name: (f.number, _type_of(f)) for f in proto.field}
    assert actual == FROZEN_FIELDS


def test_the_full_name_is_versioned():
    assert Operation.DESCRIPTOR.full_name == "v1op.v1.Operation"


@pytest.mark.parametrize("name", sorted(FROZEN_FIELDS))
def test_output_only_annotation_matches_the_documented_read_only_fields(name):
    options = Operation.DESCRIPTOR.fields_by_name[name].GetOptions()
    behaviors = options.Extensions[field_behavior_pb2.field_behavior]
    assert (field_behavior_pb2.OUTPUT_ONLY in behaviors) == (name in DOCUMENTED_OUTPUT_ONLY)


def test_error_and_response_form_the_result_oneof():
    oneof = Operation.DESCRIPTOR.oneofs_by_name["result"]
    assert [f.name for f in oneof.fields] == ["error", "response"]
    op = Operation()
    op.error.code = 5
    op.response.type_url = "type.googleapis.com/google.protobuf.Empty"
    assert op.WhichOneof("result") == "response"
    assert not op.HasField("error")
