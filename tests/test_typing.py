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
        "Found 1 error in 1 file (checked 1 source file)",
    ], result.stdout + result.stderr
    assert result.returncode == 1
