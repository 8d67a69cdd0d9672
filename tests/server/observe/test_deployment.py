"""The README's deployment part, as written there: the systemd unit passes ``systemd-analyze
verify``, the Prometheus scrape configuration passes ``promtool check config``, and the
environment file, its paths and addresses made local, makes ``v1op serve`` serve, with
/metrics answering. The tools come from Debian (systemd; the ``prometheus`` package for
promtool); where one is missing the check is skipped, unless V1OP_REQUIRE_TOOLS=1 (CI), which
makes that a failure."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from processes import environment, launch
from readme_blocks import Block, read_blocks

ROOT = Path(__file__).resolve().parents[3]
BLOCKS = [b for b in read_blocks(ROOT / "README.md") if b.heading == "Deploying it"]
REQUIRE = os.environ.get("V1OP_REQUIRE_TOOLS") == "1"
V1OP = Path(sys.executable).parent / "v1op"


def block(lang: str, first_line: str) -> Block:
    (found,) = [b for b in BLOCKS if b.lang == lang and b.text.startswith(first_line)]
    return found


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        message = f"{name} is not installed (Debian: apt-get install {PACKAGES[name]})"
        if REQUIRE:
            pytest.fail(f"{message} (V1OP_REQUIRE_TOOLS=1)", pytrace=False)
        pytest.skip(message)
    return found


PACKAGES = {"systemd-analyze": "systemd", "promtool": "prometheus"}


def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path):
    unit = block("ini", "# /etc/systemd/system/v1op.service").text
    environment = tmp_path / "v1op.env"
    environment.write_text("")
    # The paths of this machine: an installed v1op, and an environment file that exists.
    unit = unit.replace("/opt/v1op/bin/v1op", str(V1OP))
    unit = unit.replace("/etc/v1op/v1op.env", str(environment))
    path = tmp_path / "v1op.service"
    path.write_text(unit)
    done = subprocess.run(
        [tool("systemd-analyze"), "verify", "--man=no", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_a_broken_unit_is_caught_by_the_same_check(tmp_path):
    unit = block("ini", "# /etc/systemd/system/v1op.service").text
    path = tmp_path / "v1op.service"
    path.write_text(unit.replace("Type=exec", "Type=execute"))
    done = subprocess.run(
        [tool("systemd-analyze"), "verify", "--man=no", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 or done.stderr


def test_the_scrape_configuration_passes_promtool(tmp_path):
    path = tmp_path / "prometheus.yml"
    path.write_text(block("yaml", "# prometheus.yml").text)
    done = subprocess.run(
        [tool("promtool"), "check", "config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


def test_the_environment_file_makes_v1op_serve_serve(tmp_path, certs):

    settings: dict[str, str] = {}
    for line in block("ini", "# /etc/v1op/v1op.env").text.splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings[key] = value
    assert settings["V1OP_LOG_FORMAT"] == "json" and settings["V1OP_RETENTION"] == "30d"
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("svc-token services/eval\n")
    local = {
        "/etc/v1op/tokens.txt": str(tokens),
        "/etc/v1op/server.pem": str(certs.server_cert),
        "/etc/v1op/server.key": str(certs.server_key),
        "/etc/v1op/pgpass": str(tmp_path / "pgpass"),
    }
    for key, value in settings.items():
        value = local.get(value, value)
        value = re.sub(r"\A0\.0\.0\.0:\d+\Z", "127.0.0.1:0", value)
        if key == "V1OP_DB":
            value = str(tmp_path / "operations.db")  # the README's names another machine
        settings[key] = value
    served = launch(
        tmp_path,
        ["serve"],
        expect=("gRPC", "HTTP", "metrics"),
        env=environment(**settings),
    )
    try:
        url = f"http://127.0.0.1:{served.ports['metrics']}/metrics"
        with urllib.request.urlopen(url, timeout=30) as answer:
            assert b"# TYPE grpc_server_handled_total counter" in answer.read()
    finally:
        assert served.stop() == 0
    assert "retention: purging operations done or deleted for more than 30d" in (served.stderr())
