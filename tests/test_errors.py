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


# --- quoting input in messages (issue 11) -----------------------------------------------------


def test_an_excerpt_is_bounded_and_says_how_long_the_input_was():
    from v1op_pb._errors import EXCERPT_CHARS, excerpt

    assert excerpt("short") == "'short'"
    long = excerpt("x" * 100_000)
    assert long.startswith("'" + "x" * EXCERPT_CHARS + "'")
    assert long.endswith("... (100000 characters)")
    assert excerpt(b"\x00" * 1000).endswith("... (1000 bytes)")
    assert excerpt(10**5000) == "an integer of 16610 bits"  # repr would refuse it
    assert len(excerpt(list(range(10_000)))) < 400


def test_an_excerpt_escapes_what_is_not_printable():
    from v1op_pb._errors import excerpt

    quoted = excerpt("a\ud800\n\t\x00é")
    assert quoted == "'a\\ud800\\n\\t\\x00é'"
    quoted.encode("utf-8")  # no lone surrogate left: it encodes


@pytest.mark.parametrize(
    ("segments", "path"),
    [
        (["a", "\ud800"], '$.a["\\ud800"]'),
        (["tab\there"], '$["tab\\u0009here"]'),
        (['q"uote\\'], '$["q\\"uote\\\\"]'),
        (["k" * 100], '$["' + "k" * 64 + '"...(100 characters)]'),
        ([None, 1, True], "$[None][1][True]"),
    ],
)
def test_paths_are_printable_and_bounded(segments, path):
    error = ConversionError("reason", segments)
    assert error.path == path
    str(error).encode("utf-8")
