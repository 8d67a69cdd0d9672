"""Coverage-guided fuzzing of the native core against the Python codec (``make fuzz-native``;
not in CI): atheris runs the routes of native_targets.py, guided by the coverage of the
Python code and of the C core, which ``make fuzz-native`` builds with
``-fsanitize=fuzzer-no-link,address,undefined`` (so that a memory error or undefined
behaviour in the C is a finding too).

Seeds: the golden files (tests/golden) and messages of the rich test schema, as text and as
wire bytes, each behind the route bytes that take it. Prints what happened, counted by
route and outcome, at every power of two of inputs run; the make target prints coverage and
the number of inputs run.

    make fuzz-native FUZZ_SECONDS=600
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parents[1] / "gen"), str(HERE.parents[1])]

with atheris.instrument_imports(include=["v1op_pb", "native_targets"]):
    import native_targets
    from hypothesis import HealthCheck, given, settings
    from test_codec_differential import REGISTRY, test_messages

    from v1op_pb import to_json


def test_one_input(data: bytes) -> None:
    native_targets.check(data)
    runs = native_targets.SEEN["inputs"]
    if runs >= 4096 and runs & (runs - 1) == 0:
        _report()  # libFuzzer ends the process without running atexit handlers


def _report() -> None:
    print("fuzz-native:", dict(sorted(native_targets.SEEN.items())), file=sys.stderr)


def _rich_messages(count: int) -> list:
    found: list = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(test_messages)
    def collect(message: object) -> None:
        found.append(message)

    collect()
    return found


def _seeds() -> str:
    corpus = Path(tempfile.mkdtemp(prefix="v1op-fuzz-native-corpus-"))
    # (route, which) heads: which picks Operation (even) or Rich (odd), and options
    text_heads = [bytes([route, which]) for route in (0, 1, 2, 6) for which in (0, 1, 33)]
    wire_heads = [bytes([route, which]) for route in (3, 4, 5) for which in (0, 1, 9, 17)]
    seeds: list[bytes] = []
    for path in sorted((HERE.parent / "golden").glob("*/*")):
        if path.suffix == ".json" and path.name != "expected.json":
            seeds += [head + path.read_bytes() for head in text_heads if head[1] % 2 == 0]
        elif path.suffix == ".binpb":
            seeds += [head + path.read_bytes() for head in wire_heads if head[1] % 2 == 0]
    for message in _rich_messages(60):
        wire = message.SerializeToString()
        try:
            text = to_json(message, registry=REGISTRY).encode()
        except Exception:  # a NaN in a Value has no JSON: the wire seeds still count
            text = b""
        rich = [h for h in text_heads if h[1] % 2 == 1]
        seeds += [head + text for head in rich if text]
        seeds += [head + wire for head in wire_heads if head[1] % 2 == 1]
    for i, seed in enumerate(seeds):
        (corpus / f"{i:05d}").write_bytes(seed)
    return str(corpus)


if __name__ == "__main__":
    atheris.Setup([*sys.argv, _seeds()], test_one_input)
    atheris.Fuzz()
