"""What a user's type checker sees: one real mypy run over a small program."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent

PROGRAM = """\
import v1op_pb
from v1op.example.v1.evaluation_pb2 import EvaluationProgress

op = v1op_pb.from_json("{}")
reveal_type(op)
reveal_type(v1op_pb.from_json("{}", message_type=EvaluationProgress))
reveal_type(v1op_pb.from_binary(b"", message_type=EvaluationProgress))
op.name = 5
reveal_type(v1op_pb.V1Operation.from_proto(op).error)
reveal_type(v1op_pb.V1Operation.to_json())
reveal_type(v1op_pb.V1Operation.from_proto(op).to_dict())
reveal_type(v1op_pb.unpack(op.metadata, message_type=EvaluationProgress))
from v1op_pb.client import AsyncOperationClient, OperationClient
client = OperationClient("127.0.0.1:1")
reveal_type(client.result("operations/x", message_type=EvaluationProgress))
reveal_type([o for o in client.list()])
reveal_type(client.list_unseen().next_page_token)
async def read(aio: AsyncOperationClient) -> None:
    reveal_type(await aio.result("operations/x", message_type=EvaluationProgress))
    reveal_type([o async for o in await aio.list()])
"""


def test_mypy_types_the_api_and_flags_a_wrong_field_type() -> None:
    # mypy is a development tool: the lowest-versions environment runs without it.
    pytest.importorskip("mypy", reason="mypy is in the dev extra only")
    # The repository's configuration: strict, and gen/ (the generated package and its
    # stubs) on the path, as the wheel installs it beside v1op_pb. The program is passed
    # as text: mypy's cache replays a file's messages under the path it first had.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            "pyproject.toml",
            "-c",
            PROGRAM,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line.removeprefix("<string>:") for line in result.stdout.splitlines()]
    assert lines == [
        '5: note: Revealed type is "v1op.v1.operation_pb2.Operation"',
        '6: note: Revealed type is "v1op.example.v1.evaluation_pb2.EvaluationProgress"',
        '7: note: Revealed type is "v1op.example.v1.evaluation_pb2.EvaluationProgress"',
        '8: error: Incompatible types in assignment (expression has type "int", variable has '
        'type "str")  [assignment]',
        '9: note: Revealed type is "google.rpc.status_pb2.Status | None"',
        '10: note: Revealed type is "str"',
        '11: note: Revealed type is "dict[str, Any]"',
        '12: note: Revealed type is "v1op.example.v1.evaluation_pb2.EvaluationProgress"',
        '15: note: Revealed type is "v1op.example.v1.evaluation_pb2.EvaluationProgress"',
        '16: note: Revealed type is "list[v1op.v1.operation_pb2.Operation]"',
        '17: note: Revealed type is "str"',
        '19: note: Revealed type is "v1op.example.v1.evaluation_pb2.EvaluationProgress"',
        '20: note: Revealed type is "list[v1op.v1.operation_pb2.Operation]"',
        "Found 1 error in 1 file (checked 1 source file)",
    ], result.stdout + result.stderr
    assert result.returncode == 1
