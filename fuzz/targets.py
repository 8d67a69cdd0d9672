"""The atheris targets: ``python -m fuzz.targets TARGET [libFuzzer flags] CORPUS_DIR``."""

from __future__ import annotations

import sys
from collections.abc import Callable

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports(include=["v1op_pb", "fuzz"]):
    from fuzz import gateway, grpc_calls, oracles


def _target(name: str) -> Callable[[bytes], None]:
    if name == "json":
        return oracles.check_json
    if name == "binary":
        return oracles.check_binary
    if name == "text":
        return oracles.check_text
    if name == "gateway":
        served = gateway.Gateway()
        return lambda data: gateway.check_request(served, data)
    if name == "grpc":
        server = grpc_calls.GrpcServer()
        return lambda data: grpc_calls.check_call(server, data)
    raise SystemExit(f"unknown fuzz target {name!r}: json, binary, text, gateway or grpc")


def main() -> None:
    name, *flags = sys.argv[1:]
    check = _target(name)
    atheris.Setup([sys.argv[0], *flags], check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
