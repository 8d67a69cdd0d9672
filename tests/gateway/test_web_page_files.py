"""The web page's files as ``v1op gateway`` serves them (``v1op serve --http-addr`` serves
the same app: tests/browser drives it in a browser): every route of the page, its headers
(CSP without inline script or style, nosniff, no framing), the content types a module script
needs under nosniff, refusals in the port's Status shape, and the list API the page calls,
through the gateway's gRPC channel.
"""

from __future__ import annotations

import http.client
import json
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from v1op.v1 import operation_service_pb2 as pb

from v1op_pb import Operation, pack
from v1op_pb.gateway.webpage import WEB_PAGE_HEADERS

SCRIPT = Path(sys.executable).parent / "v1op"
UI = Path(__file__).resolve().parent.parent.parent / "v1op_pb" / "gateway" / "ui"
READY = re.compile(r"v1op: serving HTTP on 127\.0\.0\.1:(\d+) for gRPC ")
TIMEOUT = 20


@pytest.fixture(scope="module")
def gateway(served) -> Iterator[int]:
    """``v1op gateway`` in front of the module's gRPC server: its HTTP port."""
    process = subprocess.Popen(
        [str(SCRIPT), "gateway", "--http-addr", "127.0.0.1:0", "--grpc-target", served.target],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    stdout = process.stdout
    assert stdout is not None
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        match = READY.match(lines.get(timeout=60))
    except queue.Empty:
        match = None
    if match is None:
        process.kill()
        raise AssertionError(f"v1op gateway did not start: {process.communicate()[1]}")
    yield int(match[1])
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=40) == 0


def fetch(port: int, path: str, method: str = "GET", headers: dict[str, str] | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


PAGE_ROUTES = ["/ui/", "/ui/inbox", "/ui/operations/0b6f3d2e-5f5c-4a57-9a7e-2f1c3d4e5f60"]
ASSETS = {
    "app.js": "text/javascript",
    "api.js": "text/javascript",
    "dom.js": "text/javascript",
    "style.css": "text/css",
    "icon.svg": "image/svg+xml",
}


@pytest.mark.parametrize("path", PAGE_ROUTES)
def test_every_route_of_the_page_is_its_index_with_the_lockdown_headers(gateway, path):
    status, headers, body = fetch(gateway, path)

    assert status == 200
    assert body == (UI / "index.html").read_bytes()
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    for name, value in WEB_PAGE_HEADERS.items():
        assert headers[name] == value
    policy = dict(
        part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";")
    )
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["default-src"] == "'none'"
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_the_page_has_no_inline_script_or_style_and_loads_nothing_from_elsewhere():
    for file in UI.iterdir():
        text = file.read_text(encoding="utf-8")
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), file.name
        if file.suffix == ".html":
            assert "style=" not in text and "<style" not in text
            assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", text))
            assert not re.search(r"\son\w+=", text)


@pytest.mark.parametrize(("name", "content_type"), ASSETS.items())
def test_assets_are_served_with_their_types(gateway, name, content_type):
    status, headers, body = fetch(gateway, f"/ui/assets/{name}")

    assert status == 200
    assert headers["Content-Type"] == f"{content_type}; charset=utf-8"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert body == (UI / name).read_bytes()


def test_every_module_the_page_imports_is_served(gateway):
    for file in UI.glob("*.js"):
        for imported in re.findall(r'from "\./([^"]+)"', file.read_text(encoding="utf-8")):
            assert fetch(gateway, f"/ui/assets/{imported}")[0] == 200, (file.name, imported)


@pytest.mark.parametrize(
    "path",
    [
        "/ui/assets/nope.js",
        "/ui/assets/..%2Fwebpage.py",
        "/ui/assets/%2e%2e%2f%2e%2e%2fapp.py",
        "/ui/assets/",
        "/ui/operations/a/b",
        "/ui/elsewhere",
    ],
)
def test_what_the_page_does_not_have_is_a_status_404(gateway, path):
    status, headers, body = fetch(gateway, path)

    assert status == 404
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body)["code"] == 5


def test_ui_without_its_slash_goes_to_the_page(gateway):
    status, headers, _ = fetch(gateway, "/ui")

    assert status == 308
    assert headers["Location"] == "/ui/"


def test_the_list_the_page_asks_for_goes_through_the_gateway(gateway, served, ops):
    user = served.fresh_user()
    made = []
    for _ in range(3):
        request = pb.CreateOperationRequest(
            operation=Operation(metadata=pack(pb.OperationProgress())), on_behalf_of=user
        )
        made.append(
            ops.CreateOperation(
                request, metadata=served.auth("services/eval"), timeout=TIMEOUT
            ).operation.name
        )
    query = urllib.parse.urlencode(
        {"pageSize": 2, "orderBy": "create_time desc", "filter": "state = running"}
    )
    bearer = {"Authorization": f"Bearer {served.tokens[user]}"}

    status, _, body = fetch(gateway, f"/v1/operations?{query}", headers=bearer)
    page = json.loads(body)
    assert status == 200, page
    assert [op["name"] for op in page["operations"]] == made[:0:-1]
    assert page["totalSize"] == 3
    token = urllib.parse.quote(page["nextPageToken"])
    status, _, body = fetch(gateway, f"/v1/operations?{query}&pageToken={token}", headers=bearer)
    assert [op["name"] for op in json.loads(body)["operations"]] == made[:1]

    status, _, body = fetch(gateway, "/v1/operations?filter=state%3Dpaused", headers=bearer)
    assert status == 400
    assert json.loads(body)["message"].startswith("filter: unknown state 'paused'")
