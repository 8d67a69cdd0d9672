"""The v1op command's manners: --version, a hint naming the extra to install when one is
missing, --import finding modules in the current folder."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import grpc_tools
import pytest
from grpc_tools import protoc

from v1op_pb.cli import main

SCRIPT = Path(sys.executable).parent / "v1op"
PROTO_ROOT = Path(__file__).resolve().parents[1] / "data"
WKT_INCLUDE = Path(grpc_tools.__file__).parent / "_proto"
WIDGET_OPERATION = {
    "name": "operations/w",
    "done": True,
    "response": {"@type": "type.googleapis.com/regtest.v1.Widget", "name": "w-1"},
}


def test_version_says_which_codec_is_in_use(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    version = importlib.metadata.version("v1op-pb")
    assert capsys.readouterr().out == f"v1op {version}, JSON codec: native (C core)\n"
    # Turned off by the environment (the installed script, as a user runs it).
    pure = subprocess.run(
        [str(SCRIPT), "--version"],
        capture_output=True,
        text=True,
        env={**os.environ, "V1OP_PB_PURE_PYTHON": "1"},
        check=True,
    )
    assert pure.stdout == f"v1op {version}, JSON codec: pure Python (V1OP_PB_PURE_PYTHON=1)\n"


# A real interpreter in which the extra's modules cannot be imported, as without the extra.
BLOCKED = textwrap.dedent(
    """
    import sys
    from importlib.abc import MetaPathFinder

    class Missing(MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {blocked!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, Missing())
    from v1op_pb.cli import main
    sys.exit(main({argv!r}))
    """
)


@pytest.mark.parametrize(
    ("blocked", "argv", "extra"),
    [
        pytest.param(
            {"grpc"},
            [
                "serve",
                "--grpc-addr",
                "127.0.0.1:0",
                "--db",
                ":memory:",
                "--dev-anonymous",
                "users/a",
            ],
            "grpc",
            id="serve-without-grpc",
        ),
        pytest.param(
            {"grpc", "grpc_status"},
            ["get", "--addr", "127.0.0.1:1", "operations/x"],
            "grpc",
            id="get-without-grpc",
        ),
        pytest.param(
            {"aiohttp"},
            ["gateway", "--http-addr", "127.0.0.1:0", "--grpc-target", "127.0.0.1:1"],
            "rest",
            id="gateway-without-aiohttp",
        ),
    ],
)
def test_a_missing_extra_names_what_to_install(blocked, argv, extra):
    code = BLOCKED.format(blocked=sorted(blocked), argv=argv)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert f"pip install 'v1op-pb[{extra}]'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """A folder holding generated code for regtest/v1/widget.proto, as a user's would."""
    out = tmp_path_factory.mktemp("generated")
    args = ["protoc", f"-I{PROTO_ROOT}", f"-I{WKT_INCLUDE}", f"--python_out={out}"]
    assert protoc.main([*args, "regtest/v1/widget.proto"]) == 0
    return out


def test_import_finds_modules_in_the_current_folder(generated, tmp_path):
    source = tmp_path / "op.json"
    source.write_text(json.dumps(WIDGET_OPERATION))
    argv = ["convert", "--from", "json", "--to", "json", "--import", "regtest.v1.widget_pb2"]
    here = subprocess.run(
        [str(SCRIPT), *argv, str(source)], capture_output=True, text=True, cwd=generated
    )
    assert (here.returncode, here.stderr) == (0, "")
    assert json.loads(here.stdout) == WIDGET_OPERATION
    elsewhere = subprocess.run(
        [str(SCRIPT), *argv, str(source)], capture_output=True, text=True, cwd=tmp_path
    )
    assert elsewhere.returncode == 2
    assert "No module named 'regtest'" in elsewhere.stderr
