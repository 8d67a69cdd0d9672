"""Small factories for the tests: realistic Operations in their three life stages."""

from __future__ import annotations

from google.protobuf import struct_pb2, timestamp_pb2
from google.rpc import code_pb2, error_details_pb2
from v1op.example.v1 import evaluation_pb2

from v1op_pb import Operation, make_status, pack

# The JSON keys of the eight fields the documented client drops from request bodies as
# readOnly, and that the proto marks OUTPUT_ONLY.
DOCUMENTED_OUTPUT_ONLY_KEYS = frozenset(
    {
        "name",
        "createTime",
        "creator",
        "updateTime",
        "updater",
        "deleteTime",
        "deleter",
        "seenByCreatorTime",
    }
)


def make_timestamp(text: str) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromJsonString(text)
    return stamp


def make_running() -> Operation:
    """A running operation with typed progress metadata and every output-only field."""
    op = Operation(
        name="operations/11111111-2222-4333-8444-555555555555",
        create_time=make_timestamp("2026-11-20T09:15:02.123456789Z"),
        creator="users/ada",
        update_time=make_timestamp("2026-11-20T09:16:00.5Z"),
        updater="services/evaluator",
        metadata=pack(
            evaluation_pb2.EvaluationProgress(
                progress=0.25, message="scoring 30 of 120", items_done=30, items_total=120
            )
        ),
    )
    return op


def make_succeeded() -> Operation:
    """A finished operation whose response is a user-defined message type."""
    op = make_running()
    op.done = True
    details = struct_pb2.Struct()
    details.update({"model": "danube", "retries": 2, "flags": ["cached", None]})
    op.response.CopyFrom(
        pack(
            evaluation_pb2.EvaluationResult(
                evaluation="evaluations/e1",
                verdict=evaluation_pb2.EvaluationResult.VERDICT_PASSED,
                scores={"faithfulness": 0.93, "relevance": 0.875},
                failed_test_cases=["tc-7"],
                report_digest=b"\x00\xffdigest",
                details=details,
                tokens_used=2**64 - 1,
            )
        )
    )
    op.seen_by_creator_time.CopyFrom(make_timestamp("2026-11-20T10:00:00Z"))
    return op


def make_failed() -> Operation:
    """A finished operation whose error Status carries several typed details."""
    op = make_running()
    op.done = True
    op.error.CopyFrom(
        make_status(
            code_pb2.RESOURCE_EXHAUSTED,
            "token quota exhausted",
            [
                error_details_pb2.ErrorInfo(
                    reason="QUOTA_EXHAUSTED", domain="example.com", metadata={"quota": "tokens"}
                ),
                error_details_pb2.RetryInfo(retry_delay={"seconds": 3600}),
                error_details_pb2.BadRequest(
                    field_violations=[{"field": "pageSize", "description": "must be positive"}]
                ),
                error_details_pb2.LocalizedMessage(locale="en-US", message="Quota used up."),
                error_details_pb2.Help(links=[{"description": "quota", "url": "https://x.test"}]),
            ],
        )
    )
    return op
