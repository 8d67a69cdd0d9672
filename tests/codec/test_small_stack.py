"""Input at the depth limit converts on a thread with a small stack (256 KiB), both ways, with
the native core (whose per-level state is on the heap, so that its C frames stay small) and
in pure-Python mode.

The conversions run in a child process: running out of stack is a crash, which must show
as this test failing rather than end the test run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from v1op_pb._codec.codec import PURE_PYTHON_VARIABLE

HERE = Path(__file__).resolve().parent

CHILD = textwrap.dedent(
    """
    import sys, threading
    sys.path[:0] = {paths!r}
    from google.protobuf import struct_pb2
    from test_codec_differential import REGISTRY, Rich
    import v1op_pb
    from v1op_pb import ConversionError
    from v1op_pb._codec import native_enabled
    from v1op_pb._codec.codec import Codec

    def rich(depth):  # depth messages: the limit is 100
        text = '{{"singleInt32":1}}'
        for _ in range(depth - 1):
            text = '{{"child":' + text + '}}'
        return text

    CASES = [  # (type, text at the limit, text one level deeper)
        (Rich, rich(100), rich(101)),
        (struct_pb2.Value, "[" * 49 + "1" + "]" * 49, "[" * 50 + "1" + "]" * 50),
        (struct_pb2.Value, '{{"a":' * 33 + "1" + "}}" * 33, '{{"a":' * 34 + "1" + "}}" * 34),
    ]

    def convert():
        for cls, text, deeper in CASES:
            message = v1op_pb.from_json(text, message_type=cls, registry=REGISTRY)
            assert v1op_pb.from_json(text.encode(), message_type=cls, registry=REGISTRY) == message
            value = v1op_pb.to_dict(message, registry=REGISTRY)
            assert v1op_pb.from_dict(value, message_type=cls, registry=REGISTRY) == message
            written = v1op_pb.to_json(message, registry=REGISTRY)
            assert v1op_pb.from_json(written, message_type=cls, registry=REGISTRY) == message
            assert Codec(REGISTRY).transcode_text(text.encode(), cls) == written.encode()
            try:
                v1op_pb.from_json(deeper, message_type=cls, registry=REGISTRY)
            except ConversionError:
                pass
            else:
                raise AssertionError("one level deeper converted")

    threading.stack_size(256 * 1024)
    failures = []
    def run():
        try:
            convert()
        except BaseException as e:
            failures.append(e)
    v1op_pb.native_stats(reset=True)
    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]
    stats = v1op_pb.native_stats()
    declined = sum(v for k, v in stats.items() if k.endswith("declined"))
    # with the core, it converted everything at the limit, and declined one level deeper
    assert not native_enabled() or (stats["parse"] and declined == len(CASES)), stats
    print("converted", stats)
    """
)


@pytest.mark.parametrize("pure_python", ["0", "1"])
def test_input_at_the_depth_limit_converts_on_a_256_kib_stack(pure_python: str) -> None:
    if os.environ.get(PURE_PYTHON_VARIABLE, "") not in ("", "0") and pure_python == "0":
        pytest.skip("pure-Python mode: the codec tests run without the native core")
    paths = [str(HERE), str(HERE.parent), str(HERE.parents[1] / "gen"), str(HERE.parents[1])]
    env = {**os.environ, PURE_PYTHON_VARIABLE: pure_python}
    done = subprocess.run(
        [sys.executable, "-c", CHILD.format(paths=paths)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr[-3000:])
    assert "converted" in done.stdout
