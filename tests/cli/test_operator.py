"""The operator verbs (create, update, finalize, abort, delete, mark-seen, progress) and the
pages of ``v1op list``, run as ``main([...])`` against the module's real server: JSON
arguments as ``@type``-tagged JSON or ``@FILE``, ``--output json|table``, and a refused
call as one line on stderr with exit status 2."""

from __future__ import annotations

import io
import json
import sys

import pytest

from v1op_pb.cli import main

EVAL, ADA, BOB = "services/eval", "users/ada", "users/bob"
PROGRESS_URL = "type.googleapis.com/v1op.example.v1.EvaluationProgress"
RESULT_URL = "type.googleapis.com/v1op.example.v1.EvaluationResult"
UNKNOWN_NAME = "operations/00000000-0000-4000-8000-000000000000"


@pytest.fixture(autouse=True)
def no_token_from_the_environment(monkeypatch):
    monkeypatch.delenv("V1OP_TOKEN", raising=False)
    monkeypatch.delenv("V1OP_ADDR", raising=False)


@pytest.fixture
def v1op(served, capsys):
    """Run ``v1op COMMAND --addr ... --token <principal's> ARGS``: (exit status, stdout,
    stderr)."""

    def run(command: str, *args: str, who: str = ADA) -> tuple[int, str, str]:
        status = main([command, "--addr", served.target, "--token", served.tokens[who], *args])
        out, err = capsys.readouterr()
        return status, out, err

    return run


def progress(fraction: float, message: str = "") -> str:
    return json.dumps({"@type": PROGRESS_URL, "progress": fraction, "message": message})


def create(v1op, owner: str = ADA, fraction: float = 0.25) -> dict:
    status, out, err = v1op(
        "create", "--metadata", progress(fraction, "queued"), "--on-behalf-of", owner, who=EVAL
    )
    assert (status, err) == (0, "")
    return json.loads(out)


def test_create_update_progress_finalize_mark_seen(v1op, tmp_path):
    created = create(v1op)
    name = created["name"]
    assert created["creator"] == ADA
    assert created["metadata"] == {"@type": PROGRESS_URL, "progress": 0.25, "message": "queued"}

    status, out, _ = v1op("update", name, "--metadata", progress(0.5, "scoring"), who=EVAL)
    assert status == 0 and json.loads(out)["metadata"]["progress"] == 0.5

    status, out, _ = v1op("progress", name)
    assert status == 0
    assert {k: v for k, v in json.loads(out).items() if k != "name"} == {
        "parent": name,
        "progress": 0.5,
        "message": "scoring",
    }

    response = tmp_path / "response.json"
    response.write_text(json.dumps({"@type": RESULT_URL, "evaluation": "evaluations/e9"}))
    status, out, _ = v1op(
        "finalize", name, "--response", f"@{response}", "--metadata", progress(1), who=EVAL
    )
    finished = json.loads(out)
    assert status == 0 and finished["done"] is True
    assert finished["response"] == {"@type": RESULT_URL, "evaluation": "evaluations/e9"}
    assert finished["metadata"] == {"@type": PROGRESS_URL, "progress": 1}

    status, out, _ = v1op("mark-seen", name)
    assert status == 0 and "seenByCreatorTime" in json.loads(out)


def test_finalize_with_an_error_read_from_stdin(v1op, monkeypatch):
    name = create(v1op)["name"]
    error = {
        "code": 8,
        "message": "token quota exhausted",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "QUOTA"}],
    }
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(json.dumps(error).encode())))
    status, out, _ = v1op("finalize", name, "--error", "@-", who=EVAL)
    assert status == 0
    assert json.loads(out)["error"] == error


def test_abort_and_delete(v1op):
    name = create(v1op)["name"]
    status, out, _ = v1op("abort", name)
    assert status == 0 and json.loads(out)["error"]["code"] == 1  # CANCELLED
    assert v1op("delete", name) == (0, "", "")
    status, out, err = v1op("get", name)
    assert (status, out) == (2, "")
    assert err == f"v1op: NOT_FOUND: operation {name!r} not found\n"


@pytest.mark.parametrize(
    ("argv", "who", "code"),
    [
        pytest.param(["create"], ADA, "PERMISSION_DENIED", id="create-as-a-user"),
        pytest.param(
            ["update", UNKNOWN_NAME, "--metadata", progress(0.1)], EVAL, "NOT_FOUND", id="update"
        ),
        pytest.param(
            ["finalize", UNKNOWN_NAME, "--error", '{"code": 2}'], EVAL, "NOT_FOUND", id="finalize"
        ),
        pytest.param(["abort", UNKNOWN_NAME], ADA, "NOT_FOUND", id="abort"),
        pytest.param(["delete", UNKNOWN_NAME], ADA, "NOT_FOUND", id="delete"),
        pytest.param(["mark-seen", UNKNOWN_NAME], ADA, "NOT_FOUND", id="mark-seen"),
        pytest.param(["progress", UNKNOWN_NAME], ADA, "NOT_FOUND", id="progress"),
        pytest.param(["get", UNKNOWN_NAME], ADA, "NOT_FOUND", id="get"),
        pytest.param(["wait", UNKNOWN_NAME], ADA, "NOT_FOUND", id="wait"),
        pytest.param(["list", "--page-token", "bogus"], ADA, "INVALID_ARGUMENT", id="list"),
    ],
)
def test_a_refused_call_is_one_line_and_exit_status_2(v1op, argv, who, code):
    status, out, err = v1op(*argv, who=who)
    assert (status, out) == (2, "")
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"v1op: {code}: ")


def test_a_finished_operation_cannot_be_updated(v1op):
    name = create(v1op)["name"]
    assert v1op("finalize", name, "--error", '{"code": 13}', who=EVAL)[0] == 0
    status, _, err = v1op("update", name, "--metadata", progress(0.9), who=EVAL)
    assert status == 2 and err.startswith("v1op: FAILED_PRECONDITION: ")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["create", "--metadata", '{"progress": 1}'],
            'v1op: --metadata: $: Any has no "@type" key',
            id="untagged",
        ),
        pytest.param(
            ["create", "--metadata", json.dumps({"@type": PROGRESS_URL, "progress": "x"})],
            "v1op: --metadata: $.progress: ",
            id="bad-field",
        ),
        pytest.param(
            ["create", "--metadata", "@/nonexistent/file.json"],
            "v1op: --metadata: cannot read /nonexistent/file.json: ",
            id="no-file",
        ),
        pytest.param(
            ["finalize", UNKNOWN_NAME, "--error", '{"code": "x"}'],
            "v1op: --error: $.code: ",
            id="bad-status",
        ),
    ],
)
def test_a_bad_json_argument_names_the_option_and_the_path(v1op, argv, message):
    status, out, err = v1op(*argv, who=EVAL)
    assert (status, out) == (2, "")
    assert err.startswith(message), err
    assert len(err.splitlines()) == 1


def test_a_payload_type_nobody_knows_gets_the_hint(v1op):
    tagged = json.dumps({"@type": "type.googleapis.com/acme.v9.Nothing"})
    status, _, err = v1op("create", "--metadata", tagged, who=EVAL)
    assert status == 2
    first, hint = err.splitlines()
    assert first.startswith("v1op: --metadata: $[\"@type\"]: no message type 'acme.v9.Nothing'")
    assert hint.startswith("v1op: hint: ") and "--import" in hint


def test_finalize_needs_exactly_one_outcome(v1op):
    for outcome in ([], ["--response", "{}", "--error", "{}"]):
        with pytest.raises(SystemExit) as exited:
            v1op("finalize", UNKNOWN_NAME, *outcome, who=EVAL)
        assert exited.value.code == 2


def test_table_output(v1op):
    name = create(v1op, fraction=0.5)["name"]
    _, out, _ = v1op("get", name, "--output", "table")
    header, row = out.splitlines()
    assert header.split() == ["NAME", "STATE", "CREATOR", "CREATED", "UPDATED"]
    assert row.split()[:3] == [name, "running", ADA]
    _, out, _ = v1op("progress", name, "--output", "table")
    assert [line.split(maxsplit=2) for line in out.splitlines()] == [
        ["NAME", "PROGRESS", "MESSAGE"],
        [name, "50%", "queued"],
    ]
    v1op("finalize", name, "--error", '{"code": 8, "message": "quota"}', who=EVAL)
    _, out, _ = v1op("get", name, "--output", "table")
    assert "failed (RESOURCE_EXHAUSTED)" in out


# --- the pages of v1op list ---------------------------------------------------------------------


@pytest.fixture
def lister(served, v1op):
    """A user of its own with five operations, and ``v1op list`` as that user."""
    user = served.fresh_user()
    names = [create(v1op, user)["name"] for _ in range(5)]
    return (lambda *args: v1op("list", *args, who=user)), names


def test_list_all_prints_every_operation_as_ndjson(lister):
    list_, names = lister
    status, out, err = list_("--all", "--page-size", "2")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert [json.loads(line)["name"] for line in lines] == names
    assert all("\n" not in line and line.startswith("{") for line in lines)


def test_page_token_gives_one_page(lister):
    list_, names = lister
    _, out, _ = list_("--page-size", "2")
    first = json.loads(out)
    assert [op["name"] for op in first["operations"]] == names[:2]
    assert first["totalSize"] == 5
    _, out, _ = list_("--page-size", "2", "--page-token", first["nextPageToken"])
    second = json.loads(out)
    assert [op["name"] for op in second["operations"]] == names[2:4]


def test_list_as_a_table_says_how_to_get_the_next_page(lister):
    list_, names = lister
    status, out, err = list_("--page-size", "3", "--output", "table")
    assert status == 0
    assert [line.split()[0] for line in out.splitlines()] == ["NAME", *names[:3]]
    (hint,) = err.splitlines()
    token = hint.removeprefix("v1op: more: --page-token ")
    _, out, _ = list_("--page-size", "3", "--page-token", token, "--output", "table")
    assert [line.split()[0] for line in out.splitlines()] == ["NAME", *names[3:]]
    _, out, _ = list_("--all", "--page-size", "2", "--output", "table")
    assert [line.split()[0] for line in out.splitlines()] == ["NAME", *names]


def test_all_and_page_token_do_not_combine(lister):
    list_, _ = lister
    with pytest.raises(SystemExit) as exited:
        list_("--all", "--page-token", "x")
    assert exited.value.code == 2


def test_name_output_is_for_scripts(v1op, lister):
    status, out, _ = v1op(
        "create", "--on-behalf-of", ADA, "--metadata", progress(0.1), "--output", "name", who=EVAL
    )
    assert status == 0 and out.startswith("operations/") and out.count("\n") == 1
    list_, names = lister
    assert list_("--all", "--page-size", "2", "--output", "name")[1].splitlines() == names
    assert list_("--page-size", "2", "--output", "name")[1].splitlines() == names[:2]


def test_the_cli_reads_the_address_from_the_environment(
    served, make_operation, capsys, monkeypatch
):
    created = make_operation()
    monkeypatch.setenv("V1OP_ADDR", served.target)
    monkeypatch.setenv("V1OP_TOKEN", served.tokens["users/ada"])
    assert main(["get", created.name, "--output", "name"]) == 0
    assert capsys.readouterr().out == created.name + "\n"
