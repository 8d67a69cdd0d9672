"""The command line explains itself: every option has help text, every hint names flags the
command it comes from has (parsed out of the hint and looked up in that command's parser),
and ``v1op completion bash`` completes the commands, options and choices, in a real bash."""

from __future__ import annotations

import argparse
import ast
import functools
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import v1op_pb.cli
from v1op_pb.cli import main
from v1op_pb.cli.main import _parser

SCRIPT = Path(sys.executable).parent / "v1op"
CLI_SOURCES = Path(v1op_pb.cli.__file__).parent
CLIENT_COMMON = CLI_SOURCES.parent / "client" / "_common.py"
LOCAL_GATEWAY = ["gateway", "--http-addr", "127.0.0.1:0", "--grpc-target", "127.0.0.1:1"]
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*[a-z0-9](?![\w-])")


def commands() -> dict[str, argparse.ArgumentParser]:
    for action in _parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("v1op has no commands")


def flags_of(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


@pytest.mark.parametrize("name", sorted(commands()))
def test_every_option_and_argument_has_help_text(name):
    for action in commands()[name]._actions:
        if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue
        what = action.option_strings or [action.dest]
        assert action.help and action.help.strip(), f"v1op {name} {what[0]} has no help text"


def test_every_flag_the_commands_name_in_their_messages_exists():
    # Every --flag written in a message of the CLI (or the client's channel rules, which
    # the CLI shows) is an option of some command: a renamed flag leaves no stale hint.
    every = set().union(*map(flags_of, commands().values()), flags_of(_parser()))
    named: set[str] = set()
    for path in [*CLI_SOURCES.glob("*.py"), CLIENT_COMMON]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                named.update(FLAG.findall(node.value))
    assert named, "no flags found: the pattern is broken"
    assert named - every == set()


def hint_flags(argv: list[str], capsys) -> tuple[set[str], str]:
    """The flags named on stderr by ``v1op *argv`` (which must fail)."""
    with pytest.raises(SystemExit) if argv[-1] == "--exit" else _no_exit():
        status = main([a for a in argv if a != "--exit"])
        assert status != 0
    err = capsys.readouterr().err
    return set(FLAG.findall(err)), err


class _no_exit:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["gateway", "--http-addr", "127.0.0.1:0", "--grpc-target", "10.0.0.5:1"]),
        pytest.param(["get", "--addr", "10.0.0.5:1", "--token", "t", "operations/x"]),
        pytest.param(["list", "--addr", "10.0.0.5:1", "--token", "t", "--tls-cert", "c.pem"]),
        pytest.param([*LOCAL_GATEWAY, "--grpc-tls-key", "k.pem"]),
        pytest.param(["serve", "--grpc-addr", "127.0.0.1:0", "--db", ":memory:"]),
        pytest.param(["convert", "--from", "json", "--to", "ndjson", "--exit"]),
        pytest.param(["convert", "--from", "json", "--to", "json", "--skip-invalid", "--exit"]),
        pytest.param(["convert", "--from", "ndjson", "--to", "ndjson", "--indent", "2", "--exit"]),
        pytest.param(["convert", "--from", "json", "--to", "json", "examples/bad-type.json"]),
        pytest.param(["create", "--addr", "SERVED", "--metadata", '{"@type": "a/b.C"}']),
    ],
)
def test_each_hint_names_flags_its_command_has(argv, capsys, tmp_path, monkeypatch, served):
    # A real server where a command needs one: its reflection answers at once.
    argv = [served.target if a == "SERVED" else a for a in argv]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "bad-type.json").write_text('{"metadata": {"@type": "a/b.C"}}')
    named, err = hint_flags(argv, capsys)
    assert named, f"no flag named in: {err!r}"
    assert named <= flags_of(commands()[argv[0]]), err


def test_the_gateway_names_its_own_tls_flags(capsys):
    named, err = hint_flags(
        ["gateway", "--http-addr", "127.0.0.1:0", "--grpc-target", "10.0.0.5:1"], capsys
    )
    assert {"--grpc-tls-ca", "--grpc-insecure"} <= named, err


# --- shell completion --------------------------------------------------------------------------

BASH = shutil.which("bash")


@functools.cache
def bash_script() -> str:
    """The script as a user sources it: printed by the installed command."""
    return subprocess.run(
        [str(SCRIPT), "completion", "bash"], capture_output=True, text=True, check=True
    ).stdout


def complete(words: str) -> list[str]:
    """What bash offers for the command line ``words`` (the cursor at its end)."""
    script = bash_script()
    driver = (
        script
        + f"\nCOMP_WORDS=({words})\n"
        + "COMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n"
        + '_v1op_complete; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run([BASH, "-c", driver], capture_output=True, text=True, check=True)
    assert done.stderr == ""
    return sorted(filter(None, done.stdout.splitlines()))


@pytest.mark.skipif(BASH is None, reason="no bash here")
def test_bash_completes_commands_options_and_choices():
    assert "convert" in complete("v1op ''") and "mark-seen" in complete("v1op ''")
    assert complete("v1op fi") == ["finalize"]
    assert complete("v1op finalize --re") == ["--response"]
    assert complete("v1op convert --from ''") == ["binary", "delimited", "json", "ndjson", "text"]
    assert complete("v1op list --output ''") == ["json", "name", "table"]
    assert complete("v1op completion ''") == ["bash", "zsh"]
    assert "--page-token" in complete("v1op list --p")
    assert "--tls-ca" in complete("v1op get --tls")


def test_zsh_gets_the_same_script_through_bashcompinit(capsys):
    assert main(["completion", "zsh"]) == 0
    script = capsys.readouterr().out
    assert script.splitlines()[1] == "autoload -U +X bashcompinit && bashcompinit"
    assert "complete -F _v1op_complete v1op" in script
