"""The token file: opaque bearer tokens mapped to principals (``users/<id>``,
``services/<id>``)."""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable

from .principal import Principal

__all__ = ["TokenTable"]


class TokenTable:
    """Bearer tokens and the principals they stand for."""

    def __init__(self, tokens: dict[str, Principal]) -> None:
        self._tokens = dict(tokens)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TokenTable:
        """Read ``TOKEN PRINCIPAL`` lines; ``#`` starts a comment; blank lines are skipped."""
        with open(path, encoding="utf-8") as f:
            return cls(_parse(f, str(path)))

    def lookup(self, token: str) -> Principal | None:
        """The principal of ``token``, None for a token this table does not hold."""
        principal = None
        # Compare against every token in constant time, so timing tells nothing of them.
        for known, who in self._tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                principal = who
        return principal

    def __len__(self) -> int:
        return len(self._tokens)


def _parse(lines: Iterable[str], source: str) -> dict[str, Principal]:
    tokens: dict[str, Principal] = {}
    for number, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"{source}:{number}: expected 'TOKEN PRINCIPAL'")
        token, name = parts
        if token in tokens:
            raise ValueError(f"{source}:{number}: token given twice")
        try:
            tokens[token] = Principal(name)
        except ValueError as e:
            raise ValueError(f"{source}:{number}: {e}") from None
    return tokens
