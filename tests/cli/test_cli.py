"""The v1op command: mostly in-process through main(), plus real runs of the installed script."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import grpc_tools
import pytest
from factories import DOCUMENTED_OUTPUT_ONLY_KEYS, make_failed, make_running, make_succeeded
from google.protobuf import any_pb2
from google.rpc import error_details_pb2
from grpc_tools import protoc

# Imported for its side effect: operation.json packs its types, so in this process the
# default pool must know them for the expected value to be computed.
from v1op.example.v1 import evaluation_pb2  # noqa: F401

from v1op_pb import Operation, from_binary, from_json, to_binary, to_json, to_text
from v1op_pb.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
OPERATION_JSON = EXAMPLES / "operation.json"
PROTO_ROOT = Path(__file__).resolve().parents[1] / "data"
WKT_INCLUDE = Path(grpc_tools.__file__).parent / "_proto"
SCRIPT = Path(sys.executable).parent / "v1op"
EXAMPLE_TYPES = ["--import", "v1op.example.v1.evaluation_pb2"]
OUTPUT_ONLY_KEYS = DOCUMENTED_OUTPUT_ONLY_KEYS
WIDGET_OPERATION = {
    "name": "operations/w",
    "done": True,
    "response": {
        "@type": "type.googleapis.com/regtest.v1.Widget",
        "name": "w-1",
        "color": "COLOR_RED",
        "part": {"label": "left"},
        "madeAt": "2026-11-20T09:15:02.123456789Z",
    },
}


@pytest.fixture(scope="module")
def widget_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "widget.pb"
    args = ["protoc", f"-I{PROTO_ROOT}", f"-I{WKT_INCLUDE}", f"--descriptor_set_out={out}"]
    assert protoc.main([*args, "regtest/v1/widget.proto"]) == 0
    return out


def convert(*args: str | Path) -> int:
    return main(["convert", *map(str, args)])


def feed_stdin(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def write(path: Path, data: bytes | str) -> Path:
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def expected_operation_json() -> dict:
    """operation.json as the binding writes it: the same value, timestamps normalized."""
    return json.loads(to_json(from_json(OPERATION_JSON.read_bytes())))


# --- conversions -------------------------------------------------------------------------------


def test_json_binary_text_json_round_trip(tmp_path, capsys):
    binary, text = tmp_path / "op.binpb", tmp_path / "op.txtpb"
    assert (
        convert("--from", "json", "--to", "binary", *EXAMPLE_TYPES, OPERATION_JSON, "-o", binary)
        == 0
    )
    assert convert("--from", "binary", "--to", "text", *EXAMPLE_TYPES, binary, "-o", text) == 0
    assert "[type.googleapis.com/v1op.example.v1.EvaluationResult]" in text.read_text()
    assert convert("--from", "text", "--to", "json", *EXAMPLE_TYPES, text) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert json.loads(out) == expected_operation_json()
    # Nanoseconds and the uint64 maximum are what a lossy client would break.
    assert json.loads(out)["createTime"] == "2026-11-20T09:15:02.123456789Z"
    assert json.loads(out)["response"]["tokensUsed"] == "18446744073709551615"


def test_stdin_to_stdout_by_default(monkeypatch, capsysbinary):
    feed_stdin(monkeypatch, OPERATION_JSON.read_bytes())
    assert convert("--from", "json", "--to", "binary", *EXAMPLE_TYPES) == 0
    out, err = capsysbinary.readouterr()
    assert err == b""
    assert out == to_binary(from_json(OPERATION_JSON.read_bytes()))


def test_dash_means_stdin(monkeypatch, capsys):
    feed_stdin(monkeypatch, b'{"name": "operations/x", "done": false}')
    assert convert("--from", "json", "--to", "json", "-") == 0
    assert json.loads(capsys.readouterr().out) == {"name": "operations/x"}


def test_output_file(tmp_path, capsys):
    out_file = tmp_path / "op.json"
    assert (
        convert("--from", "json", "--to", "json", *EXAMPLE_TYPES, OPERATION_JSON, "-o", out_file)
        == 0
    )
    assert capsys.readouterr() == ("", "")
    assert json.loads(out_file.read_text()) == expected_operation_json()


def test_json_output_ends_with_a_newline(capsys):
    assert convert("--from", "json", "--to", "json", *EXAMPLE_TYPES, OPERATION_JSON) == 0
    out = capsys.readouterr().out
    assert out.endswith("}\n")
    assert out.count("\n") == 1


def test_indent(capsys):
    assert (
        convert("--from", "json", "--to", "json", "--indent", "2", *EXAMPLE_TYPES, OPERATION_JSON)
        == 0
    )
    out = capsys.readouterr().out
    assert '\n  "name": ' in out
    assert json.loads(out) == expected_operation_json()


def test_emit_unpopulated(tmp_path, capsys):
    source = write(tmp_path / "op.json", '{"name": "operations/x"}')
    assert convert("--from", "json", "--to", "json", "--emit-unpopulated", source) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["name"] == "operations/x"
    assert out["done"] is False
    assert out["creator"] == ""
    assert set(out) >= OUTPUT_ONLY_KEYS


def test_omit_output_only(capsys):
    assert (
        convert(
            "--from", "json", "--to", "json", "--omit-output-only", *EXAMPLE_TYPES, OPERATION_JSON
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    expected = {k: v for k, v in expected_operation_json().items() if k not in OUTPUT_ONLY_KEYS}
    assert out == expected
    assert set(out) == {"metadata", "done", "response"}


def test_emit_unpopulated_and_omit_output_only_together(tmp_path, capsys):
    source = write(tmp_path / "op.json", '{"name": "operations/x"}')
    assert (
        convert(
            "--from", "json", "--to", "json", "--emit-unpopulated", "--omit-output-only", source
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert not OUTPUT_ONLY_KEYS & set(out)
    assert out["done"] is False


def test_ignore_unknown_fields(tmp_path, capsys):
    source = write(tmp_path / "op.json", '{"name": "operations/x", "colour": "red"}')
    assert convert("--from", "json", "--to", "json", source) == 2
    assert "colour" in capsys.readouterr().err
    assert convert("--from", "json", "--to", "json", "--ignore-unknown-fields", source) == 0
    assert json.loads(capsys.readouterr().out) == {"name": "operations/x"}


def test_descriptor_set(tmp_path, capsys, widget_set):
    source = write(tmp_path / "op.json", json.dumps(WIDGET_OPERATION))
    text = tmp_path / "op.txtpb"
    assert (
        convert(
            "--from", "json", "--to", "text", "--descriptor-set", widget_set, source, "-o", text
        )
        == 0
    )
    assert "[type.googleapis.com/regtest.v1.Widget]" in text.read_text()
    assert convert("--from", "text", "--to", "json", "--descriptor-set", widget_set, text) == 0
    assert json.loads(capsys.readouterr().out) == WIDGET_OPERATION


def test_without_the_descriptor_set_the_type_is_unknown(tmp_path, capsys):
    source = write(tmp_path / "op.json", json.dumps(WIDGET_OPERATION))
    assert convert("--from", "json", "--to", "binary", source) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "regtest.v1.Widget" in err
    assert "$.response" in err


def test_type_for_a_non_operation_message(tmp_path, capsysbinary):
    source = write(tmp_path / "info.json", '{"reason": "R", "metadata": {"k": "v"}}')
    assert (
        convert("--from", "json", "--to", "binary", "--type", "google.rpc.ErrorInfo", source) == 0
    )
    out = capsysbinary.readouterr().out
    info = from_binary(out, message_type=error_details_pb2.ErrorInfo)
    assert info == error_details_pb2.ErrorInfo(reason="R", metadata={"k": "v"})


def test_type_from_a_descriptor_set(tmp_path, capsys, widget_set):
    widget = WIDGET_OPERATION["response"]
    source = write(
        tmp_path / "w.json", json.dumps({k: v for k, v in widget.items() if k != "@type"})
    )
    binary = tmp_path / "w.binpb"
    common = ["--type", "regtest.v1.Widget", "--descriptor-set", widget_set]
    assert convert("--from", "json", "--to", "binary", *common, source, "-o", binary) == 0
    assert convert("--from", "binary", "--to", "json", *common, binary) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(source.read_text())


def test_text_input_with_a_descriptor_set_reads_well_known_details(tmp_path, capsys, widget_set):
    # The registry knows google.rpc.ErrorInfo whatever descriptor sets are loaded, so text
    # that expands it must stay readable when --descriptor-set is given.
    text = write(tmp_path / "op.txtpb", to_text(make_failed()))
    assert convert("--from", "text", "--to", "json", "--descriptor-set", widget_set, text) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(to_json(make_failed()))


# --- errors ------------------------------------------------------------------------------------


def test_bad_file_reports_the_json_path(capsys):
    bad = EXAMPLES / "bad-operation.json"
    assert convert("--from", "json", "--to", "binary", bad) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "$.error.details[1].reason" in err
    assert str(bad) in err


def test_bad_stdin_is_reported_as_stdin(monkeypatch, capsys):
    feed_stdin(monkeypatch, b'{"done": "yes"}')
    assert convert("--from", "json", "--to", "json") == 2
    err = capsys.readouterr().err
    assert "<stdin>" in err
    assert "$.done" in err


def test_unknown_any_type_gives_the_import_hint(tmp_path, capsys):
    # A made-up type: in this process the example types are imported, so the default pool
    # knows them (the script test below covers operation.json in a fresh process).
    source = write(
        tmp_path / "op.json",
        json.dumps({"metadata": {"@type": "type.googleapis.com/acme.v9.Progress", "pct": 5}}),
    )
    assert convert("--from", "json", "--to", "binary", source) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "acme.v9.Progress" in err
    assert "$.metadata" in err
    assert "--import" in err
    assert "--descriptor-set" in err


def test_unknown_type_option(capsys):
    assert (
        convert("--from", "json", "--to", "json", "--type", "acme.v9.Nothing", OPERATION_JSON) == 2
    )
    assert "acme.v9.Nothing" in capsys.readouterr().err


def test_missing_file(tmp_path, capsys):
    missing = tmp_path / "absent.json"
    assert convert("--from", "json", "--to", "json", missing) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert str(missing) in err


def test_missing_descriptor_set(tmp_path, capsys):
    missing = tmp_path / "absent.pb"
    assert (
        convert("--from", "json", "--to", "json", "--descriptor-set", missing, OPERATION_JSON) == 2
    )
    assert str(missing) in capsys.readouterr().err


def test_garbage_descriptor_set(tmp_path, capsys):
    garbage = write(tmp_path / "garbage.pb", b"\xff\xff\xff\xff")
    assert (
        convert("--from", "json", "--to", "json", "--descriptor-set", garbage, OPERATION_JSON) == 2
    )
    assert "FileDescriptorSet" in capsys.readouterr().err


@pytest.mark.parametrize("module", ["nowhere_pb2", "json"])
def test_bad_import(module, capsys):
    assert convert("--from", "json", "--to", "json", "--import", module, OPERATION_JSON) == 2
    assert module in capsys.readouterr().err


def test_invalid_binary_input(tmp_path, capsys):
    bad = write(tmp_path / "op.binpb", b"\x0f")
    assert convert("--from", "binary", "--to", "json", bad) == 2
    assert "not a valid binary v1op.v1.Operation" in capsys.readouterr().err


def test_invalid_text_input(tmp_path, capsys):
    bad = write(tmp_path / "op.txtpb", 'name: "x"\nnmae: "y"\n')
    assert convert("--from", "text", "--to", "json", bad) == 2
    assert "2:1" in capsys.readouterr().err


def test_unknown_fields_cannot_go_to_json_or_text(tmp_path, capsys):
    op = make_failed()
    op.error.MergeFromString(b"\x98\x06\x01")  # field 99, which Status does not have
    source = write(tmp_path / "op.binpb", to_binary(op))
    for target in ("json", "text"):
        assert convert("--from", "binary", "--to", target, source) == 2
        assert "$.error" in capsys.readouterr().err
    # Binary has a place for them: they pass through.
    copy = tmp_path / "copy.binpb"
    assert convert("--from", "binary", "--to", "binary", source, "-o", copy) == 0
    assert copy.read_bytes() == source.read_bytes()


@pytest.mark.parametrize("target", ["json", "text"])
def test_undecodable_any_payload_is_reported_not_a_traceback(tmp_path, capsys, target):
    op = Operation(
        response=any_pb2.Any(type_url="type.googleapis.com/google.rpc.ErrorInfo", value=b"\xff")
    )
    source = write(tmp_path / "op.binpb", to_binary(op))
    assert convert("--from", "binary", "--to", target, source) == 2
    assert "google.rpc.ErrorInfo" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["convert"],
        ["convert", "--to", "json"],
        ["convert", "--from", "json"],
        ["convert", "--from", "xml", "--to", "json"],
        ["convert", "--from", "json", "--to", "json", "--indent", "two"],
        ["convert", "--from", "json", "--to", "json", "--no-such-option"],
        ["convert", "--from", "json", "--to", "json", "a.json", "b.json"],
        ["frobnicate"],
    ],
    ids=" ".join,
)
def test_bad_usage_exits_2(argv, capsys):
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert "usage: v1op" in capsys.readouterr().err


# --- streams: ndjson and delimited ------------------------------------------------------------


def ndjson_of(*ops: Operation) -> bytes:
    return b"".join(to_json(op).encode("utf-8") + b"\n" for op in ops)


def delimited_of(*ops: Operation) -> bytes:
    return b"".join(bytes([len(to_binary(op))]) + to_binary(op) for op in ops)  # all < 128 bytes


SMALL_OPS = [Operation(name=f"operations/{i}", done=i % 2 == 1) for i in range(3)]
BAD_LINE = (EXAMPLES / "bad-operation.json").read_text().replace("\n", "")


def test_ndjson_to_ndjson(tmp_path, capsysbinary):
    source = write(tmp_path / "ops.ndjson", ndjson_of(make_running(), make_succeeded()))
    assert convert("--from", "ndjson", "--to", "ndjson", *EXAMPLE_TYPES, source) == 0
    assert capsysbinary.readouterr() == (source.read_bytes(), b"")


def test_ndjson_to_delimited_and_back(tmp_path, capsys):
    source = write(tmp_path / "ops.ndjson", ndjson_of(make_running(), make_failed()))
    binary, back = tmp_path / "ops.binpb", tmp_path / "back.ndjson"
    assert convert("--from", "ndjson", "--to", "delimited", source, "-o", binary) == 0
    assert convert("--from", "delimited", "--to", "delimited", binary, "-o", back) == 0
    assert back.read_bytes() == binary.read_bytes()
    assert convert("--from", "delimited", "--to", "ndjson", binary, "-o", back) == 0
    assert back.read_bytes() == source.read_bytes()
    assert capsys.readouterr() == ("", "")


def test_delimited_on_stdin_and_stdout(monkeypatch, capsysbinary):
    feed_stdin(monkeypatch, delimited_of(*SMALL_OPS))
    assert convert("--from", "delimited", "--to", "delimited", "-") == 0
    assert capsysbinary.readouterr() == (delimited_of(*SMALL_OPS), b"")


def test_stream_options_apply_to_every_record(tmp_path, capsys):
    source = write(
        tmp_path / "ops.ndjson",
        b'{"name": "operations/a", "colour": "red"}\n\n{"name": "operations/b"}\n',
    )
    common = ["--from", "ndjson", "--to", "ndjson", "--ignore-unknown-fields"]
    assert convert(*common, "--emit-unpopulated", "--omit-output-only", source) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2
    assert all(line["done"] is False and not OUTPUT_ONLY_KEYS & set(line) for line in lines)


def test_stream_type_and_descriptor_set(tmp_path, capsys, widget_set):
    widget = {k: v for k, v in WIDGET_OPERATION["response"].items() if k != "@type"}
    source = write(tmp_path / "w.ndjson", (json.dumps(widget) + "\n") * 3)
    binary = tmp_path / "w.binpb"
    common = ["--type", "regtest.v1.Widget", "--descriptor-set", widget_set]
    assert convert("--from", "ndjson", "--to", "delimited", *common, source, "-o", binary) == 0
    assert convert("--from", "delimited", "--to", "ndjson", *common, binary) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == [widget] * 3


def test_a_bad_line_stops_with_exit_status_2(tmp_path, capsys):
    source = write(tmp_path / "ops.ndjson", ndjson_of(*SMALL_OPS[:2]) + BAD_LINE.encode() + b"\n")
    with source.open("ab") as f:
        f.write(ndjson_of(SMALL_OPS[2]))
    assert convert("--from", "ndjson", "--to", "ndjson", source) == 2
    out, err = capsys.readouterr()
    assert out.encode() == ndjson_of(*SMALL_OPS[:2])  # what came before was written
    assert err == f"v1op: {source}:3: $.error.details[1].reason: expected a string, got number 42\n"


def test_skip_invalid_exits_1_and_writes_the_good_records(monkeypatch, capsys):
    feed_stdin(monkeypatch, b'{"done": "yes"}\n' + ndjson_of(*SMALL_OPS) + b"[]\n")
    assert convert("--from", "ndjson", "--to", "ndjson", "--skip-invalid") == 1
    out, err = capsys.readouterr()
    assert out.encode() == ndjson_of(*SMALL_OPS)
    assert err.splitlines() == [
        "v1op: <stdin>:1: $.done: expected true or false, got string 'yes'",
        "v1op: <stdin>:5: $: expected v1op.v1.Operation (a JSON object), got an array",
    ]


def test_skip_invalid_without_bad_records_exits_0(tmp_path, capsys):
    source = write(tmp_path / "ops.ndjson", ndjson_of(*SMALL_OPS))
    assert convert("--from", "ndjson", "--to", "delimited", "--skip-invalid", source) == 0
    assert capsys.readouterr().err == ""


def test_truncated_delimited_input(tmp_path, capsys):
    whole = delimited_of(*SMALL_OPS)
    source = write(tmp_path / "ops.binpb", whole[:-2])
    third = len(delimited_of(*SMALL_OPS[:2]))
    assert convert("--from", "delimited", "--to", "ndjson", source) == 2
    out, err = capsys.readouterr()
    assert out.encode() == ndjson_of(*SMALL_OPS[:2])
    assert err.startswith(f"v1op: {source}: record 3 at byte {third}: truncated: ")


def test_unknown_any_type_in_a_stream_gives_the_hint_once(tmp_path, capsys):
    line = json.dumps({"metadata": {"@type": "type.googleapis.com/acme.v9.Progress"}})
    source = write(tmp_path / "ops.ndjson", f"{line}\n{line}\n")
    assert convert("--from", "ndjson", "--to", "ndjson", "--skip-invalid", source) == 1
    err = capsys.readouterr().err
    assert err.count("ops.ndjson:") == 2
    assert err.count("v1op: hint:") == 1
    assert err.endswith("--descriptor-set <file>\n")


def test_output_may_not_be_the_input(tmp_path, capsys):
    source = write(tmp_path / "ops.ndjson", ndjson_of(*SMALL_OPS))
    assert convert("--from", "ndjson", "--to", "ndjson", source, "-o", source) == 2
    assert "the output file is the input file" in capsys.readouterr().err
    assert source.read_bytes() == ndjson_of(*SMALL_OPS)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--from", "ndjson", "--to", "json"], "--from ndjson --to json: the streaming formats"),
        (["--from", "binary", "--to", "delimited"], "--from binary --to delimited: the"),
        (["--from", "text", "--to", "ndjson"], "--from text --to ndjson: the streaming"),
        (["--from", "ndjson", "--to", "ndjson", "--indent", "2"], "--indent cannot be used"),
        (["--from", "json", "--to", "json", "--skip-invalid"], "--skip-invalid applies only"),
    ],
    ids=["ndjson-json", "binary-delimited", "text-ndjson", "indent", "skip-invalid"],
)
def test_stream_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["convert", *argv])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: v1op convert")
    assert f"v1op convert: error: {message}" in err


def test_indent_is_ignored_for_delimited_output_as_for_binary(tmp_path, capsysbinary):
    source = write(tmp_path / "ops.ndjson", ndjson_of(*SMALL_OPS))
    assert convert("--from", "ndjson", "--to", "delimited", "--indent", "2", source) == 0
    assert capsysbinary.readouterr().out == delimited_of(*SMALL_OPS)


# --- the installed script ----------------------------------------------------------------------


def run_script(*args: str | Path, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(SCRIPT), *map(str, args)],
        input=stdin,
        capture_output=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )


def test_script_pipes_json_to_binary_and_back():
    to_bin = run_script(
        "convert", "--from", "json", "--to", "binary", *EXAMPLE_TYPES, OPERATION_JSON
    )
    assert to_bin.returncode == 0, to_bin.stderr
    assert to_bin.stderr == b""
    back = run_script(
        "convert", "--from", "binary", "--to", "json", *EXAMPLE_TYPES, stdin=to_bin.stdout
    )
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout) == expected_operation_json()


def test_script_converts_the_shipped_examples_without_import():
    # A fresh process has imported nothing: the types this package ships (v1op.example.v1)
    # are found when the input names them.
    run = run_script("convert", "--from", "json", "--to", "json", OPERATION_JSON)
    assert (run.returncode, run.stderr) == (0, b"")
    assert json.loads(run.stdout) == expected_operation_json()


def test_script_with_an_unknown_type_gives_the_hint(tmp_path):
    source = write(
        tmp_path / "op.json",
        json.dumps({"metadata": {"@type": "type.googleapis.com/v1op.nothing.v1.Progress"}}),
    )
    run = run_script("convert", "--from", "json", "--to", "json", source)
    assert run.returncode == 2
    assert run.stdout == b""
    assert b"v1op.nothing.v1.Progress" in run.stderr
    assert b"--import" in run.stderr


def test_script_reports_bad_input_with_exit_status_2():
    bad = EXAMPLES / "bad-operation.json"
    run = run_script("convert", "--from", "json", "--to", "binary", bad)
    assert run.returncode == 2
    assert run.stdout == b""
    assert b"$.error.details[1].reason" in run.stderr
    assert b"Traceback" not in run.stderr


def test_script_streams_ndjson_through_delimited(tmp_path):
    source = write(tmp_path / "ops.ndjson", ndjson_of(make_running(), make_failed()))
    to_delimited = run_script(
        "convert", "--from", "ndjson", "--to", "delimited", *EXAMPLE_TYPES, source
    )
    assert (to_delimited.returncode, to_delimited.stderr) == (0, b"")
    back = run_script(
        "convert",
        "--from",
        "delimited",
        "--to",
        "ndjson",
        *EXAMPLE_TYPES,
        stdin=to_delimited.stdout,
    )
    # stderr is not a terminal: no progress display, nothing at all.
    assert (back.returncode, back.stderr) == (0, b"")
    assert back.stdout == source.read_bytes()


def test_script_stops_quietly_when_its_reader_goes_away(tmp_path):
    source = write(tmp_path / "ops.ndjson", ndjson_of(*SMALL_OPS) * 20_000)  # ~1 MB out
    process = subprocess.Popen(
        [str(SCRIPT), "convert", "--from", "ndjson", "--to", "ndjson", str(source)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline() == ndjson_of(SMALL_OPS[0])
    process.stdout.close()  # as `| head -1` does
    err = process.stderr.read()
    assert process.wait(timeout=60) == 2
    assert err == b""
