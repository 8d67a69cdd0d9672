"""What the wheel carries: both packages' typing markers and stubs, the .proto sources beside
the generated modules, the license, and the native core built from source."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
# Environments and caches of the working tree: never part of a build.
_NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv*",
    ".tools",
    ".fuzz",
    ".hypothesis",
    "*_cache",
    "__pycache__",
    "build",
    "dist",
    "*.egg-info",
    "*.so",
)


def _needs_the_build_backend() -> None:
    """Skip where this environment cannot build without isolation (the lowest one)."""
    setuptools = pytest.importorskip("setuptools")
    if Version(setuptools.__version__) < Version("77"):
        pytest.skip(
            f"the build backend needs setuptools>=77, this environment has {setuptools.__version__}"
        )


def test_the_wheel_carries_license_protos_stubs_and_markers(tmp_path: Path) -> None:
    _needs_the_build_backend()
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCES)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (wheel,) = (tmp_path / "dist").glob("v1op_pb-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "v1op/py.typed",
        "v1op_pb/py.typed",
        "v1op/v1/operation.proto",
        "v1op/v1/operation_service.proto",
        "v1op/example/v1/evaluation.proto",
        "v1op/v1/operation_pb2.pyi",
        "v1op/v1/operation_service_pb2_grpc.pyi",
        "v1op/example/v1/evaluation_pb2.pyi",
        # The protos' comments, for the OpenAPI document (v1op openapi, /openapi.json).
        "v1op/v1/source_info.binpb",
    } <= names
    # The web page (/ui/): every file of gateway/ui, and nothing else there.
    ui = ROOT / "v1op_pb" / "gateway" / "ui"
    shipped = {n for n in names if n.startswith("v1op_pb/gateway/ui/")}
    assert shipped == {f"v1op_pb/gateway/ui/{f.name}" for f in ui.iterdir()}
    assert "v1op_pb/gateway/ui/index.html" in shipped
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), sorted(names)
    assert any(n.startswith("v1op_pb/_codec/_native") and n.endswith(".so") for n in names)
    # The tests and tools stay out of what users install.
    assert not any(n.startswith(("tests/", "fuzz/", "bench/")) for n in names)


# --- an install anywhere: no compiler, and a typed user's clean environment ----------------------

# What a user's `mypy --strict` must see, with the typing extra and nothing else.
USER_PROGRAM = """\
from google.rpc import status_pb2
import v1op_pb
from v1op_pb import V1Operation

op = v1op_pb.from_json('{"done": true, "error": {"code": 5}}')
reveal_type(op.error)
reveal_type(v1op_pb.to_dict(op))
reveal_type(V1Operation.to_json())
reveal_type(V1Operation.from_proto(op).to_dict())
reveal_type(v1op_pb.unpack(op.response, message_type=status_pb2.Status))
status: status_pb2.Status = op.error
"""


def _without_venv(environment: dict[str, str]) -> dict[str, str]:
    # The outer .venv must not leak into the clean one through the environment.
    return {k: v for k, v in environment.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}


@pytest.fixture(scope="module")
def clean_install(tmp_path_factory) -> Path:
    """A fresh virtual environment with `pip install <copy of the tree>[typing]` built with
    CC=/bin/false (no C compiler), and the mypy this repository pins: the folder holding
    the venv, its pip log and a copy of the examples."""
    base = tmp_path_factory.mktemp("install")
    source = base / "src"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCES)
    shutil.copytree(ROOT / "examples", base / "examples")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # The mypy `make lint` pins (the dev extra), whether or not this environment has it.
    match = re.search(r'"mypy==([^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert match is not None, "pyproject.toml pins no mypy in its dev extra"
    mypy = match[1]
    environment = {**_without_venv(dict(os.environ)), "CC": "/bin/false"}
    environment["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    pip = [venv / "bin" / "python", "-m", "pip", "install", "-v", "--no-compile"]
    done = subprocess.run(
        [*pip, f"{source}[typing]", f"mypy=={mypy}"],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    (base / "pip.log").write_text(done.stdout + done.stderr)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return base


def test_without_a_compiler_the_install_succeeds_with_one_warning(clean_install):
    log = (clean_install / "pip.log").read_text()
    warnings = [line.strip() for line in log.splitlines() if "WARNING: v1op-pb:" in line]
    assert len(warnings) == 1, warnings
    assert warnings[0].endswith("the JSON codec runs in pure Python")
    site = next((clean_install / "venv" / "lib").glob("python3*/site-packages"))
    assert not list((site / "v1op_pb" / "_codec").glob("_native*"))
    version = subprocess.run(
        [clean_install / "venv" / "bin" / "v1op", "--version"],
        capture_output=True,
        text=True,
        check=True,
        env=_without_venv(dict(os.environ)),
    )
    assert version.stdout.endswith(", JSON codec: pure Python (the C core is not built)\n")
    # And it converts: the shipped example, with no flags, through the pure-Python codec.
    example = clean_install / "examples" / "operation.json"
    converted = subprocess.run(
        [
            clean_install / "venv" / "bin" / "v1op",
            "convert",
            "--from",
            "json",
            "--to",
            "text",
            example,
        ],
        capture_output=True,
        text=True,
        check=False,
        env=_without_venv(dict(os.environ)),
    )
    assert (converted.returncode, converted.stderr) == (0, "")
    assert 'evaluation: "evaluations/rag-faithfulness"' in converted.stdout


def test_the_typing_extra_gives_a_users_mypy_strict_every_type(clean_install):
    program = clean_install / "user_program.py"
    program.write_text(USER_PROGRAM)
    mypy = [clean_install / "venv" / "bin" / "python", "-m", "mypy", "--strict"]
    # In its own folder, away from this repository's configuration and sources.
    checked = subprocess.run(
        [*mypy, "--no-incremental", program.name],
        capture_output=True,
        text=True,
        cwd=clean_install,
        check=False,
        env=_without_venv(dict(os.environ)),
    )
    lines = [line.removeprefix("user_program.py:") for line in checked.stdout.splitlines()]
    assert lines == [
        '6: note: Revealed type is "google.rpc.status_pb2.Status"',
        '7: note: Revealed type is "dict[str, Any]"',
        '8: note: Revealed type is "str"',
        '9: note: Revealed type is "dict[str, Any]"',
        '10: note: Revealed type is "google.rpc.status_pb2.Status"',
        "Success: no issues found in 1 source file",
    ], checked.stdout + checked.stderr
    # The typed tour of the public API that `make lint` checks in the repository.
    tour = subprocess.run(
        [*mypy, "--no-incremental", "examples/typed_usage.py"],
        capture_output=True,
        text=True,
        cwd=clean_install,
        check=False,
        env=_without_venv(dict(os.environ)),
    )
    assert tour.returncode == 0, tour.stdout + tour.stderr


def test_a_build_that_must_have_the_core_fails_without_a_compiler(tmp_path):
    # V1OP_PB_REQUIRE_NATIVE=1 (make install, make sanitize): no silent pure-Python fallback.
    _needs_the_build_backend()
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCES)
    environment = {**_without_venv(dict(os.environ)), "CC": "/bin/false"}
    environment["V1OP_PB_REQUIRE_NATIVE"] = "1"
    wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    done = subprocess.run(
        [*wheel, "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    assert done.returncode != 0
    assert "Failed building wheel for v1op-pb" in done.stderr
    assert not list(tmp_path.glob("dist/*.whl"))
