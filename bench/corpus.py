"""A seeded generator of realistic Operations, shared by the benchmarks.

``make_corpus(n, seed)`` gives the same ``n`` Operations for the same seed, byte for byte
(``SerializeToString(deterministic=True)``), on any machine and under any
``PYTHONHASHSEED``: everything is drawn from one ``random.Random(seed)`` in a fixed order,
and no value comes from the clock.

The mix mirrors what an evaluation service stores: running operations with
``EvaluationProgress`` metadata, succeeded ones with an ``EvaluationResult`` response, and
failed ones with a ``google.rpc.Status`` carrying several typed error details. Every
operation has the output-only fields a server would have set (name, times, creator,
updater), so the corpus also stands for what a client reads back.

    python -m bench.corpus -n 3 --seed 7     # print three of them as JSON
"""

from __future__ import annotations

import argparse
import random
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence

from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2
from v1op.example.v1 import evaluation_pb2

from v1op_pb import Operation, make_status, pack

__all__ = [
    "DEFAULT_MIX",
    "STATES",
    "make_corpus",
    "make_failed",
    "make_operation",
    "make_running",
    "make_succeeded",
]

STATES = ("running", "succeeded", "failed")
# Most stored operations are finished, and most finished ones succeeded.
DEFAULT_MIX: Mapping[str, float] = {"running": 0.35, "succeeded": 0.45, "failed": 0.20}

# 2026-09-21T00:00:00Z: a fixed origin, so that no timestamp depends on when the corpus is made.
_EPOCH = 1_789_948_800
_MONTH = 30 * 24 * 3600

_USERS = (
    "ada.lovelace",
    "alan.turing",
    "barbara.liskov",
    "donald.knuth",
    "edsger.dijkstra",
    "frances.allen",
    "grace.hopper",
    "john.backus",
    "ken.thompson",
    "leslie.lamport",
    "margaret.hamilton",
    "niklaus.wirth",
    "radia.perlman",
    "shafi.goldwasser",
    "tony.hoare",
)
_SERVICES = ("services/evaluator", "services/batch-scorer", "services/nightly-regression")
_METRICS = (
    "answer_correctness",
    "answer_relevancy",
    "bias",
    "coherence",
    "context_precision",
    "context_recall",
    "faithfulness",
    "fluency",
    "groundedness",
    "hallucination",
    "toxicity",
)
_MODELS = ("danube-3-4b", "gpt-4o-mini", "llama-3.1-70b", "mistral-large", "claude-3.5-sonnet")
_DATASETS = ("qa-finance-v4", "support-tickets-2026q3", "rag-medical-v2", "legal-summaries-v1")
_ITEM_COUNTS = (50, 100, 120, 250, 500, 1000, 2500, 5000)


def make_corpus(
    n: int, seed: int = 0, *, mix: Mapping[str, float] | None = None
) -> list[Operation]:
    """``n`` Operations, deterministic for ``seed``; ``mix`` weighs the states in
    ``STATES`` (default ``DEFAULT_MIX``), e.g. ``{"running": 1}`` for running ones only."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    weights = dict(DEFAULT_MIX if mix is None else mix)
    unknown = set(weights) - set(STATES)
    if unknown:
        raise ValueError(f"unknown states {sorted(unknown)}; expected some of {STATES}")
    # Iterate STATES, not the mapping, so the draw does not depend on the caller's key order.
    states = [s for s in STATES if weights.get(s, 0) > 0]
    if not states:
        raise ValueError("mix gives no state a positive weight")
    rng = random.Random(seed)
    picks = rng.choices(states, weights=[weights[s] for s in states], k=n)
    return [make_operation(rng, state) for state in picks]


def make_operation(rng: random.Random, state: str) -> Operation:
    """One Operation in ``state`` (one of ``STATES``), drawn from ``rng``."""
    try:
        factory = _FACTORIES[state]
    except KeyError:
        raise ValueError(f"unknown state {state!r}; expected one of {STATES}") from None
    return factory(rng)


def make_running(rng: random.Random) -> Operation:
    """Started, with progress metadata, and updated by the service that runs it."""
    op, started = _base(rng)
    total = rng.choice(_ITEM_COUNTS)
    done_items = rng.randrange(total)
    op.metadata.CopyFrom(pack(_progress(done_items, total, started)))
    op.update_time.CopyFrom(_after(rng, started, 1, 3600))
    op.updater = rng.choice(_SERVICES)
    return op


def make_succeeded(rng: random.Random) -> Operation:
    """Finished with an EvaluationResult response; often already seen by its creator."""
    op, started = _base(rng)
    total = rng.choice(_ITEM_COUNTS)
    op.metadata.CopyFrom(pack(_progress(total, total, started)))
    elapsed_seconds = rng.randrange(20, 4 * 3600)
    finished = _after(rng, started, elapsed_seconds, elapsed_seconds + 1)
    op.update_time.CopyFrom(finished)
    op.updater = rng.choice(_SERVICES)
    op.done = True
    op.response.CopyFrom(pack(_result(rng, total, elapsed_seconds)))
    if rng.random() < 0.6:
        op.seen_by_creator_time.CopyFrom(_after(rng, finished, 5, 2 * 24 * 3600))
    return op


def make_failed(rng: random.Random) -> Operation:
    """Finished with an error: a google.rpc.Status with an ErrorInfo and 2 to 4 more
    details."""
    op, started = _base(rng)
    total = rng.choice(_ITEM_COUNTS)
    done_items = rng.randrange(total)
    op.metadata.CopyFrom(pack(_progress(done_items, total, started)))
    op.update_time.CopyFrom(_after(rng, started, 1, 2 * 3600))
    op.updater = rng.choice(_SERVICES)
    op.done = True
    code, reason, message = rng.choice(_FAILURES)
    details: list[Message] = [
        error_details_pb2.ErrorInfo(
            reason=reason,
            domain="evaluator.example.com",
            metadata={
                "evaluation": op.name.removeprefix("operations/"),
                "model": rng.choice(_MODELS),
                "items_done": str(done_items),
            },
        )
    ]
    # Sample indices, not functions, so the draw does not depend on function identity.
    for index in sorted(rng.sample(range(len(_DETAILS)), rng.randint(2, 4))):
        details.append(_DETAILS[index](rng))
    op.error.CopyFrom(make_status(code, message, details))
    if rng.random() < 0.3:
        op.seen_by_creator_time.CopyFrom(_after(rng, op.update_time, 5, 24 * 3600))
    return op


# --- pieces ----------------------------------------------------------------------------------


def _base(rng: random.Random) -> tuple[Operation, timestamp_pb2.Timestamp]:
    """Name, create time and creator; and when the work started, shortly after creation."""
    op = Operation()
    op.name = f"operations/{uuid.UUID(int=rng.getrandbits(128), version=4)}"
    op.create_time.CopyFrom(_stamp(_EPOCH + rng.randrange(_MONTH), rng.randrange(10**9)))
    # Most operations are started by a service on behalf of a user; some by the service.
    if rng.random() < 0.85:
        op.creator = f"users/{rng.choice(_USERS)}@example.com"
    else:
        op.creator = rng.choice(_SERVICES)
    return op, _after(rng, op.create_time, 0, 30)


def _progress(
    done_items: int, total: int, started: timestamp_pb2.Timestamp
) -> evaluation_pb2.EvaluationProgress:
    if done_items == total:
        message = f"scored all {total} test cases"
    else:
        message = f"scoring {done_items + 1} of {total} test cases"
    return evaluation_pb2.EvaluationProgress(
        progress=done_items / total,
        message=message,
        items_done=done_items,
        items_total=total,
        started_at=started,
    )


def _result(
    rng: random.Random, total: int, elapsed_seconds: int
) -> evaluation_pb2.EvaluationResult:
    failed = sorted(rng.sample(range(1, total + 1), min(total, rng.choice((0, 0, 1, 3, 8, 25)))))
    details = struct_pb2.Struct()
    details.update(
        {
            "model": rng.choice(_MODELS),
            "dataset": f"datasets/{rng.choice(_DATASETS)}",
            "temperature": rng.choice((0.0, 0.2, 0.7)),
            "retries": rng.randrange(4),
            "cached": rng.random() < 0.5,
            "tags": rng.sample(("nightly", "regression", "canary", "rag", "baseline"), 2),
            "judge": {"model": rng.choice(_MODELS), "prompt_version": f"v{rng.randint(1, 5)}"},
            "notes": None,
        }
    )
    return evaluation_pb2.EvaluationResult(
        evaluation=f"evaluations/{rng.getrandbits(64):016x}",
        verdict=(
            evaluation_pb2.EvaluationResult.VERDICT_FAILED
            if len(failed) > total // 20
            else evaluation_pb2.EvaluationResult.VERDICT_PASSED
        ),
        scores={m: round(rng.random(), 4) for m in rng.sample(_METRICS, rng.randint(3, 8))},
        failed_test_cases=[f"tc-{i:05d}" for i in failed],
        elapsed=duration_pb2.Duration(seconds=elapsed_seconds, nanos=rng.randrange(10**9)),
        report_digest=rng.randbytes(32),
        details=details,
        tokens_used=rng.randrange(10_000, 50_000_000),
    )


_FAILURES = (
    (code_pb2.RESOURCE_EXHAUSTED, "QUOTA_EXHAUSTED", "token quota exhausted for the judge model"),
    (code_pb2.DEADLINE_EXCEEDED, "MODEL_TIMEOUT", "the model did not answer within 120s"),
    (
        code_pb2.INVALID_ARGUMENT,
        "MISSING_EXPECTED_OUTPUT",
        "the dataset has test cases without an expected answer",
    ),
    (
        code_pb2.FAILED_PRECONDITION,
        "DATASET_MODIFIED",
        "the dataset was modified while the evaluation ran",
    ),
    (code_pb2.UNAVAILABLE, "MODEL_UNAVAILABLE", "the model endpoint is unavailable"),
    (code_pb2.INTERNAL, "SCORER_CRASHED", "the scorer crashed"),
)


def _retry_info(rng: random.Random) -> Message:
    return error_details_pb2.RetryInfo(retry_delay={"seconds": rng.choice((30, 300, 3600))})


def _bad_request(rng: random.Random) -> Message:
    count = rng.randint(1, 3)
    return error_details_pb2.BadRequest(
        field_violations=[
            {
                "field": f"test_cases[{rng.randrange(5000)}].expected_output",
                "description": "must not be empty",
            }
            for _ in range(count)
        ]
    )


def _localized_message(rng: random.Random) -> Message:
    locale, text = rng.choice(
        (
            ("en-US", "The evaluation could not finish. Try again later."),
            ("de-DE", "Die Auswertung konnte nicht abgeschlossen werden."),
            ("ja-JP", "評価を完了できませんでした。後でもう一度お試しください。"),
        )
    )
    return error_details_pb2.LocalizedMessage(locale=locale, message=text)


def _help(rng: random.Random) -> Message:
    links = [
        {"description": "Quotas", "url": "https://docs.example.com/evaluator/quotas"},
        {"description": "Troubleshooting", "url": "https://docs.example.com/evaluator/errors"},
    ]
    return error_details_pb2.Help(links=links[: rng.randint(1, 2)])


def _debug_info(rng: random.Random) -> Message:
    frames = [
        f'  File "/srv/evaluator/{name}.py", line {rng.randrange(20, 900)}, in {func}'
        for name, func in rng.sample(
            (
                ("scorer", "score_batch"),
                ("judge", "ask"),
                ("client", "complete"),
                ("retry", "call"),
                ("dataset", "load"),
                ("pipeline", "run"),
            ),
            rng.randint(3, 6),
        )
    ]
    return error_details_pb2.DebugInfo(stack_entries=frames, detail="scorer worker exited")


def _resource_info(rng: random.Random) -> Message:
    return error_details_pb2.ResourceInfo(
        resource_type="evaluator.example.com/Dataset",
        resource_name=f"datasets/{rng.choice(_DATASETS)}",
        owner=f"users/{rng.choice(_USERS)}@example.com",
        description="the dataset the evaluation reads",
    )


def _quota_failure(rng: random.Random) -> Message:
    return error_details_pb2.QuotaFailure(
        violations=[
            {
                "subject": f"project:{rng.randrange(10**6, 10**7)}",
                "description": f"daily token limit of {rng.choice((1, 5, 20))}M reached",
            }
        ]
    )


def _precondition_failure(rng: random.Random) -> Message:
    return error_details_pb2.PreconditionFailure(
        violations=[
            {
                "type": "DATASET_VERSION",
                "subject": f"datasets/{rng.choice(_DATASETS)}",
                "description": "the dataset changed after the evaluation started",
            }
        ]
    )


_DETAILS: Sequence[Callable[[random.Random], Message]] = (
    _retry_info,
    _bad_request,
    _localized_message,
    _help,
    _debug_info,
    _resource_info,
    _quota_failure,
    _precondition_failure,
)

_FACTORIES: Mapping[str, Callable[[random.Random], Operation]] = {
    "running": make_running,
    "succeeded": make_succeeded,
    "failed": make_failed,
}


def _stamp(seconds: int, nanos: int = 0) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def _after(
    rng: random.Random, origin: timestamp_pb2.Timestamp, low: int, high: int
) -> timestamp_pb2.Timestamp:
    """A time between ``low`` and ``high`` seconds after ``origin``, with nanoseconds."""
    return _stamp(origin.seconds + rng.randrange(low, high), rng.randrange(10**9))


def _main(argv: Sequence[str] | None = None) -> int:
    from v1op_pb import to_json

    parser = argparse.ArgumentParser(prog="python -m bench.corpus", description=__doc__)
    parser.add_argument("-n", type=int, default=3, help="how many (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    args = parser.parse_args(argv)
    for op in make_corpus(args.n, args.seed):
        print(to_json(op, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
