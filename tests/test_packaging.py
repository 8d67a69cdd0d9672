"""What the wheel carries: both packages' typing markers and stubs, the .proto sources beside
the generated modules, the license, and the native core built from source."""

from __future__ import annotations

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


def test_the_wheel_carries_license_protos_stubs_and_markers(tmp_path: Path) -> None:
    setuptools = pytest.importorskip("setuptools")
    if Version(setuptools.__version__) < Version("77"):
        pytest.skip(
            f"the build backend needs setuptools>=77, this environment has {setuptools.__version__}"
        )
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
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), sorted(names)
    assert any(n.startswith("v1op_pb/_codec/_native") and n.endswith(".so") for n in names)
    # The tests and tools stay out of what users install.
    assert not any(n.startswith(("tests/", "fuzz/", "bench/")) for n in names)
