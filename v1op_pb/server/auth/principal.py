"""Who a call acts as (a Principal), and the one way a credential is refused.

Every source of identity (token file, JWT, SPIFFE certificate) refuses a call by raising
``CredentialRefused(reason)``: the caller hears the same words whatever went wrong, so a
probe learns nothing about which check failed; the reason rides on the exception, for the
server's log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from google.api_core.exceptions import Unauthenticated

from ..._calls import UNAUTHENTICATED_MESSAGE

__all__ = ["UNAUTHENTICATED_MESSAGE", "CredentialRefused", "Principal"]

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


class CredentialRefused(Unauthenticated):
    """UNAUTHENTICATED (401) with the uniform message; ``refusal`` says why, for the log.

    ``refusal`` never holds a credential: it names checks, claims and key ids, not tokens.
    (api-core's exceptions already have a ``reason``: that is the ErrorInfo's.)
    """

    def __init__(self, refusal: str) -> None:
        super().__init__(UNAUTHENTICATED_MESSAGE)  # type: ignore[no-untyped-call]
        self.refusal = refusal
