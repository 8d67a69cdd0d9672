"""ConversionError: the path it reports and how it travels."""

from __future__ import annotations

import pickle

import pytest

from v1op_pb import ConversionError


def make_error() -> ConversionError:
    error = ConversionError("expected a string, got number 5", ["reason"])
    # As the converters do while the error propagates outward.
    error.prepend(1).prepend("details").prepend("error")
    return error


def test_path_is_built_from_the_segments_prepended_on_the_way_out():
    error = make_error()
    assert error.path == "$.error.details[1].reason"
    assert error.segments == ["error", "details", 1, "reason"]
    assert str(error) == "$.error.details[1].reason: expected a string, got number 5"


@pytest.mark.parametrize(
    ("segments", "path"),
    [
        ([], "$"),
        (["a b"], '$["a b"]'),
        (['say "hi"'], '$["say \\"hi\\""]'),
        (["@type"], '$["@type"]'),
        (["fields", "0", 2], '$.fields["0"][2]'),
    ],
)
def test_keys_that_are_not_identifiers_use_the_bracket_form(segments, path):
    assert ConversionError("x", segments).path == path


def test_is_a_value_error_so_callers_catching_value_error_keep_working():
    assert issubclass(ConversionError, ValueError)


def test_pickling_keeps_the_path():
    copy = pickle.loads(pickle.dumps(make_error()))
    assert copy.path == "$.error.details[1].reason"
    assert copy.reason == "expected a string, got number 5"
