"""The standing fuzz suite's bounded half: mutations of the golden files through every codec,
Python values no JSON text could hold through from_dict, and every input the fuzzers ever
found (fuzz/regressions/), each checked by the same oracles as ``make fuzz``.

An input may be refused, but only with a ConversionError; an input that is taken converts
back to the same value (fuzz/oracles.py says exactly what is checked).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.oracles import check_binary, check_json, check_text, golden_seeds
from v1op_pb import ConversionError, from_dict, to_json

REGRESSIONS = Path(__file__).resolve().parent.parent / "fuzz" / "regressions"
CHECKS = {"json": check_json, "binary": check_binary, "text": check_text}
SEEDS = {kind: [data for _, data in golden_seeds(kind)] for kind in CHECKS}

MUTATION = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,  # the same inputs on every run: a failure here is reproducible
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed with a few byte-level edits: flips, inserts (often of a byte that means
    something to the format), deletions, truncation, a copied span."""
    data = bytearray(draw(st.sampled_from(seeds)))
    meaningful = st.sampled_from(list(b'{}[]<>":,\\ \n#0-9eE.+/@\x00\x80\xff'))
    for _ in range(draw(st.integers(1, 4))):
        edit = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "copy"]))
        at = draw(st.integers(0, len(data)))
        if edit == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "insert":
            data[at:at] = bytes([draw(st.one_of(meaningful, st.integers(0, 255)))])
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif edit == "truncate":
            del data[at:]
        elif edit == "copy" and data:
            start = draw(st.integers(0, len(data) - 1))
            data[at:at] = data[start : start + draw(st.integers(1, 64))]
    return bytes(data)


@pytest.mark.parametrize("kind", sorted(CHECKS))
def test_every_golden_seed_passes_its_oracle(kind):
    for data in SEEDS[kind]:
        CHECKS[kind](data)


@MUTATION
@given(data=mutated(SEEDS["json"]))
def test_mutated_json(data):
    check_json(data)


@MUTATION
@given(data=mutated(SEEDS["binary"]))
def test_mutated_binary(data):
    check_binary(data)


@MUTATION
@given(data=mutated(SEEDS["text"]))
def test_mutated_text(data):
    check_text(data)


@pytest.mark.parametrize(
    "path",
    sorted(p for p in REGRESSIONS.rglob("*") if p.is_file() and p.parent.name in CHECKS),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_what_the_fuzzers_found_stays_fixed(path):
    CHECKS[path.parent.name](path.read_bytes())


# --- from_dict: Python values that no JSON text holds ------------------------------------------

KEYS = st.one_of(
    st.sampled_from(["name", "done", "metadata", "error", "response", "@type", "value"]),
    st.text(max_size=8),
    st.none(),
    st.integers(-3, 3),
    st.booleans(),
    st.tuples(st.integers(0, 2)),
)
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.binary(max_size=4),
    st.sampled_from(
        [
            "type.googleapis.com/google.protobuf.Value",
            "type.googleapis.com/google.protobuf.Struct",
            "type.googleapis.com/google.rpc.ErrorInfo",
            "type.googleapis.com/google.protobuf.Any",
            "operations/x",
            "2026-11-30T00:00:00Z",
            "1.5s",
            "NaN",
        ]
    ),
)
PYTHON_VALUES = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner),
        st.dictionaries(KEYS, inner, max_size=4),
    ),
    max_leaves=20,
)


@MUTATION
@given(obj=st.dictionaries(KEYS, PYTHON_VALUES, max_size=5))
def test_from_dict_of_any_python_value_is_a_message_or_a_conversion_error(obj):
    try:
        operation = from_dict(obj)
    except ConversionError as e:
        str(e)  # the message formats, whatever the keys were
        return
    # What from_dict takes, to_json writes, and it reads back the same.
    text = to_json(operation)
    assert to_json(from_dict(json.loads(text))) == text
