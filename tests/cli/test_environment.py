"""Every option of ``v1op serve`` and ``v1op gateway`` from V1OP_<OPTION>: walked option by
option, so that options added later are held to it too; the command line wins; values
never echoed."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from v1op_pb.cli import main
from v1op_pb.cli.environment import resolve_environment, variable_of, with_environment
from v1op_pb.cli.main import _parser

SCRIPT = Path(sys.executable).parent / "v1op"
SERVERS = ("serve", "gateway")
# What each command needs before anything else is looked at.
REQUIRED = {
    "serve": ["--grpc-addr", "127.0.0.1:0", "--db", ":memory:"],
    "gateway": ["--http-addr", "127.0.0.1:0", "--grpc-target", "127.0.0.1:1"],
}


def required_but(command: str, option: str) -> list[str]:
    """The command's required options, less ``option`` (the one under test)."""
    pairs = zip(REQUIRED[command][::2], REQUIRED[command][1::2], strict=True)
    return [part for name, value in pairs if name != option for part in (name, value)]


# Variables the project reads for other things: no option may take one.
OTHER_VARIABLES = {
    "V1OP_TOKEN",
    "V1OP_PB_PURE_PYTHON",
    "V1OP_REQUIRE_POSTGRES",
    "V1OP_REQUIRE_BROWSER",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith("V1OP_"):
            monkeypatch.delenv(name)


def command_parser(command: str) -> argparse.ArgumentParser:
    subparsers = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return subparsers.choices[command]


def options(command: str) -> list[argparse.Action]:
    return [a for a in command_parser(command)._actions if a.option_strings]


def parse(argv: list[str]) -> argparse.Namespace:
    args = _parser().parse_args(argv)
    resolve_environment(args)
    return args


def sample(action: argparse.Action) -> tuple[str, list[str]]:
    """A value for the option: as the variable's text, and as command-line arguments."""
    option = action.option_strings[0]
    if action.nargs == 0:  # a flag
        return "true", [option]
    if action.choices is not None:
        value = str(next(iter(action.choices)))
    elif action.type in (int, float):
        value = "7"
    else:
        value = "sample-value"
    if isinstance(action, argparse._AppendAction):
        return f"{value}, {value}-2", [option, value, option, f"{value}-2"]
    return value, [option, value]


def walked() -> list[tuple[str, argparse.Action]]:
    return [(c, a) for c in SERVERS for a in options(c) if variable_of(a) is not None]


@pytest.mark.parametrize(
    ("command", "action"), walked(), ids=[f"{c}{a.option_strings[0]}" for c, a in walked()]
)
def test_every_option_reads_its_variable_as_the_command_line(monkeypatch, command, action):
    variable = variable_of(action)
    assert variable == "V1OP_" + action.option_strings[0][2:].upper().replace("-", "_")
    assert variable not in OTHER_VARIABLES
    assert f"[env {variable}]" in (action.help or "")
    text, argv = sample(action)
    base = [command, *required_but(command, action.option_strings[0])]
    from_command_line = getattr(parse([*base, *argv]), action.dest)
    monkeypatch.setenv(variable, text)
    from_environment = getattr(parse(base), action.dest)
    assert from_environment == from_command_line
    assert from_environment != action.default  # the variable did change something


@pytest.mark.parametrize("command", SERVERS)
def test_the_walk_covers_every_visible_option(command):
    hidden = {"-h", "--worker"}  # --worker is how --workers starts its processes
    visible = {a.option_strings[0] for a in options(command)} - hidden
    assert visible == {a.option_strings[0] for c, a in walked() if c == command}
    assert len(visible) >= 9


def test_help_names_the_variables(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for variable in ("V1OP_GRPC_ADDR", "V1OP_DB", "V1OP_TOKENS", "V1OP_JWKS", "V1OP_TLS_CERT"):
        assert f"[env {variable}]" in text
    assert "V1OP_<OPTION>" in text and "the command line wins" in text


def test_required_options_can_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("V1OP_GRPC_ADDR", "127.0.0.1:7")
    monkeypatch.setenv("V1OP_DB", "ops.db")
    args = parse(["serve"])
    assert (args.grpc_addr, args.db) == ("127.0.0.1:7", "ops.db")


def test_the_command_line_wins(monkeypatch):
    monkeypatch.setenv("V1OP_DB", "from-env.db")
    monkeypatch.setenv("V1OP_IMPORT", "env_a_pb2,env_b_pb2")
    monkeypatch.setenv("V1OP_MAX_MESSAGE_BYTES", "1000")
    args = parse(["serve", "--grpc-addr", "127.0.0.1:0", "--db", "cli.db", "--import", "cli_pb2"])
    assert args.db == "cli.db"
    # A repeatable option given on the command line takes only the command line's values.
    assert args.imports == ["cli_pb2"]
    assert args.max_message_bytes == 1000
    assert parse(["serve", *REQUIRED["serve"]]).imports == ["env_a_pb2", "env_b_pb2"]


@pytest.mark.parametrize(
    ("text", "value"), [("1", True), ("Yes", True), ("off", False), ("", False)]
)
def test_flags_read_words(monkeypatch, text, value):
    monkeypatch.setenv("V1OP_GRPC_INSECURE", text)
    assert parse(["gateway", *REQUIRED["gateway"]]).grpc_insecure is value


@pytest.mark.parametrize(
    ("variable", "text", "message"),
    [
        ("V1OP_MAX_MESSAGE_BYTES", "lots-s3cret", "V1OP_MAX_MESSAGE_BYTES: not a valid int"),
        ("V1OP_WORKERS", "two-s3cret", "V1OP_WORKERS: not a valid int for --workers"),
        ("V1OP_GRPC_TLS", "maybe-s3cret", "V1OP_GRPC_TLS: give 1, true, yes or on"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable_not_the_value(
    monkeypatch, capsys, variable, text, message
):
    monkeypatch.setenv(variable, text)
    command = "gateway" if "GRPC_TLS" in variable else "serve"
    assert main([command, *REQUIRED[command]]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"v1op: {message}") and err.count("\n") == 1
    assert "s3cret" not in err


def test_a_hidden_option_is_not_read(monkeypatch):
    monkeypatch.setenv("V1OP_WORKER", "1")
    assert parse(["serve", *REQUIRED["serve"]]).worker is False


def test_secrets_in_the_environment_are_never_shown(tmp_path):
    # A PostgreSQL URL with its password: not in --help, not in the start-up error.
    env = {k: v for k, v in os.environ.items() if not k.startswith("V1OP_")}
    env.update(V1OP_DB="postgresql://ada:s3cret-pw@127.0.0.1:1/ops", V1OP_GRPC_ADDR="127.0.0.1:0")
    env["V1OP_DEV_ANONYMOUS"] = "users/ada"
    for argv in (["serve", "--help"], ["serve"]):
        done = subprocess.run(
            [str(SCRIPT), *argv], capture_output=True, text=True, timeout=60, env=env
        )
        assert "s3cret-pw" not in done.stdout + done.stderr
    assert done.returncode == 2 and "cannot use PostgreSQL database" in done.stderr


def test_every_kind_of_option_reads_its_variable():
    # Kinds the commands do not use yet, so that one added later works at once.
    parser = argparse.ArgumentParser()
    parser.add_argument("--verbose", "-v", action="count", default=0)
    parser.add_argument("--color", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--mode", choices=["fast", "safe"], default="safe")
    parser.add_argument("--level", action="store_const", const=3)
    parser.add_argument("--tag", action="append_const", const="t", dest="tags")
    parser.add_argument("--names", nargs="+", type=str.upper)
    parser.add_argument("--extra", action="extend", nargs="+")
    environ = {
        "V1OP_VERBOSE": "2",
        "V1OP_COLOR": "no",
        "V1OP_MODE": "fast",
        "V1OP_LEVEL": "on",
        "V1OP_TAG": "yes",
        "V1OP_NAMES": "a, b",
        "V1OP_EXTRA": "x,y",
    }
    with_environment(parser, environ)
    args = parser.parse_args([])
    resolve_environment(args)
    assert vars(args) == {
        "verbose": 2,
        "color": False,
        "mode": "fast",
        "level": 3,
        "tags": ["t"],
        "names": ["A", "B"],
        "extra": ["x", "y"],
    }
    # Given on the command line, the environment's values are not used.
    args = parser.parse_args(["-v", "--color", "--mode", "safe", "--extra", "z"])
    resolve_environment(args)
    assert (args.verbose, args.color, args.mode, args.extra) == (1, True, "safe", ["z"])
    with_environment(parser, {"V1OP_MODE": "reckless"})
    args = parser.parse_args([])
    with pytest.raises(ValueError, match=r"^V1OP_MODE: --mode takes one of fast, safe$"):
        resolve_environment(args)
