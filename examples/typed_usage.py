"""The public API as a type checker sees it: `make lint` runs `mypy --strict` on this file.

Every value below has a precise type, never `Any`: a user's mypy catches a wrong field type
(`op.name = 5`), a wrong message class, or a misspelt field name. Run it with
`python examples/typed_usage.py` from the root of the tree.
"""

from __future__ import annotations

import sys
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import code_pb2, error_details_pb2, status_pb2
from v1op.example.v1.evaluation_pb2 import EvaluationProgress, EvaluationResult

import v1op_pb
from v1op_pb import ConversionError, Operation, V1Operation, make_status, pack, status_details

HERE = Path(__file__).parent


def progress_line(progress: EvaluationProgress) -> str:
    """Takes only an EvaluationProgress: passing an Operation or a bare Message fails mypy."""
    return f"{progress.progress:.0%} {progress.message}"


def created(op: Operation) -> Timestamp | None:
    return op.create_time if op.HasField("create_time") else None


def main() -> int:
    # from_json gives an Operation; with message_type=T it gives a T (overloads).
    op: Operation = v1op_pb.from_json((HERE / "operation.json").read_bytes())
    progress = v1op_pb.from_json(
        '{"progress": 0.25, "message": "scoring"}', message_type=EvaluationProgress
    )
    print(progress_line(progress))

    # The generated stubs type every field: name is a str, done a bool, times Timestamps.
    name: str = op.name
    done: bool = op.done
    stamp = created(op)
    print(name, done, stamp.ToJsonString() if stamp is not None else "-")

    # Any payloads: unpack into a typed message of your own choosing.
    result = EvaluationResult()
    if op.response.Unpack(result):
        scores: dict[str, float] = dict(result.scores)
        print(result.evaluation, scores)

    # Binary and text format keep the type too.
    again: Operation = v1op_pb.from_binary(v1op_pb.to_binary(op))
    copy: EvaluationProgress = v1op_pb.from_text(
        v1op_pb.to_text(progress), message_type=EvaluationProgress
    )
    assert again == op and copy == progress

    # A Status with typed details.
    status: status_pb2.Status = make_status(
        code_pb2.RESOURCE_EXHAUSTED,
        "token quota exhausted",
        [error_details_pb2.ErrorInfo(reason="QUOTA_EXHAUSTED", domain="example.com")],
    )
    failed = Operation(name="operations/1", done=True, error=status)
    failed.metadata.CopyFrom(pack(progress))
    for detail in status_details(failed.error):
        if isinstance(detail, error_details_pb2.ErrorInfo):
            print(detail.reason)

    # The documented model's attribute names, typed as the documented client types them.
    model = V1Operation.from_proto(failed)
    model_name: str | None = model.name
    model_error: status_pb2.Status | None = model.error
    print(model_name, model_error.code if model_error is not None else 0, model.to_json())

    try:
        v1op_pb.from_json('{"done": "yes"}')
    except ConversionError as e:
        print(e.path, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
