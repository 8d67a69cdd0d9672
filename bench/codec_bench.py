"""Benchmark of the JSON codec, side by side with the alternatives, in one process.

On a seeded corpus of realistic Operations (``bench.corpus``), times per operation:

* PARSE, JSON text to message: ours (``v1op_pb.from_json``); protobuf's
  ``json_format.Parse``; the documented client's ``V1Operation.from_json`` (pydantic
  models); and a floor, ``orjson.loads`` of the text plus ``Operation.FromString`` of its
  binary form: what a JSON parse and a protobuf parse cost when both are done in C;
* EMIT, message to JSON text: ours (``v1op_pb.to_json``); ``json_format.MessageToJson``;
  the documented client's ``model.to_json()``; and a floor, ``op.SerializeToString()`` plus
  ``orjson.dumps`` of the operation's JSON value, both in C.
* Ours in pure-Python mode (the native core off) beside ours, and ours on the other
  surfaces: ``from_dict``/``to_dict``, ``V1Operation.from_json``/``to_json`` and one
  NDJSON line to the next (``Codec.transcode_text``, as ``v1op convert`` does).
* With ``--baseline REF`` (e.g. ``main``): the codec of another commit beside ours, on
  every surface of ours, in the same process and rounds: REF's ``v1op_pb`` is copied out of
  git and its native core built, as the package ``v1op_pb_baseline``, in a temporary
  folder.

"Ours" is the codec with its native core (``v1op_pb/_codec/native``); it must decline
nothing on the corpus, and the count of declines is printed.

The contenders run interleaved, each over the whole corpus per round, in an order rotated
every round; the best round counts, the median is shown beside it. Then it streams NDJSON
files of 1,000 and 100,000 lines through ``v1op convert --from ndjson --to ndjson`` as a
child process each: wall time, lines/s, MB/s, and the child's peak RSS.

Prints Markdown tables and the machine facts. Measures only: a target missed prints MISS,
and the exit status is still 0; it exits 1 only when something failed (a codec raised or
disagreed on the corpus, or the converter failed or lost lines).

    .venv/bin/python -m bench.codec_bench            # full run, about a minute on 2 cores
    .venv/bin/python -m bench.codec_bench --quick    # smoke run, under 15 s
    .venv/bin/python -m bench.codec_bench --baseline main   # ours against main's codec
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import importlib
import importlib.metadata
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

import orjson
from eval_studio_client.api.models.v1_operation import V1Operation as Documented
from google.protobuf import json_format

import v1op_pb
from v1op_pb import Operation, V1Operation
from v1op_pb._codec import native_enabled, native_stats, set_native
from v1op_pb._codec.codec import Codec

from .corpus import make_corpus
from .machine import cpu_fact, cpu_in_use, filesystem, os_fact, protobuf_fact, python_fact

# The payload types the corpus packs into Any, for the converter (ours and json_format
# find them in the default pool, which importing bench.corpus fills).
PAYLOAD_MODULE = "v1op.example.v1.evaluation_pb2"

# The targets (ours against the others, best rounds); printed as PASS or MISS.
PARSE_VS_JSON_FORMAT = 19.0
EMIT_VS_JSON_FORMAT = 9.0
VS_DOCUMENTED = 2.5  # parse and emit
LINES_PER_SECOND = 110_000  # NDJSON streaming, without start-up
RSS_GROWTH = 2.0  # peak RSS of the big NDJSON run at most this many times the small one's
# Against --baseline: no surface slower than the baseline's (best rounds).
VS_BASELINE = 1.0

OURS, JSON_FORMAT, DOCUMENTED, FLOOR = "ours", "json_format", "documented", "floor"
PURE, BASELINE = "ours, pure Python", "baseline"
CONTENDERS = (OURS, PURE, BASELINE, JSON_FORMAT, DOCUMENTED, FLOOR)
BASELINE_STEPS = ("parse", "emit", "from_dict", "to_dict", "NDJSON line")
WHAT = {
    ("NDJSON line", OURS): "Codec().transcode_text(line, Operation)",
    **{(step, BASELINE): "the same, with the baseline's codec" for step in BASELINE_STEPS},
    ("parse", PURE): "v1op_pb.from_json(text), native core off",
    ("emit", PURE): "v1op_pb.to_json(op), native core off",
    ("from_dict", OURS): "v1op_pb.from_dict(value)",
    ("from_dict", PURE): "v1op_pb.from_dict(value), native core off",
    ("to_dict", OURS): "v1op_pb.to_dict(op)",
    ("to_dict", PURE): "v1op_pb.to_dict(op), native core off",
    ("V1Operation parse", OURS): "V1Operation.from_json(text)",
    ("V1Operation parse", DOCUMENTED): "V1Operation.from_json(text) (documented)",
    ("V1Operation emit", OURS): "V1Operation.to_json()",
    ("V1Operation emit", DOCUMENTED): "model.to_json() (documented)",
    ("parse", OURS): "v1op_pb.from_json(text)",
    ("parse", JSON_FORMAT): "json_format.Parse(text, Operation())",
    ("parse", DOCUMENTED): "V1Operation.from_json(text)",
    ("parse", FLOOR): "orjson.loads(text) + Operation.FromString(binary)",
    ("emit", OURS): "v1op_pb.to_json(op)",
    ("emit", JSON_FORMAT): "json_format.MessageToJson(op, indent=None)",
    ("emit", DOCUMENTED): "model.to_json()",
    ("emit", FLOOR): "op.SerializeToString() + orjson.dumps(value)",
}


@dataclasses.dataclass(frozen=True)
class Settings:
    count: int  # corpus size
    rounds: int  # timed rounds per contender
    seed: int
    small_lines: int  # NDJSON lines of the small run
    big_lines: int  # NDJSON lines of the big run; 0: no NDJSON runs


FULL = Settings(count=1000, rounds=20, seed=0, small_lines=1000, big_lines=100_000)
QUICK = dataclasses.replace(FULL, count=500, rounds=3, big_lines=10_000)


# --- the corpus and its forms ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Forms:
    """Each corpus operation in every form a contender starts from."""

    ops: list[Operation]
    texts: list[str]  # ours, compact
    binaries: list[bytes]
    values: list[object]  # orjson.loads(text)
    models: list[Documented]  # Documented.from_json(text)


def build(settings: Settings) -> tuple[Forms, list[str]]:
    """The corpus in all its forms, and what is wrong with it: every contender must read
    (and ours and json_format must write) every operation, agreeing on its value."""
    ops = make_corpus(settings.count, settings.seed)
    problems: list[str] = []
    texts, binaries, values, models = [], [], [], []
    for i, op in enumerate(ops):
        try:
            text = v1op_pb.to_json(op)
        except Exception as e:
            problems.append(f"#{i} {op.name}: ours to_json raised {e!r}")
            continue
        value = orjson.loads(text)
        problems += [f"#{i} {op.name}: {p}" for p in _disagreements(op, text, value)]
        try:
            models.append(Documented.from_json(text))
        except Exception as e:
            problems.append(f"#{i} {op.name}: documented from_json raised {e!r}")
            continue
        texts.append(text)
        binaries.append(op.SerializeToString())
        values.append(value)
    forms = Forms(ops=ops, texts=texts, binaries=binaries, values=values, models=models)
    return forms, problems


def _disagreements(op: Operation, text: str, value: object) -> list[str]:
    found = []
    try:
        if v1op_pb.from_json(text) != op:
            found.append("ours from_json(to_json(op)) != op")
    except Exception as e:
        found.append(f"ours from_json raised {e!r}")
    try:
        # As values, not bytes: the two write a map inside an Any's bytes in either order.
        parsed = json_format.Parse(text, Operation())
        if json_format.MessageToDict(parsed) != value:
            found.append("json_format.Parse reads ours' text as another operation")
        if orjson.loads(json_format.MessageToJson(op, indent=None)) != value:
            found.append("json_format.MessageToJson and ours write different values")
    except Exception as e:
        found.append(f"json_format raised {e!r}")
    return found


# --- timing ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Contender:
    step: str  # parse or emit
    name: str  # one of CONTENDERS
    run: Callable[[], None]  # one pass over the whole corpus


def contenders(forms: Forms, baseline: ModuleType | None = None) -> list[Contender]:
    texts, ops, models = forms.texts, forms.ops, forms.models
    pairs = list(zip(forms.texts, forms.binaries, strict=True))
    op_values = list(zip(forms.ops, forms.values, strict=True))
    from_json, to_json, loads, dumps = (
        v1op_pb.from_json,
        v1op_pb.to_json,
        orjson.loads,
        orjson.dumps,
    )
    parse, message_to_json = json_format.Parse, json_format.MessageToJson
    from_string, documented_from_json = Operation.FromString, Documented.from_json

    def parse_ours() -> None:
        for text in texts:
            from_json(text)

    def parse_json_format() -> None:
        for text in texts:
            parse(text, Operation())

    def parse_documented() -> None:
        for text in texts:
            documented_from_json(text)

    def parse_floor() -> None:
        for text, data in pairs:
            loads(text)
            from_string(data)

    def emit_ours() -> None:
        for op in ops:
            to_json(op)

    def emit_json_format() -> None:
        for op in ops:
            message_to_json(op, indent=None)

    def emit_documented() -> None:
        for model in models:
            model.to_json()

    def emit_floor() -> None:
        for op, value in op_values:
            op.SerializeToString()
            dumps(value)

    values = forms.values
    from_dict, to_dict = v1op_pb.from_dict, v1op_pb.to_dict
    v1_from_json = V1Operation.from_json
    v1_models = [V1Operation.from_json(text) for text in texts]

    def from_dict_ours() -> None:
        for value in values:
            from_dict(value)

    def to_dict_ours() -> None:
        for op in ops:
            to_dict(op)

    def v1_parse() -> None:
        for text in texts:
            v1_from_json(text)

    def v1_emit() -> None:
        for model in v1_models:
            model.to_json()

    lines = [text.encode() for text in texts]
    transcode = Codec().transcode_text

    def transcode_ours() -> None:
        for line in lines:
            transcode(line, Operation)

    return [
        Contender("parse", PURE, _pure(parse_ours)),
        Contender("emit", PURE, _pure(emit_ours)),
        Contender("from_dict", OURS, from_dict_ours),
        Contender("from_dict", PURE, _pure(from_dict_ours)),
        Contender("to_dict", OURS, to_dict_ours),
        Contender("to_dict", PURE, _pure(to_dict_ours)),
        Contender("V1Operation parse", OURS, v1_parse),
        Contender("V1Operation parse", DOCUMENTED, parse_documented),
        Contender("V1Operation emit", OURS, v1_emit),
        Contender("V1Operation emit", DOCUMENTED, emit_documented),
        Contender("parse", OURS, parse_ours),
        Contender("parse", JSON_FORMAT, parse_json_format),
        Contender("parse", DOCUMENTED, parse_documented),
        Contender("parse", FLOOR, parse_floor),
        Contender("emit", OURS, emit_ours),
        Contender("emit", JSON_FORMAT, emit_json_format),
        Contender("emit", DOCUMENTED, emit_documented),
        Contender("emit", FLOOR, emit_floor),
        Contender("NDJSON line", OURS, transcode_ours),
        *_baseline(forms, baseline),
    ]


def _baseline(forms: Forms, package: ModuleType | None) -> list[Contender]:
    """The baseline's codec on ours' surfaces (nothing without one)."""
    if package is None:
        return []
    texts, ops, values = forms.texts, forms.ops, forms.values
    lines = [text.encode() for text in texts]
    from_json, to_json, from_dict, to_dict = (
        package.from_json,
        package.to_json,
        package.from_dict,
        package.to_dict,
    )
    transcode = importlib.import_module(f"{package.__name__}._codec.codec").Codec().transcode_text

    def parse() -> None:
        for text in texts:
            from_json(text)

    def emit() -> None:
        for op in ops:
            to_json(op)

    def dict_in() -> None:
        for value in values:
            from_dict(value)

    def dict_out() -> None:
        for op in ops:
            to_dict(op)

    def line() -> None:
        for data in lines:
            transcode(data, Operation)

    runs = (parse, emit, dict_in, dict_out, line)
    return [Contender(step, BASELINE, run) for step, run in zip(BASELINE_STEPS, runs, strict=True)]


def build_baseline(ref: str, workdir: Path) -> ModuleType:
    """REF's v1op_pb, out of git, with its native core built: as v1op_pb_baseline."""
    root = Path(__file__).resolve().parents[1]
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", ref, "v1op_pb"], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(workdir, filter="data")
    package = workdir / "v1op_pb_baseline"
    (workdir / "v1op_pb").rename(package)
    for source in package.rglob("*.py"):  # the core is found by its absolute name
        text = source.read_text()
        source.write_text(
            text.replace('"v1op_pb._codec._native"', '"v1op_pb_baseline._codec._native"')
        )
    native = package / "_codec" / "native"
    setup = (
        "from setuptools import Extension, setup\n"
        f"setup(name='v1op_pb_baseline', py_modules=[], ext_modules=[Extension("
        f"'v1op_pb_baseline._codec._native', sources={sorted(map(str, native.glob('*.c')))!r}, "
        "extra_compile_args=['-std=c11', '-O3', '-Wall', '-Wextra', '-Wno-unused-parameter'])])\n"
    )
    subprocess.run(
        [sys.executable, "-c", setup, "-q", "build_ext", "--inplace"],
        cwd=workdir,
        check=True,
        capture_output=True,
    )
    sys.path.insert(0, str(workdir))
    return importlib.import_module("v1op_pb_baseline")


def _pure(run: Callable[[], None]) -> Callable[[], None]:
    """The same pass with the native core off (the codec's pure-Python mode)."""

    def pure() -> None:
        previous = set_native(False)
        try:
            run()
        finally:
            set_native(previous)

    return pure


@dataclasses.dataclass(frozen=True)
class Timing:
    step: str
    name: str
    rounds_ns: list[int]  # one pass over the corpus per round
    count: int  # operations per pass

    @property
    def best_us(self) -> float:
        return min(self.rounds_ns) / self.count / 1e3

    @property
    def median_us(self) -> float:
        return statistics.median(self.rounds_ns) / self.count / 1e3


def time_contenders(runs: Sequence[Contender], rounds: int, count: int) -> list[Timing]:
    """Each contender once unmeasured (ours compiles its per-type plans on first use), then
    ``rounds`` rounds of every contender over the whole corpus, in an order rotated by one
    each round; the collector runs before each pass, and stays enabled during it."""
    for contender in runs:
        contender.run()
    samples: list[list[int]] = [[] for _ in runs]
    for r in range(rounds):
        for k in range(len(runs)):
            i = (r + k) % len(runs)
            gc.collect()
            start = time.perf_counter_ns()
            runs[i].run()
            samples[i].append(time.perf_counter_ns() - start)
    return [Timing(c.step, c.name, s, count) for c, s in zip(runs, samples, strict=True)]


# --- NDJSON through v1op convert --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StreamRun:
    lines: int
    to: str  # the output format: ndjson or delimited
    bytes_in: int
    seconds: float  # wall time of the child, start-up included
    cpu_seconds: float  # the child's user + system time
    peak_rss_kib: int  # the child's own, from wait4
    exit_status: int
    lines_out: int
    same_values: bool  # every output line has the JSON value of its input line
    stderr_tail: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0 and self.lines_out == self.lines and self.same_values


def write_ndjson(path: Path, texts: Sequence[str], lines: int) -> int:
    """``lines`` lines cycling through ``texts``, written a corpus at a time; the size."""
    block = ("\n".join(texts) + "\n").encode("utf-8")
    whole, rest = divmod(lines, len(texts))
    with open(path, "wb") as f:
        for _ in range(whole):
            f.write(block)
        f.write("".join(text + "\n" for text in texts[:rest]).encode("utf-8"))
    return path.stat().st_size


def convert_command(source: Path, target: Path, to: str = "ndjson") -> list[str]:
    return [
        sys.executable,
        "-m",
        "v1op_pb.cli",
        "convert",
        "--from",
        "ndjson",
        "--to",
        to,
        "--import",
        PAYLOAD_MODULE,
        str(source),
        "-o",
        str(target),
    ]


def stream(workdir: Path, texts: Sequence[str], lines: int, to: str = "ndjson") -> StreamRun:
    """``v1op convert`` of an NDJSON file of ``lines`` lines, as a child process of its own;
    its peak RSS is its own (``wait4``), not the maximum over all children so far."""
    source, target = workdir / f"in-{lines}.ndjson", workdir / f"out-{lines}.{to}"
    log = workdir / f"convert-{lines}-{to}.log"
    size = write_ndjson(source, texts, lines)
    with open(log, "wb") as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(
            convert_command(source, target, to),
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
        )
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    peak = usage.ru_maxrss // 1024 if sys.platform == "darwin" else usage.ru_maxrss
    if to == "delimited":
        records = _delimited_values(target) if target.exists() else []
        lines_out = len(records)
        same_values = lines_out == lines and _same_records(source, records)
    else:
        lines_out = _count_lines(target) if target.exists() else 0
        same_values = lines_out == lines and _same_values(source, target)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    for path in (source, target):
        path.unlink(missing_ok=True)
    return StreamRun(
        lines=lines,
        to=to,
        bytes_in=size,
        seconds=seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_kib=peak,
        exit_status=proc.returncode,
        lines_out=lines_out,
        same_values=same_values,
        stderr_tail=tail,
    )


def _count_lines(path: Path) -> int:
    count = 0
    last = b"\n"
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")  # a last line without its newline counts too


def _delimited_values(path: Path) -> list[object]:
    """The JSON value of each record of a varint-delimited binary file."""
    from google.protobuf.internal.decoder import _DecodeVarint  # type: ignore[attr-defined]

    data = path.read_bytes()
    values, at = [], 0
    while at < len(data):
        size, at = _DecodeVarint(data, at)
        values.append(v1op_pb.to_dict(Operation.FromString(data[at : at + size])))
        at += size
    return values


def _same_records(source: Path, records: Sequence[object]) -> bool:
    with open(source, "rb") as f:
        return all(orjson.loads(line) == record for line, record in zip(f, records, strict=False))


def _same_values(a: Path, b: Path) -> bool:
    """Line by line, the same JSON values (not bytes: a map's keys may come out in another
    order, as protobuf keeps no order for them)."""
    with open(a, "rb") as fa, open(b, "rb") as fb:
        for line_a, line_b in zip(fa, fb, strict=False):
            if line_a == line_b:
                continue
            try:
                if orjson.loads(line_a) != orjson.loads(line_b):
                    return False
            except orjson.JSONDecodeError:
                return False
    return True


# --- reporting -------------------------------------------------------------------------------


def codec_table(timings: Sequence[Timing], ref: str | None = None) -> str:
    columns = ["Step", "Contender", "What", "µs/op (best)", "µs/op (median)", "x vs ours"]
    rows = ["| " + " | ".join(columns) + " |", "|---|---|---|" + "--:|" * (len(columns) - 3)]
    for t in timings:
        ours = _find(timings, t.step, OURS)
        ratio = "1.00x" if t.name == OURS else f"{t.best_us / ours.best_us:.2f}x"
        name = f"{t.name} ({ref})" if t.name == BASELINE else t.name
        rows.append(
            f"| {t.step} | {name} | `{WHAT[t.step, t.name]}` "
            f"| {t.best_us:,.1f} | {t.median_us:,.1f} | {ratio} |"
        )
    return "\n".join(rows)


def baseline_checks(timings: Sequence[Timing], ref: str) -> list[str]:
    lines = []
    for step in BASELINE_STEPS:
        ours, theirs = _find(timings, step, OURS).best_us, _find(timings, step, BASELINE).best_us
        lines.append(
            f"{step}: {ref}'s codec takes {theirs / ours:.2f}x ours ({theirs:.2f} against "
            f"{ours:.2f} µs; target: no slower, >= {VS_BASELINE:.2f}x): "
            f"{_verdict(theirs / ours >= VS_BASELINE)}"
        )
    return lines


def codec_checks(timings: Sequence[Timing], stats: dict[str, int]) -> list[str]:
    lines = []
    for step, target in (("parse", PARSE_VS_JSON_FORMAT), ("emit", EMIT_VS_JSON_FORMAT)):
        ours = _find(timings, step, OURS).best_us
        vs_json_format = _find(timings, step, JSON_FORMAT).best_us / ours
        vs_documented = _find(timings, step, DOCUMENTED).best_us / ours
        vs_pure = _find(timings, step, PURE).best_us / ours
        lines.append(
            f"{step}: json_format takes {vs_json_format:.2f}x ours (target >= {target:g}x): "
            f"{_verdict(vs_json_format >= target)}; documented takes {vs_documented:.2f}x ours "
            f"(target >= {VS_DOCUMENTED:g}x): {_verdict(vs_documented >= VS_DOCUMENTED)}; "
            f"pure Python takes {vs_pure:.2f}x ours"
        )
    declined = (
        stats["parse_declined"]
        + stats["emit_declined"]
        + stats["emit_text_declined"]
        + stats["parse_text_declined"]
        + stats["wire_refused"]
    )
    lines.append(
        f"native core: {stats['parse']:,} parses ({stats['parse_text']:,} straight from "
        f"text), {stats['emit']:,} emits (JSON values) and "
        f"{stats['emit_text']:,} emits straight to text (to_json), "
        f"{declined} declined (target 0): {_verdict(native_enabled() and declined == 0)}"
    )
    return lines


def stream_table(runs: Sequence[StreamRun]) -> str:
    columns = ["Lines", "To", "MB in", "Wall (s)", "Lines/s", "MB/s", "Child CPU (s)"]
    columns += ["Peak RSS (MiB)", "Lines out", "Same values"]
    rows = ["| " + " | ".join(columns) + " |", "|" + "--:|" * (len(columns) - 1) + ":-:|"]
    for r in runs:
        rows.append(
            f"| {r.lines:,} | {r.to} | {r.bytes_in / 1e6:,.1f} | {r.seconds:.2f} "
            f"| {r.lines / r.seconds:,.0f} | {r.bytes_in / 1e6 / r.seconds:,.1f} "
            f"| {r.cpu_seconds:.2f} | {r.peak_rss_kib / 1024:,.1f} | {r.lines_out:,} "
            f"| {'yes' if r.same_values else 'no'} |"
        )
    return "\n".join(rows)


def stream_checks(small: StreamRun, bigs: Sequence[StreamRun]) -> list[str]:
    lines = []
    for big in bigs:
        if big.seconds <= small.seconds:
            continue
        # The difference leaves out what both runs pay once: start-up, imports, plans.
        extra_lines, extra_seconds = big.lines - small.lines, big.seconds - small.seconds
        extra_mb = (big.bytes_in - small.bytes_in) / 1e6
        rate = extra_lines / extra_seconds
        lines.append(
            f"streaming rate to {big.to} without start-up (the {big.lines:,}-line run minus "
            f"the {small.lines:,}-line one): {rate:,.0f} lines/s, "
            f"{extra_mb / extra_seconds:,.1f} MB/s (target >= {LINES_PER_SECOND:,} lines/s): "
            f"{_verdict(rate >= LINES_PER_SECOND)}"
        )
    big = bigs[0]
    growth = big.peak_rss_kib / small.peak_rss_kib
    lines.append(
        f"memory: {_verdict(growth <= RSS_GROWTH)} peak RSS with {big.lines:,} lines is "
        f"{growth:.2f}x that with {small.lines:,} (target <= {RSS_GROWTH:g}x)"
    )
    return lines


def stream_failures(runs: Sequence[StreamRun]) -> list[str]:
    found = []
    for r in runs:
        if r.exit_status != 0:
            found.append(
                f"v1op convert of {r.lines:,} lines exited with status {r.exit_status}:\n"
                f"{r.stderr_tail}"
            )
        elif r.lines_out != r.lines:
            found.append(f"v1op convert of {r.lines:,} lines wrote {r.lines_out:,} lines")
        elif not r.same_values:
            found.append(f"v1op convert of {r.lines:,} lines changed the value of some")
    return found


def machine_facts(workdir: Path, busy: float | None) -> list[str]:
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return [
        cpu_fact(busy),
        f"Load average (1, 5, 15 min): {load}",
        os_fact(),
        python_fact(),
        protobuf_fact(),
        f"orjson: {orjson.__version__}",
        f"eval-studio-client: {importlib.metadata.version('eval-studio-client')}",
        f"NDJSON files on {filesystem(workdir)}",
    ]


def _find(timings: Sequence[Timing], step: str, name: str) -> Timing:
    return next(t for t in timings if t.step == step and t.name == name)


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _note(text: str) -> None:
    print(f"bench: {text} ...", file=sys.stderr, flush=True)


# --- command line ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.codec_bench",
        description="Benchmark the JSON codec against protobuf's json_format, the documented "
        "client and a C floor, and stream NDJSON through v1op convert; print Markdown tables.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke run, under 15 s ({QUICK.count} operations, {QUICK.rounds} rounds, "
        f"NDJSON of {QUICK.small_lines:,} and {QUICK.big_lines:,} lines)",
    )
    parser.add_argument("-n", "--count", type=int, help=f"operations in the corpus ({FULL.count})")
    parser.add_argument(
        "--rounds", type=int, help=f"timed rounds per contender; the best counts ({FULL.rounds})"
    )
    parser.add_argument("--seed", type=int, help=f"corpus seed ({FULL.seed})")
    parser.add_argument(
        "--lines",
        type=int,
        help=f"NDJSON lines of the big run ({FULL.big_lines:,}; the small run has "
        f"{FULL.small_lines:,}); 0 skips the NDJSON runs",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        help="where the NDJSON files live (default: the system temporary directory)",
    )
    parser.add_argument(
        "--baseline",
        metavar="REF",
        help="also time the codec of this git commit (e.g. main), built in a temporary folder",
    )
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    base = QUICK if args.quick else FULL
    overrides = {
        "count": args.count,
        "rounds": args.rounds,
        "seed": args.seed,
        "big_lines": args.lines,
    }
    settings = dataclasses.replace(
        base, **{key: value for key, value in overrides.items() if value is not None}
    )
    if settings.count < 1 or settings.rounds < 1:
        raise SystemExit("--count and --rounds must be at least 1")
    if settings.big_lines < 0:
        raise SystemExit("--lines must not be negative")
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = _settings(args)
    busy = cpu_in_use()
    _note(f"building a corpus of {settings.count} operations")
    forms, problems = build(settings)
    if problems:
        print("CORPUS PROBLEMS (the codecs must agree on every operation before timing):")
        for line in problems[:20]:
            print(f"- {line}")
        if len(problems) > 20:
            print(f"- ... and {len(problems) - 20} more")
        return 1
    with tempfile.TemporaryDirectory(prefix="v1op-codec-baseline-") as built:
        baseline = None
        if args.baseline:
            _note(f"building the codec of {args.baseline} beside ours")
            baseline = build_baseline(args.baseline, Path(built))
        runs_ = contenders(forms, baseline)
        _note(f"timing, {settings.rounds} rounds of {len(runs_)} contenders")
        native_stats(reset=True)
        timings = time_contenders(runs_, settings.rounds, len(forms.texts))
        stats = native_stats()

    runs: list[StreamRun] = []
    with tempfile.TemporaryDirectory(prefix="v1op-codec-bench-", dir=args.dir) as tmp:
        workdir = Path(tmp)
        if settings.big_lines:
            for lines, to in (
                (settings.small_lines, "ndjson"),
                (settings.big_lines, "ndjson"),
                (settings.big_lines, "delimited"),
            ):
                _note(f"v1op convert --from ndjson --to {to}, {lines:,} lines")
                runs.append(stream(workdir, forms.texts, lines, to))
                if not runs[-1].ok:
                    break  # the bigger run would fail the same way
        facts = machine_facts(workdir, busy)

    average = sum(len(t.encode("utf-8")) for t in forms.texts) / len(forms.texts)
    print()
    print(codec_table(timings, args.baseline))
    print()
    for line in codec_checks(timings, stats):
        print(f"- {line}")
    if args.baseline:
        for line in baseline_checks(timings, args.baseline):
            print(f"- {line}")
    failures = stream_failures(runs)
    if runs and not failures:
        print()
        print(stream_table(runs))
        print()
        for line in stream_checks(runs[0], runs[1:]):
            print(f"- {line}")
    print()
    for fact in facts:
        print(f"- {fact}")
    print(
        f"- {len(forms.texts)} operations (seed {settings.seed}), {average:,.0f} bytes of "
        f"JSON each on average; best and median of {settings.rounds} rounds, after one "
        "unmeasured; documented to_json() leaves out the output-only fields, so it writes "
        "less than the others"
    )
    if failures:
        print()
        print("NDJSON FAILED:")
        for line in failures:
            print(f"- {line}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
