"""The producer side of the client against the reference server: create, update, finalize,
and the run context manager with its throttled progress reports."""

from __future__ import annotations

import re

import pytest
from conftest import make_progress, make_result
from google.api_core.exceptions import FailedPrecondition, PermissionDenied, ResourceExhausted
from google.protobuf import empty_pb2
from google.rpc import code_pb2, error_details_pb2

from v1op_pb import make_status, pack
from v1op_pb.client import OperationClient, ProgressThrottle

EVAL, ADA = "services/eval", "users/ada"


@pytest.fixture(scope="module")
def service(served):
    with OperationClient(served.target, token=served.tokens[EVAL], timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def ada(served):
    with OperationClient(served.target, token=served.tokens[ADA], timeout=10) as client:
        yield client


def test_create_with_typed_metadata_on_behalf_of_a_user(service, ada):
    created = service.create(make_progress(0.0, "queued"), on_behalf_of=ADA)
    assert (created.creator, created.done) == (ADA, False)
    assert created.metadata == pack(make_progress(0.0, "queued"))
    assert ada.get(created.name) == created


def test_create_without_on_behalf_of_makes_the_service_the_creator(service):
    created = service.create()
    assert created.creator == EVAL
    assert not created.HasField("metadata")


def test_users_may_not_create(ada):
    with pytest.raises(PermissionDenied, match="only services create"):
        ada.create(make_progress())


def test_update_replaces_the_metadata(service, ada):
    created = service.create(make_progress(0.1), on_behalf_of=ADA)
    updated = service.update(created.name, make_progress(0.6, "sixty"))
    assert updated.metadata == pack(make_progress(0.6, "sixty"))
    assert ada.get(created.name).metadata == updated.metadata


def test_finalize_with_a_response(service, ada):
    created = service.create(make_progress(), on_behalf_of=ADA)
    done = service.finalize(
        created.name, response=make_result("e-prod"), operation_metadata=make_progress(1)
    )
    assert done.done and done.metadata == pack(make_progress(1))
    assert ada.result(created.name, timeout=5) == make_result("e-prod")


def test_finalize_with_a_status_keeps_its_typed_details(service, ada):
    created = service.create(make_progress(), on_behalf_of=ADA)
    status = make_status(
        code_pb2.RESOURCE_EXHAUSTED,
        "token quota exhausted",
        [error_details_pb2.ErrorInfo(reason="QUOTA", domain="example.com")],
    )
    service.finalize(created.name, error=status)
    with pytest.raises(ResourceExhausted, match="token quota exhausted") as info:
        ada.result(created.name, timeout=5)
    assert info.value.details == [error_details_pb2.ErrorInfo(reason="QUOTA", domain="example.com")]


def test_finalize_with_an_exception(service, ada):
    created = service.create(make_progress(), on_behalf_of=ADA)
    done = service.finalize(created.name, error=ValueError("bad input row 7"))
    assert (done.error.code, done.error.message) == (
        code_pb2.UNKNOWN,
        "ValueError: bad input row 7",
    )


def test_finalize_takes_exactly_one_outcome(service):
    created = service.create()
    with pytest.raises(ValueError, match="exactly one of response and error"):
        service.finalize(created.name)
    with pytest.raises(ValueError, match="exactly one of response and error"):
        service.finalize(created.name, response=make_result(), error=make_status(2, "x"))
    with pytest.raises(ValueError, match="other than OK"):
        service.finalize(created.name, error=make_status(code_pb2.OK))


# --- run: the context manager ---------------------------------------------------------------


def test_run_succeeds_with_its_response(service, ada):
    with service.run(make_progress(0.0), on_behalf_of=ADA) as run:
        assert ada.get(run.name).creator == ADA
        run.report(make_progress(0.5, "half"))
        run.succeed(make_result("e-run"))
    assert ada.result(run.name, timeout=5) == make_result("e-run")


def test_run_finalizes_with_the_error_of_a_block_that_raises(service, ada):
    with (
        pytest.raises(ResourceExhausted, match="out of tokens"),
        service.run(make_progress(), on_behalf_of=ADA) as run,
    ):
        raise ResourceExhausted(
            "out of tokens", details=[error_details_pb2.RetryInfo()]
        )  # the block's own exception propagates
    failed = ada.get(run.name)
    assert failed.done
    assert (failed.error.code, failed.error.message) == (
        code_pb2.RESOURCE_EXHAUSTED,
        "out of tokens",
    )
    assert len(failed.error.details) == 1


def test_run_turns_any_exception_into_a_status(service, ada):
    with pytest.raises(KeyError), service.run(on_behalf_of=ADA) as run:
        raise KeyError("model")
    failed = ada.get(run.name)
    assert (failed.error.code, failed.error.message) == (code_pb2.UNKNOWN, "KeyError: 'model'")


def test_run_without_an_outcome_succeeds_with_empty(service, ada):
    with service.run(make_progress(), on_behalf_of=ADA) as run:
        pass
    assert ada.result(run.name, timeout=5) == empty_pb2.Empty()


def test_run_throttles_progress_and_the_last_report_goes_with_finalize(service, ada):
    # An interval no test outlives: only the first report is sent at once.
    with service.run(make_progress(0.0), on_behalf_of=ADA, progress_interval=3600) as run:
        for fraction in (0.1, 0.2, 0.3):
            run.report(make_progress(fraction))
        assert ada.get(run.name).metadata == pack(make_progress(0.1))
        run.succeed(make_result())
    assert ada.get(run.name).metadata == pack(make_progress(0.3))


def test_run_flush_sends_the_held_report(service, ada):
    with service.run(on_behalf_of=ADA, progress_interval=3600) as run:
        run.report(make_progress(0.1))
        run.report(make_progress(0.2))
        run.flush()
        assert ada.get(run.name).metadata == pack(make_progress(0.2))


def test_run_with_interval_zero_sends_every_report(service, ada):
    with service.run(on_behalf_of=ADA, progress_interval=0) as run:
        for fraction in (0.1, 0.2):
            run.report(make_progress(fraction))
            assert ada.get(run.name).metadata == pack(make_progress(fraction))


def test_the_throttle_on_a_clock_of_its_own():
    now = [0.0]
    throttle = ProgressThrottle(1.0, clock=lambda: now[0])
    a, b, c, d = (make_progress(x) for x in (0.1, 0.2, 0.3, 0.4))
    assert throttle.offer(a) is a  # the first goes at once
    now[0] = 0.5
    assert throttle.offer(b) is None  # held
    assert throttle.offer(c) is None  # replaces b
    now[0] = 1.0
    assert throttle.offer(d) is d  # the interval has passed: the newest goes
    assert throttle.take_held() is None
    now[0] = 1.2
    assert throttle.offer(a) is None
    assert throttle.take_held() is a
    with pytest.raises(ValueError, match=re.escape("progress interval -1 is negative")):
        ProgressThrottle(-1)


def test_a_failed_finalize_does_not_hide_the_blocks_exception(service, ada, caplog):
    # The user aborts while the work runs: finalizing with the block's error then fails
    # (FAILED_PRECONDITION), which goes to the log; the block's exception propagates.
    with pytest.raises(KeyError, match="model"), service.run(on_behalf_of=ADA) as run:
        ada.abort(run.name)
        raise KeyError("model")
    assert "could not finalize" in caplog.text and "already finished" in caplog.text
    assert ada.get(run.name).error.code == code_pb2.CANCELLED


def test_a_failed_finalize_after_a_clean_block_raises(service, ada):
    with (
        pytest.raises(FailedPrecondition, match="already finished"),
        service.run(on_behalf_of=ADA) as run,
    ):
        ada.abort(run.name)
