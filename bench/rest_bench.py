"""The HTTP side of ``bench.grpc_bench``: GetOperation over the documented REST API, and
over the Connect protocol with JSON, on the server's HTTP port.

``RestClients`` mirrors ``bench.grpc_bench.Clients``: one ``aiohttp.ClientSession`` per
simulated client, each with a connector of one keep-alive connection, opened once and reused,
as separate client processes would. ``get`` sends ``GET /v1/operations%2F<id>`` (the name
percent-encoded as one path segment, as the documented client does) with the bearer token,
and checks the answer: HTTP 200, a JSON body, ``{"operation": {"name": <the name>, ...}}``.
It returns what went wrong, or None, so that the benchmark counts errors instead of timing
them as answers.

``ConnectClients`` does the same over Connect: ``POST /v1op.v1.OperationService/GetOperation``
with ``{"name": <the name>}`` as ``application/json`` and ``Connect-Protocol-Version: 1``,
checking HTTP 200 and ``{"operation": {"name": <the name>, ...}}``.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import Sequence

import aiohttp
from yarl import URL

__all__ = ["ConnectClients", "RestClients", "operation_url"]

CALL_TIMEOUT = 30.0


def operation_url(base: str, name: str) -> URL:
    """``base/v1/operations%2F<id>``, kept encoded: the name is one path segment."""
    return URL(f"{base}/v1/{urllib.parse.quote(name, safe='')}", encoded=True)


class RestClients:
    """One session (and keep-alive connection) per simulated client, opened once, reused."""

    transport = "REST"

    def __init__(self, base: str, token: str) -> None:
        self._base = base.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT)
        self._sessions: list[aiohttp.ClientSession] = []

    async def ensure(self, count: int) -> None:
        while len(self._sessions) < count:
            # limit=1: this client's one connection, kept alive between its requests.
            connector = aiohttp.TCPConnector(limit=1, keepalive_timeout=60.0)
            self._sessions.append(
                aiohttp.ClientSession(
                    connector=connector, headers=self._headers, timeout=self._timeout
                )
            )

    def requests(self, names: Sequence[str]) -> list[tuple[URL, str]]:
        return [(operation_url(self._base, name), name) for name in names]

    async def get(self, client: int, request: tuple[URL, str]) -> str | None:
        """GET one operation; None if the answer is right, else what was wrong with it."""
        url, name = request
        try:
            async with self._sessions[client].get(url) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            return f"{type(e).__name__}: {e}"
        return _checked(status, body, name)

    async def close(self) -> None:
        for session in self._sessions:
            await session.close()


class ConnectClients(RestClients):
    """GetOperation over Connect (unary, JSON), one keep-alive connection per client."""

    transport = "Connect JSON"

    def __init__(self, base: str, token: str) -> None:
        super().__init__(base, token)
        self._headers = {
            **self._headers,
            "Content-Type": "application/json",
            "Connect-Protocol-Version": "1",
        }
        self._url = URL(f"{self._base}/v1op.v1.OperationService/GetOperation", encoded=True)

    def requests(self, names: Sequence[str]) -> list[tuple[URL, str, bytes]]:  # type: ignore[override]
        # Made before the clock starts, as RestClients makes its URLs.
        return [(self._url, name, json.dumps({"name": name}).encode()) for name in names]

    async def get(self, client: int, request: tuple[URL, str, bytes]) -> str | None:  # type: ignore[override]
        url, name, body = request
        try:
            async with self._sessions[client].post(url, data=body) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            return f"{type(e).__name__}: {e}"
        return _checked(status, body, name)


def _checked(status: int, body: bytes, name: str) -> str | None:
    """None if the answer is the operation asked for, else what is wrong with it."""
    if status != 200:
        return f"HTTP {status}: {_message(body)}"
    try:
        answer = json.loads(body)
    except ValueError:
        return "HTTP 200 with a body that is not JSON"
    operation = answer.get("operation") if isinstance(answer, dict) else None
    if not isinstance(operation, dict) or operation.get("name") != name:
        return "HTTP 200 without the requested operation"
    return None


def _message(body: bytes) -> str:
    """The message of a google.rpc.Status JSON body, or the start of the body."""
    try:
        status = json.loads(body)
    except ValueError:
        return body[:80].decode("utf-8", "replace")
    if isinstance(status, dict) and isinstance(status.get("message"), str):
        return status["message"][:80]
    return body[:80].decode("utf-8", "replace")
