"""TypeRegistry: what resolves out of the box, registering, and FileDescriptorSets."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import google.rpc
import grpc_tools
import pytest
from google.protobuf import (
    any_pb2,
    descriptor_pb2,
    json_format,
    struct_pb2,
    timestamp_pb2,
    wrappers_pb2,
)
from google.rpc import error_details_pb2
from grpc_tools import protoc
from v1op.example.v1 import evaluation_pb2

from v1op_pb import (
    ConversionError,
    Operation,
    TypeRegistry,
    UnknownTypeError,
    default_registry,
    from_json,
    pack,
    to_json,
    unpack,
)

REPO = Path(__file__).resolve().parent.parent
PROTO_ROOT = Path(__file__).resolve().parent / "data"
WKT_INCLUDE = Path(grpc_tools.__file__).parent / "_proto"
GOOGLEAPIS_INCLUDE = Path(google.rpc.__path__[0]).parent.parent

WELL_KNOWN_TYPES = [
    "google.protobuf.Any",
    "google.protobuf.Api",
    "google.protobuf.Duration",
    "google.protobuf.Empty",
    "google.protobuf.FieldMask",
    "google.protobuf.SourceContext",
    "google.protobuf.Struct",
    "google.protobuf.Value",
    "google.protobuf.ListValue",
    "google.protobuf.Timestamp",
    "google.protobuf.Type",
    "google.protobuf.Field",
    "google.protobuf.Enum",
    "google.protobuf.EnumValue",
    "google.protobuf.Option",
    "google.protobuf.Method",
    "google.protobuf.Mixin",
    "google.protobuf.DoubleValue",
    "google.protobuf.FloatValue",
    "google.protobuf.Int64Value",
    "google.protobuf.UInt64Value",
    "google.protobuf.Int32Value",
    "google.protobuf.UInt32Value",
    "google.protobuf.BoolValue",
    "google.protobuf.StringValue",
    "google.protobuf.BytesValue",
]
ERROR_DETAIL_TYPES = [
    "google.rpc.ErrorInfo",
    "google.rpc.RetryInfo",
    "google.rpc.DebugInfo",
    "google.rpc.QuotaFailure",
    "google.rpc.QuotaFailure.Violation",
    "google.rpc.PreconditionFailure",
    "google.rpc.PreconditionFailure.Violation",
    "google.rpc.BadRequest",
    "google.rpc.BadRequest.FieldViolation",
    "google.rpc.RequestInfo",
    "google.rpc.ResourceInfo",
    "google.rpc.Help",
    "google.rpc.Help.Link",
    "google.rpc.LocalizedMessage",
]
WIDGET_NAMES = ["regtest.v1.Widget", "regtest.v1.Widget.Part"]


def type_url(full_name: str) -> str:
    return f"type.googleapis.com/{full_name}"


def compile_descriptor_set(out: Path, proto: str, *, include_imports: bool) -> Path:
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{WKT_INCLUDE}",
        f"-I{GOOGLEAPIS_INCLUDE}",
        f"--descriptor_set_out={out}",
    ]
    if include_imports:
        args.append("--include_imports")
    assert protoc.main([*args, proto]) == 0, f"protoc failed on {proto}"
    return out


@pytest.fixture(scope="module")
def widget_sets(tmp_path_factory) -> dict[bool, Path]:
    """The widget descriptor set, keyed by whether it was built with --include_imports."""
    out = tmp_path_factory.mktemp("descriptor-sets")
    return {
        include: compile_descriptor_set(
            out / f"widget-{include}.pb", "regtest/v1/widget.proto", include_imports=include
        )
        for include in (False, True)
    }


@pytest.fixture(scope="module")
def widget_set(widget_sets) -> Path:
    return widget_sets[False]


def make_widget_operation(registry: TypeRegistry) -> Operation:
    widget_class = registry.resolve(type_url("regtest.v1.Widget"))
    widget = widget_class(
        name="w-1", color=1, part=widget_class.Part(label="left"), counts={"a": 1, "b": 2}
    )
    widget.made_at.FromJsonString("2026-11-20T09:15:02.123456789Z")
    return Operation(name="operations/w", done=True, response=pack(widget))


# --- out of the box ----------------------------------------------------------------------------

FRESH_PROCESS_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import v1op_pb

    names = json.loads(sys.argv[1])
    resolved = {}
    for name in names:
        try:
            cls = v1op_pb.default_registry.resolve("type.googleapis.com/" + name)
            resolved[name] = cls.DESCRIPTOR.full_name
        except Exception as e:
            resolved[name] = repr(e)
    text = json.dumps({"metadata": {
        "@type": "type.googleapis.com/google.protobuf.Int64Value", "value": "-42"}})
    op = v1op_pb.from_json(text)
    print(json.dumps({
        "resolved": resolved,
        "int64": v1op_pb.unpack(op.metadata).value,
        "json": json.loads(v1op_pb.to_json(op)),
    }))
    """
)


def test_fresh_process_resolves_every_well_known_type_and_error_detail():
    # A fresh interpreter, so that nothing but v1op_pb itself can have imported the
    # generated modules that put these types into the default pool.
    names = WELL_KNOWN_TYPES + ERROR_DETAIL_TYPES
    run = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS_SCRIPT, json.dumps(names)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["resolved"] == {name: name for name in names}
    assert result["int64"] == -42
    assert result["json"] == {
        "metadata": {"@type": type_url("google.protobuf.Int64Value"), "value": "-42"}
    }


def test_json_format_alone_cannot_resolve_an_unimported_wrapper():
    # The contrast that makes the fresh-process test meaningful: json_format only knows
    # what some module happened to import.
    script = textwrap.dedent(
        """
        from google.longrunning import operations_proto_pb2
        from google.protobuf import json_format
        text = '{"metadata": {"@type": "type.googleapis.com/google.protobuf.Int64Value",'
        text += ' "value": "-42"}}'
        try:
            json_format.Parse(text, operations_proto_pb2.Operation())
        except json_format.ParseError:
            print("unresolved")
        else:
            print("resolved")
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "unresolved"


def test_the_shipped_example_types_are_known_without_an_import():
    # A fresh interpreter that never imports v1op.example: the shipped example converts as
    # it is, and a name in the shipped package that nothing defines stays unknown.
    script = textwrap.dedent(
        """
        import sys
        import v1op_pb
        op = v1op_pb.from_json(open("examples/operation.json").read())
        print(type(v1op_pb.unpack(op.response)).__name__)
        print("v1op.example.v1.evaluation_pb2" in sys.modules)
        try:
            v1op_pb.default_registry.resolve("type.googleapis.com/v1op.example.v1.Nothing")
        except v1op_pb.UnknownTypeError:
            print("unknown")
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["EvaluationResult", "True", "unknown"]
    # Not for a registry that leaves the default pool out.
    with pytest.raises(UnknownTypeError):
        TypeRegistry(use_default_pool=False).resolve(type_url("v1op.example.v1.EvaluationResult"))


@pytest.mark.parametrize(
    "name",
    [
        "v1op." + "." * 400 + "X",  # empty parts (found by make fuzz-native)
        "v1op.?example.v1" + "." * 300 + "X",
        "v1op." + "a." * 600 + "X",  # parts that could be packages, too many to recurse
        "v1op.example.v1." + "Nested." * 600 + "X",
    ],
    ids=["empty parts", "not identifiers", "many parts", "deep nesting in a real package"],
)
def test_a_made_up_name_in_the_shipped_tree_is_unknown_not_a_crash(name):
    # Type URLs come from the wire: whatever their name, the answer is UnknownTypeError
    # (importlib would recurse once per dotted part), and the JSON codec says where.
    with pytest.raises(UnknownTypeError):
        default_registry.resolve(type_url(name))
    text = json.dumps({"metadata": {"@type": type_url(name)}})
    with pytest.raises(ConversionError) as caught:
        from_json(text)
    assert caught.value.path == '$.metadata["@type"]'


@pytest.mark.parametrize("name", WELL_KNOWN_TYPES + ERROR_DETAIL_TYPES)
def test_default_registry_resolves(name):
    assert default_registry.resolve(type_url(name)).DESCRIPTOR.full_name == name


def test_default_registry_gives_the_generated_classes():
    # isinstance checks on unpacked details only work if these are the very same classes.
    assert default_registry.resolve(type_url("google.rpc.ErrorInfo")) is (
        error_details_pb2.ErrorInfo
    )
    assert default_registry.resolve(type_url("google.protobuf.Int64Value")) is (
        wrappers_pb2.Int64Value
    )


def test_resolve_uses_only_the_last_segment_of_the_type_url():
    registry = TypeRegistry()
    for url in (
        "example.com/types/google.rpc.ErrorInfo",
        "google.rpc.ErrorInfo",
        "https://example.com/a/b/google.rpc.ErrorInfo",
    ):
        assert registry.resolve(url) is error_details_pb2.ErrorInfo


def test_unknown_type_url_names_the_url_and_how_to_register():
    url = "type.googleapis.com/nowhere.v1.Missing"
    with pytest.raises(UnknownTypeError, match=re.escape(repr(url))) as caught:
        TypeRegistry().resolve(url)
    message = str(caught.value)
    assert "TypeRegistry.register" in message
    assert "add_descriptor_set" in message
    assert isinstance(caught.value, LookupError)


def test_contains():
    registry = TypeRegistry()
    assert type_url("google.rpc.ErrorInfo") in registry
    assert type_url("nowhere.v1.Missing") not in registry


# --- register ----------------------------------------------------------------------------------


def test_register_message_class():
    registry = TypeRegistry(use_default_pool=False)
    assert type_url("google.rpc.ErrorInfo") not in registry
    assert registry.register(error_details_pb2.ErrorInfo) is registry
    assert registry.resolve(type_url("google.rpc.ErrorInfo")) is error_details_pb2.ErrorInfo
    # A class registers itself only, not its siblings in the same file.
    assert type_url("google.rpc.RetryInfo") not in registry


def test_register_generated_module_registers_nested_types_but_not_map_entries():
    registry = TypeRegistry(use_default_pool=False).register(error_details_pb2)
    for name in ERROR_DETAIL_TYPES:
        assert registry.resolve(type_url(name)).DESCRIPTOR.full_name == name
    assert registry.resolve(type_url("google.rpc.BadRequest.FieldViolation")) is (
        error_details_pb2.BadRequest.FieldViolation
    )
    for map_entry in (
        "google.rpc.ErrorInfo.MetadataEntry",
        "google.rpc.QuotaFailure.Violation.QuotaDimensionsEntry",
    ):
        assert type_url(map_entry) not in registry


def test_register_module_by_name():
    registry = TypeRegistry(use_default_pool=False)
    registry.register_module("v1op.example.v1.evaluation_pb2")
    assert registry.resolve(type_url("v1op.example.v1.EvaluationResult")) is (
        evaluation_pb2.EvaluationResult
    )
    assert type_url("v1op.example.v1.EvaluationResult.ScoresEntry") not in registry


def test_register_module_by_name_that_does_not_exist():
    with pytest.raises(ImportError):
        TypeRegistry().register_module("nowhere_pb2")


def test_register_descriptor_registers_it_and_its_nested_types():
    registry = TypeRegistry(use_default_pool=False)
    registry.register(error_details_pb2.BadRequest.DESCRIPTOR)
    bad_request = registry.resolve(type_url("google.rpc.BadRequest"))
    assert bad_request.DESCRIPTOR is error_details_pb2.BadRequest.DESCRIPTOR
    violation = registry.resolve(type_url("google.rpc.BadRequest.FieldViolation"))
    assert violation.DESCRIPTOR is error_details_pb2.BadRequest.FieldViolation.DESCRIPTOR
    assert type_url("google.rpc.ErrorInfo") not in registry


def test_register_several_items_at_once():
    registry = TypeRegistry(use_default_pool=False).register(
        error_details_pb2.ErrorInfo, evaluation_pb2, wrappers_pb2.Int64Value.DESCRIPTOR
    )
    for name in (
        "google.rpc.ErrorInfo",
        "v1op.example.v1.EvaluationProgress",
        "google.protobuf.Int64Value",
    ):
        assert type_url(name) in registry


@pytest.mark.parametrize(
    "item",
    [
        42,
        "google.rpc.ErrorInfo",
        None,
        error_details_pb2.ErrorInfo(),  # an instance, not the class
        json,  # a module, but not a generated one
        error_details_pb2.DESCRIPTOR,  # a FileDescriptor
        evaluation_pb2.EvaluationResult.Verdict.DESCRIPTOR,  # an EnumDescriptor
        int,
    ],
    # Stable ids (no object addresses): pytest-xdist's workers must collect the same names.
    ids=lambda item: type(item).__name__ if "object at 0x" in repr(item) else repr(item),
)
def test_register_bad_item_is_a_type_error(item):
    with pytest.raises(TypeError):
        TypeRegistry().register(item)


def test_register_with_a_bad_item_registers_nothing():
    # One bad item must not leave the registry half-updated.
    registry = TypeRegistry(use_default_pool=False)
    with pytest.raises(TypeError):
        registry.register(error_details_pb2.ErrorInfo, 42)
    assert type_url("google.rpc.ErrorInfo") not in registry


def test_use_default_pool_false_knows_only_what_is_registered():
    registry = TypeRegistry(use_default_pool=False)
    for name in ("google.rpc.ErrorInfo", "google.protobuf.Duration", "v1op.v1.Operation"):
        with pytest.raises(UnknownTypeError):
            registry.resolve(type_url(name))


# --- descriptor sets ---------------------------------------------------------------------------


@pytest.mark.parametrize("as_", ["str", "path", "bytes", "message"])
def test_add_descriptor_set_returns_the_defined_names(widget_set, as_):
    data = widget_set.read_bytes()
    source = {
        "str": str(widget_set),
        "path": widget_set,
        "bytes": data,
        "message": descriptor_pb2.FileDescriptorSet.FromString(data),
    }[as_]
    # Map entries are an implementation detail of map fields, not types of their own.
    assert sorted(TypeRegistry().add_descriptor_set(source)) == WIDGET_NAMES


def test_add_descriptor_set_with_imports_also_returns_the_imported_names(widget_sets):
    names = TypeRegistry().add_descriptor_set(widget_sets[True])
    assert sorted(names) == sorted([*WIDGET_NAMES, "google.protobuf.Timestamp"])


@pytest.mark.parametrize("include_imports", [False, True])
def test_descriptor_set_types_resolve(widget_sets, include_imports):
    registry = TypeRegistry(use_default_pool=False)
    assert type_url("regtest.v1.Widget") not in registry
    registry.add_descriptor_set(widget_sets[include_imports])
    widget = registry.resolve(type_url("regtest.v1.Widget"))
    assert widget.DESCRIPTOR.full_name == "regtest.v1.Widget"
    assert registry.resolve(type_url("regtest.v1.Widget.Part")) is widget.Part
    enum = widget.DESCRIPTOR.enum_types_by_name["Color"]
    assert [v.name for v in enum.values] == ["COLOR_UNSPECIFIED", "COLOR_RED"]


def test_descriptor_set_types_are_not_in_the_default_registry(widget_set):
    TypeRegistry().add_descriptor_set(widget_set)
    assert type_url("regtest.v1.Widget") not in default_registry


@pytest.mark.parametrize("include_imports", [False, True])
def test_json_round_trip_of_an_operation_with_a_descriptor_set_response(
    widget_sets, include_imports
):
    registry = TypeRegistry()
    registry.add_descriptor_set(widget_sets[include_imports])
    op = make_widget_operation(registry)
    text = to_json(op, registry=registry)
    assert json.loads(text)["response"] == {
        "@type": type_url("regtest.v1.Widget"),
        "name": "w-1",
        "color": "COLOR_RED",
        "part": {"label": "left"},
        "madeAt": "2026-11-20T09:15:02.123456789Z",
        "counts": {"a": 1, "b": 2},
    }
    assert from_json(text, registry=registry) == op


def test_descriptor_set_response_needs_the_registry(widget_set):
    registry = TypeRegistry()
    registry.add_descriptor_set(widget_set)
    op = make_widget_operation(registry)
    with pytest.raises(ConversionError, match=re.escape("regtest.v1.Widget")):
        to_json(op)
    with pytest.raises(ConversionError, match=re.escape("regtest.v1.Widget")):
        from_json(to_json(op, registry=registry))


@pytest.mark.parametrize(
    "garbage", [b"\xff\xff\xff\xff", b"not a descriptor set", b"\x0a\x03abc"], ids=repr
)
def test_garbage_descriptor_set_is_a_value_error(garbage):
    with pytest.raises(ValueError, match=re.escape("FileDescriptorSet")):
        TypeRegistry().add_descriptor_set(garbage)


def test_descriptor_set_that_parses_but_does_not_build_is_a_value_error():
    # Well-formed bytes that describe an unresolvable field type are a bad input file just
    # like garbage bytes, not a wrong argument type.
    file_set = descriptor_pb2.FileDescriptorSet()
    file_set.file.add(name="broken.proto", package="broken").message_type.add(name="M").field.add(
        name="f",
        number=1,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        type_name=".broken.Nowhere",
    )
    with pytest.raises(ValueError):
        TypeRegistry().add_descriptor_set(file_set.SerializeToString())


def test_descriptor_set_missing_an_import_names_include_imports(tmp_path):
    # gadget.proto imports widget.proto, which no generated module puts in the default pool.
    gadget = compile_descriptor_set(
        tmp_path / "gadget.pb", "regtest/v1/gadget.proto", include_imports=False
    )
    registry = TypeRegistry()
    with pytest.raises(ValueError, match=re.escape("protoc --include_imports")) as caught:
        registry.add_descriptor_set(gadget)
    assert "regtest/v1/widget.proto" in str(caught.value)
    assert type_url("regtest.v1.Gadget") not in registry


def test_descriptor_set_with_all_imports_loads(tmp_path):
    gadget = compile_descriptor_set(
        tmp_path / "gadget.pb", "regtest/v1/gadget.proto", include_imports=True
    )
    registry = TypeRegistry(use_default_pool=False)
    assert "regtest.v1.Gadget" in registry.add_descriptor_set(gadget)
    gadget_class = registry.resolve(type_url("regtest.v1.Gadget"))
    assert gadget_class.DESCRIPTOR.fields_by_name["widget"].message_type.full_name == (
        "regtest.v1.Widget"
    )


def test_missing_descriptor_set_file_is_an_os_error(tmp_path):
    with pytest.raises(OSError):
        TypeRegistry().add_descriptor_set(tmp_path / "absent.pb")


@pytest.mark.parametrize("include_imports", [False, True])
def test_descriptor_set_does_not_shadow_generated_classes(widget_sets, include_imports):
    # widget.proto imports timestamp.proto. Loading the set must not change what
    # google.protobuf.Timestamp resolves to: otherwise unpack() returns a look-alike class
    # that fails isinstance checks and compares unequal to an equal generated Timestamp.
    registry = TypeRegistry()
    registry.add_descriptor_set(widget_sets[include_imports])
    assert registry.resolve(type_url("google.protobuf.Timestamp")) is timestamp_pb2.Timestamp
    stamp = timestamp_pb2.Timestamp(seconds=5)
    assert unpack(pack(stamp), registry) == stamp


def test_resolved_classes_work_with_plain_any():
    # Classes from a registry are ordinary message classes: Any.Unpack/Is accept them.
    registry = TypeRegistry()
    packed = any_pb2.Any()
    packed.Pack(struct_pb2.Value(string_value="x"))
    value_class = registry.resolve(packed.type_url)
    assert packed.Is(value_class.DESCRIPTOR)
    out = value_class()
    assert packed.Unpack(out)
    assert out.string_value == "x"
    assert json_format.MessageToDict(out) == "x"
