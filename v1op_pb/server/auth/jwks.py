"""JSON Web Key Sets: the public keys JWTs are checked with, from a file or an HTTPS URL.

A file is read once, at start-up. A URL is fetched when a key is first needed, kept, fetched
again when a token names a key id the set lacks (a key rotation) or when the set is older
than MAX_AGE_SECONDS; never more than once per REFETCH_SECONDS, so tokens with made-up key
ids cannot turn the server into a flood of requests to the identity provider.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from ..._errors import excerpt
from .principal import CredentialRefused

__all__ = [
    "ALGORITHMS",
    "JwksError",
    "KeySet",
    "KeySource",
    "RemoteKeys",
    "SigningKey",
    "StaticKeys",
    "key_source",
]

# The signature algorithms a token may use. HS* would let anyone who knows the (public)
# verification key sign, and `none` signs nothing.
ALGORITHMS = ("RS256", "ES256", "EdDSA")
MIN_RSA_BITS = 2048
REFETCH_SECONDS = 60.0
MAX_AGE_SECONDS = 300.0
FETCH_TIMEOUT_SECONDS = 10.0
MAX_JWKS_BYTES = 1024 * 1024
_log = logging.getLogger("v1op.server.auth")


class JwksError(ValueError):
    """A key set that cannot be used: unreadable, not a JWKS, or without a usable key."""


@dataclass(frozen=True)
class SigningKey:
    kid: str | None
    algorithm: str
    key: Any  # a cryptography public key of the algorithm's kind


def _usable_key(jwk: Mapping[str, Any]) -> SigningKey | None:
    """The key of a JWK if tokens may be checked with it: a public signing key of one of
    ALGORITHMS, of the kind (and curve, and size) that algorithm takes."""
    if jwk.get("use", "sig") != "sig" or jwk.get("alg", None) not in (None, *ALGORITHMS):
        return None
    try:
        parsed = jwt.PyJWK(dict(jwk))
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    key, algorithm = parsed.key, parsed.algorithm_name
    fits = (
        (
            algorithm == "RS256"
            and isinstance(key, rsa.RSAPublicKey)
            and key.key_size >= MIN_RSA_BITS
        )
        or (
            algorithm == "ES256"
            and isinstance(key, ec.EllipticCurvePublicKey)
            and isinstance(key.curve, ec.SECP256R1)
        )
        or (
            algorithm == "EdDSA"
            and isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey))
        )
    )
    kid = jwk.get("kid")
    if not fits or not (kid is None or isinstance(kid, str)):
        return None
    return SigningKey(kid, algorithm, key)


class KeySet:
    """The usable keys of one JWKS document."""

    def __init__(self, keys: list[SigningKey]) -> None:
        self.keys = tuple(keys)

    @classmethod
    def parse(cls, data: bytes, source: str) -> KeySet:
        try:
            document = json.loads(data)
        except (ValueError, RecursionError) as e:
            raise JwksError(f"{source} is not JSON: {e}") from e
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise JwksError(f"{source} is not a JWKS (an object with a 'keys' array)")
        keys = [k for k in map(_usable_key, filter(_is_object, document["keys"])) if k]
        if not keys:
            raise JwksError(
                f"{source} holds no public signing key for {', '.join(ALGORITHMS)} "
                f"(of {len(document['keys'])} keys)"
            )
        return cls(keys)

    def find(self, kid: str | None, algorithm: str) -> SigningKey | None:
        """The key a token with this header is checked with; None when the set has no key of
        that id (a refetch may bring it). A key of that id for another algorithm is a key
        confusion, refused here."""
        if kid is None:
            # A token without a key id: only a set with one key for its algorithm says which.
            candidates = [k for k in self.keys if k.algorithm == algorithm]
            if len(candidates) > 1:
                raise CredentialRefused(
                    f"the JWT names no key id (kid) and {len(candidates)} {algorithm} keys fit"
                )
            return candidates[0] if candidates else None
        named = [k for k in self.keys if k.kid == kid]
        for key in named:
            if key.algorithm == algorithm:
                return key
        if named:
            raise CredentialRefused(
                f"the JWT says {algorithm} but key {excerpt(kid)} is for {named[0].algorithm}"
            )
        return None


def _is_object(value: object) -> bool:
    return isinstance(value, dict)


class KeySource(Protocol):
    async def key_for(self, kid: str | None, algorithm: str) -> SigningKey:
        """The key for a token's header; CredentialRefused when there is none."""
        ...

    @property
    def source(self) -> str: ...


def _unknown_key(kid: str | None, algorithm: str, source: str) -> CredentialRefused:
    which = "with no key id" if kid is None else f"with key id {excerpt(kid)}"
    return CredentialRefused(f"no {algorithm} key in the JWKS {source} for a JWT {which}")


class StaticKeys:
    """A JWKS read from a file once."""

    def __init__(self, keys: KeySet, source: str) -> None:
        self._keys = keys
        self.source = source

    @classmethod
    def load(cls, path: str) -> StaticKeys:
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_JWKS_BYTES + 1)
        except OSError as e:
            raise JwksError(f"cannot read the JWKS {path!r}: {e.strerror or e}") from e
        if len(data) > MAX_JWKS_BYTES:
            raise JwksError(f"the JWKS {path!r} is larger than {MAX_JWKS_BYTES} bytes")
        return cls(KeySet.parse(data, f"the JWKS {path!r}"), path)

    async def key_for(self, kid: str | None, algorithm: str) -> SigningKey:
        found = self._keys.find(kid, algorithm)
        if found is None:
            raise _unknown_key(kid, algorithm, self.source)
        return found


class _HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to another HTTPS address: keys must not come in clear."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str):  # type: ignore[no-untyped-def]
        if urlsplit(newurl).scheme != "https":
            raise urllib.error.URLError(f"redirected to a non-HTTPS address ({code})")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch_jwks(url: str, context: ssl.SSLContext, timeout: float) -> bytes:
    """The body of a GET of ``url`` (blocking: run it in a thread)."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=context), _HttpsOnlyRedirects()
    )
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with opener.open(request, timeout=timeout) as response:
        data: bytes = response.read(MAX_JWKS_BYTES + 1)
    if len(data) > MAX_JWKS_BYTES:
        raise JwksError(f"the JWKS at {url} is larger than {MAX_JWKS_BYTES} bytes")
    return data


class RemoteKeys:
    """A JWKS fetched over HTTPS, kept and refetched as the module says.

    ``clock`` (monotonic seconds) and ``context`` (the TLS trust: the system's roots by
    default) are there for tests. The fetch runs in a thread: the event loop never waits on
    the identity provider.
    """

    def __init__(
        self,
        url: str,
        *,
        context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = FETCH_TIMEOUT_SECONDS,
    ) -> None:
        if urlsplit(url).scheme != "https":
            raise JwksError(f"the JWKS URL {url!r} is not https://")
        self.source = url
        self._context = context if context is not None else ssl.create_default_context()
        self._clock = clock
        self._timeout = timeout
        self._keys: KeySet | None = None
        self._fetched_at = 0.0
        self._last_attempt: float | None = None
        self._last_error = ""
        self._lock: asyncio.Lock | None = None
        self.fetches = 0  # attempts made, for tests and metrics

    async def key_for(self, kid: str | None, algorithm: str) -> SigningKey:
        keys = self._keys
        fresh = keys is not None and self._clock() - self._fetched_at < MAX_AGE_SECONDS
        if keys is not None and fresh:
            found = keys.find(kid, algorithm)
            if found is not None:
                return found
        await self._refresh()
        keys = self._keys
        if keys is None:
            raise CredentialRefused(f"the JWKS {self.source} is not available: {self._last_error}")
        found = keys.find(kid, algorithm)
        if found is None:
            raise _unknown_key(kid, algorithm, self.source)
        return found

    async def _refresh(self) -> None:
        """Fetch the set unless an attempt was made within REFETCH_SECONDS; a failure keeps
        the keys held (an identity provider briefly down must not lock everyone out) and is
        logged."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            now = self._clock()
            if self._last_attempt is not None and now - self._last_attempt < REFETCH_SECONDS:
                return  # fetched (or tried) lately, perhaps by a call we waited behind
            self._last_attempt = now
            self.fetches += 1
            try:
                data = await asyncio.to_thread(
                    fetch_jwks, self.source, self._context, self._timeout
                )
                keys = KeySet.parse(data, f"the JWKS at {self.source}")
            except (OSError, ValueError, http.client.HTTPException) as e:
                self._last_error = _why(e)
                held = "keeping the keys fetched before" if self._keys else "no keys yet"
                _log.warning(
                    "v1op: cannot fetch the JWKS %s: %s (%s)", self.source, self._last_error, held
                )
                return
            self._keys, self._fetched_at, self._last_error = keys, self._clock(), ""


def _why(error: Exception) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code}"
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    return str(error)


def key_source(path_or_url: str, *, context: ssl.SSLContext | None = None) -> KeySource:
    """``--jwks``: an https:// URL, or a file read now (JwksError when it cannot be used)."""
    scheme = urlsplit(path_or_url).scheme
    if scheme in ("http", "https"):
        return RemoteKeys(path_or_url, context=context)
    return StaticKeys.load(path_or_url)
