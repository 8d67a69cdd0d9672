"""What TLS and the client's conveniences cost: GetOperation through OperationClient against
``v1op serve`` in plaintext, TLS and mutual TLS (certificates made with openssl for the
run), and learning a payload type from the server's reflection.

Outside the test suite: it prints numbers and asserts nothing about time.
"""

from __future__ import annotations

import argparse
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from v1op.example.v1 import evaluation_pb2

from v1op_pb import TypeRegistry
from v1op_pb.client import OperationClient
from v1op_pb.client.reflection import learn_type

from .machine import cpu_fact, cpu_in_use, python_fact

SCRIPT = Path(sys.executable).parent / "v1op"
READY = re.compile(r"serving gRPC on 127\.0\.0\.1:(\d+)")


def openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def make_certs(d: Path) -> None:
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", d / "ca.key", "-out", d / "ca.pem", "-days", "1",
            "-subj", "/CN=bench-ca")  # fmt: skip
    for name, ext in (
        ("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ):
        (d / f"{name}.ext").write_text(ext)
        openssl("req", *ec, "-keyout", d / f"{name}.key", "-out", d / f"{name}.csr",
                "-subj", f"/CN={name}")  # fmt: skip
        openssl("x509", "-req", "-in", d / f"{name}.csr", "-CA", d / "ca.pem", "-CAkey",
                d / "ca.key", "-CAcreateserial", "-out", d / f"{name}.pem", "-days", "1",
                "-extfile", d / f"{name}.ext")  # fmt: skip


def start(d: Path, mode: str) -> tuple[subprocess.Popen[str], int]:
    args = ["serve", "--grpc-addr", "127.0.0.1:0", "--db", ":memory:", "--tokens",
            str(d / "tokens.txt"), "--import", "v1op.example.v1.evaluation_pb2"]  # fmt: skip
    if mode != "plaintext":  # every TLS mode
        args += ["--tls-cert", str(d / "server.pem"), "--tls-key", str(d / "server.key")]
    if mode == "mtls":
        args += ["--tls-client-ca", str(d / "ca.pem")]
    process = subprocess.Popen([str(SCRIPT), *args], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    match = READY.search(process.stdout.readline())
    assert match, "no ready line"
    return process, int(match.group(1))


def client(d: Path, mode: str, port: int, token: str) -> OperationClient:
    if mode == "tls, token as metadata":
        # TLS, the token sent as plain metadata on a channel of the caller's own: what call
        # credentials cost beside it.
        credentials = grpc.ssl_channel_credentials((d / "ca.pem").read_bytes())
        channel = grpc.secure_channel(f"127.0.0.1:{port}", credentials)
        return OperationClient("", token=token, channel=channel)
    tls: dict[str, bytes] = {}
    if mode != "plaintext":
        tls["root_certificates"] = (d / "ca.pem").read_bytes()
    if mode == "mtls":
        tls["private_key"] = (d / "client.key").read_bytes()
        tls["certificate_chain"] = (d / "client.pem").read_bytes()
    return OperationClient(f"127.0.0.1:{port}", token=token, **tls)  # type: ignore[arg-type]


def measure(d: Path, mode: str, calls: int) -> dict[str, float]:
    process, port = start(d, mode)
    try:
        with client(d, mode, port, "tok-eval") as service:
            name = service.create(
                evaluation_pb2.EvaluationProgress(progress=0.5), on_behalf_of="users/ada"
            ).name
        # The first call includes the connection and its handshake.
        first_start = time.perf_counter()
        ada = client(d, mode, port, "tok-ada")
        ada.get(name)
        first = time.perf_counter() - first_start
        for _ in range(calls // 10):
            ada.get(name)
        latencies = []
        start_all = time.perf_counter()
        for _ in range(calls):
            t = time.perf_counter()
            ada.get(name)
            latencies.append(time.perf_counter() - t)
        wall = time.perf_counter() - start_all
        # Learning EvaluationProgress from reflection, into a fresh registry each time.
        learn = []
        for _ in range(50):
            t = time.perf_counter()
            assert learn_type(ada.channel, TypeRegistry(use_default_pool=False), name_of())
            learn.append(time.perf_counter() - t)
        ada.close()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    latencies.sort()
    return {
        "first_ms": first * 1e3,
        "per_s": calls / wall,
        "p50_ms": latencies[len(latencies) // 2] * 1e3,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3,
        "learn_ms": statistics.median(learn) * 1e3,
    }


def name_of() -> str:
    return str(evaluation_pb2.EvaluationProgress.DESCRIPTOR.full_name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    busy = cpu_in_use()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        make_certs(d)
        (d / "tokens.txt").write_text("tok-eval services/eval\ntok-ada users/ada\n")
        for mode in ("plaintext", "tls", "tls, token as metadata", "mtls"):
            rows.append((mode, measure(d, mode, args.calls)))
    print(f"{cpu_fact(busy)}; {python_fact()}")
    print()
    print("| Transport | First call, with connection (ms) | Calls/s | p50 (ms) | p99 (ms) "
          "| Learn a type by reflection (ms) |")  # fmt: skip
    print("|---|--:|--:|--:|--:|--:|")
    for mode, r in rows:
        print(
            f"| {mode} | {r['first_ms']:.1f} | {r['per_s']:,.0f} | {r['p50_ms']:.2f} "
            f"| {r['p99_ms']:.2f} | {r['learn_ms']:.2f} |"
        )


if __name__ == "__main__":
    main()
