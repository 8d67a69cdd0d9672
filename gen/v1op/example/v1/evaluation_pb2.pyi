import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EvaluationProgress(_message.Message):
    __slots__ = ("progress", "message", "items_done", "items_total", "started_at")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ITEMS_DONE_FIELD_NUMBER: _ClassVar[int]
    ITEMS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    progress: float
    message: str
    items_done: int
    items_total: int
    started_at: _timestamp_pb2.Timestamp
    def __init__(self, progress: _Optional[float] = ..., message: _Optional[str] = ..., items_done: _Optional[int] = ..., items_total: _Optional[int] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class EvaluationResult(_message.Message):
    __slots__ = ("evaluation", "verdict", "scores", "failed_test_cases", "elapsed", "report_digest", "details", "tokens_used")
    class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        VERDICT_UNSPECIFIED: _ClassVar[EvaluationResult.Verdict]
        VERDICT_PASSED: _ClassVar[EvaluationResult.Verdict]
        VERDICT_FAILED: _ClassVar[EvaluationResult.Verdict]
    VERDICT_UNSPECIFIED: EvaluationResult.Verdict
    VERDICT_PASSED: EvaluationResult.Verdict
    VERDICT_FAILED: EvaluationResult.Verdict
    class ScoresEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    FAILED_TEST_CASES_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_FIELD_NUMBER: _ClassVar[int]
    REPORT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_USED_FIELD_NUMBER: _ClassVar[int]
    evaluation: str
    verdict: EvaluationResult.Verdict
    scores: _containers.ScalarMap[str, float]
    failed_test_cases: _containers.RepeatedScalarFieldContainer[str]
    elapsed: _duration_pb2.Duration
    report_digest: bytes
    details: _struct_pb2.Struct
    tokens_used: int
    def __init__(self, evaluation: _Optional[str] = ..., verdict: _Optional[_Union[EvaluationResult.Verdict, str]] = ..., scores: _Optional[_Mapping[str, float]] = ..., failed_test_cases: _Optional[_Iterable[str]] = ..., elapsed: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., report_digest: _Optional[bytes] = ..., details: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., tokens_used: _Optional[int] = ...) -> None: ...
