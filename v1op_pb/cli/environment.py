"""Options from the environment: every option of a command (``v1op serve``, ``v1op
gateway``) can be given as ``V1OP_<OPTION>``, its long name in capitals with ``_`` for
``-`` (``--grpc-addr`` is ``V1OP_GRPC_ADDR``). The command line wins.

How a value is read, by the kind of option:

- an option with a value: the variable's value, checked as the option checks it;
- a flag (``--insecure``): ``1``, ``true``, ``yes`` or ``on`` sets it; ``0``, ``false``,
  ``no``, ``off`` or empty leaves it off; anything else is an error (a counted flag, ``-v``
  style, takes the count);
- a repeatable option (``--import``): values separated by commas; given on the command line
  at all, the option takes only the command line's values.

Values from the environment are never shown: not in ``--help`` and not in an error, since
some are secrets (a PostgreSQL URL with its password).

``with_environment(command)`` marks a parser's options when the parser is made;
``resolve_environment(args)`` fills in, after parsing, each option the command line left
out. Options added to a command later are covered without a change here.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["PREFIX", "resolve_environment", "variable_of", "with_environment"]

PREFIX = "V1OP_"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
_FLAGS = (
    argparse._StoreConstAction,  # store_true, store_false and store_const
    argparse.BooleanOptionalAction,
)


class _FromEnvironment:
    """An option's default while its variable is set: replaced by the variable's value
    unless the command line gave the option. Shows the variable, never the value."""

    def __init__(self, variable: str, action: argparse.Action, raw: str) -> None:
        self.variable = variable
        self.action = action
        self._raw = raw

    def value(self) -> Any:
        return _convert(self.action, self.variable, self._raw)

    def __copy__(self) -> list[Any]:
        # argparse copies a repeatable option's default before its first append: the command
        # line's values then start an empty list, and replace the environment's.
        return []

    def __add__(self, other: int) -> int:
        # A counted flag given on the command line counts up from its default: from zero.
        return other

    def __repr__(self) -> str:
        return f"${self.variable}"

    __str__ = __repr__


def variable_of(action: argparse.Action) -> str | None:
    """``V1OP_<OPTION>`` of an option (its first long name); None for positionals, --help
    and options hidden from --help (which are internal)."""
    if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
        return None
    long_names = [s for s in action.option_strings if s.startswith("--")]
    if not long_names:
        return None
    return PREFIX + long_names[0][2:].upper().replace("-", "_")


def with_environment(
    command: argparse.ArgumentParser, environ: Mapping[str, str] | None = None
) -> None:
    """Name each option's variable in its --help, and make a set variable its default."""
    environ = os.environ if environ is None else environ
    note = (
        f"Every option can also be set as {PREFIX}<OPTION> (named beside it); the command line "
        "wins. Flags take 1/true/yes/on or 0/false/no/off; repeatable options take "
        "comma-separated values."
    )
    command.epilog = note if not command.epilog else f"{command.epilog}\n\n{note}"
    for action in command._actions:
        variable = variable_of(action)
        if variable is None:
            continue
        shown = f"[env {variable}]"
        action.help = shown if not action.help else f"{action.help} {shown}"
        if variable in environ:
            action.default = _FromEnvironment(variable, action, environ[variable])
            action.required = False


def resolve_environment(args: argparse.Namespace) -> None:
    """Put the environment's value in each option the command line left out; ValueError,
    naming the variable but not its value, for a value the option does not take."""
    for dest, value in vars(args).items():
        if isinstance(value, _FromEnvironment):
            setattr(args, dest, value.value())


def _convert(action: argparse.Action, variable: str, raw: str) -> Any:
    if isinstance(action, argparse._CountAction):
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"{variable}: give a count (0, 1, 2, ...)") from None
    if isinstance(action, (*_FLAGS, argparse._AppendConstAction)):
        word = raw.strip().lower()
        if word not in _TRUE | _FALSE:
            raise ValueError(f"{variable}: give 1, true, yes or on, or 0, false, no or off")
        on = word in _TRUE
        if isinstance(action, argparse.BooleanOptionalAction):
            return on
        if isinstance(action, argparse._AppendConstAction):
            return [action.const] if on else []
        return action.const if on else _default_of(action)
    if isinstance(action, argparse._AppendAction) or action.nargs not in (None, "?"):
        values = [_one(action, variable, item.strip()) for item in raw.split(",")]
        return [v for v in values if v != ""]
    return _one(action, variable, raw)


def _default_of(action: argparse.Action) -> Any:
    # store_true's default is False, store_false's True, store_const's None.
    if isinstance(action, argparse._StoreTrueAction):
        return False
    if isinstance(action, argparse._StoreFalseAction):
        return True
    return None


def _one(action: argparse.Action, variable: str, raw: str) -> Any:
    if raw == "" and (isinstance(action, argparse._AppendAction) or action.nargs):
        return ""
    convert = action.type if callable(action.type) else None
    try:
        value = raw if convert is None else convert(raw)
    except (TypeError, ValueError, argparse.ArgumentTypeError):
        kind = getattr(convert, "__name__", "value")
        raise ValueError(f"{variable}: not a valid {kind} for {action.option_strings[0]}") from None
    if action.choices is not None and value not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise ValueError(f"{variable}: {action.option_strings[0]} takes one of {choices}")
    return value
