"""Who is calling: bearer tokens mapped to principals (``users/<id>``, ``services/<id>``)."""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from google.api_core.exceptions import Unauthenticated

__all__ = ["Principal", "TokenTable"]

_PRINCIPAL = re.compile(r"(users|services)/[A-Za-z0-9][A-Za-z0-9._@-]*\Z")


@dataclass(frozen=True)
class Principal:
    name: str

    def __post_init__(self) -> None:
        if not _PRINCIPAL.match(self.name):
            raise ValueError(f"principal {self.name!r} is not users/<id> or services/<id>")

    @property
    def is_service(self) -> bool:
        return self.name.startswith("services/")

    @property
    def is_user(self) -> bool:
        return self.name.startswith("users/")


class TokenTable:
    """Bearer tokens and the principals they stand for.

    ``anonymous``, when given, is who a call without a token acts as: for development only,
    and only when asked for explicitly.
    """

    def __init__(self, tokens: dict[str, Principal], *, anonymous: Principal | None = None) -> None:
        self._tokens = dict(tokens)
        self.anonymous = anonymous

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, anonymous: Principal | None = None
    ) -> TokenTable:
        """Read ``TOKEN PRINCIPAL`` lines; ``#`` starts a comment; blank lines are skipped."""
        with open(path, encoding="utf-8") as f:
            return cls(_parse(f, str(path)), anonymous=anonymous)

    def authenticate(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> Principal:
        """The principal of a call's ``authorization: Bearer <token>`` metadata."""
        header = None
        for key, value in metadata or ():
            if key.lower() == "authorization":
                header = value.decode("latin-1") if isinstance(value, bytes) else value
                break
        if header is None:
            if self.anonymous is not None:
                return self.anonymous
            raise Unauthenticated("missing 'authorization: Bearer <token>' metadata")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("authorization metadata is not 'Bearer <token>'")
        return self.lookup(token.strip())

    def lookup(self, token: str) -> Principal:
        principal = None
        # Compare against every token in constant time, so timing tells nothing of them.
        for known, who in self._tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                principal = who
        if principal is None:
            raise Unauthenticated("unknown bearer token")
        return principal


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
