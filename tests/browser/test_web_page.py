"""The web page at /ui/, in a real browser against a real ``v1op serve``.

Debian's chromium, headless, driven by Playwright (``executable_path=/usr/bin/chromium``:
Playwright's own browsers are never downloaded). One server (a subprocess, SQLite file
store, gRPC and HTTP ports) and one browser for the module; each test opens a tab of its own
(sessionStorage, where the page keeps the token, is per tab) and uses users of its own, so
its lists are exact. A producer (services/eval over gRPC) creates operations and reports
progress while the page watches. Every wait is on a condition in the page; every tab must
end with no console error but those a test expects (a refusal the server answers with 4xx
is one, as Chromium reports any failed fetch on the console).

Without chromium or Playwright the module is skipped, unless V1OP_REQUIRE_BROWSER=1 (set by
CI) makes that a failure. Screenshots of each view go to .screenshots/ (not committed).
"""

from __future__ import annotations

import datetime
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from conftest import make_progress, make_result
from google.longrunning import operations_pb2_grpc
from google.longrunning import operations_proto_pb2 as lro
from google.protobuf import struct_pb2
from google.rpc import code_pb2, error_details_pb2
from v1op.v1 import operation_service_pb2 as pb
from v1op.v1 import operation_service_pb2_grpc as pb_grpc

from v1op_pb import Operation, pack
from v1op_pb._status import make_status

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE = os.environ.get("V1OP_REQUIRE_BROWSER") == "1"
# As this machine's notes say chromium must start here: no GPU, no QUIC, and none of the
# background connections a closed network refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parent.parent.parent
SCREENSHOTS = ROOT / ".screenshots"
SCRIPT = Path(sys.executable).parent / "v1op"
READY = re.compile(r"v1op: serving (gRPC|HTTP) on 127\.0\.0\.1:(\d+)\n\Z")
START_TIMEOUT = 60.0
CALL_TIMEOUT = 20.0
# How long the page may take to show a change: its pollers back off to at most 15 s.
SHOWN_TIMEOUT_MS = 40_000
USERS = [f"users/person-{i:02d}" for i in range(20)]
VIEWER_ZONE = "Asia/Kolkata"  # UTC+5:30 all year
VIEWER_OFFSET = datetime.timedelta(hours=5, minutes=30)
TOKENS = {
    "services/eval": "tok-eval",
    "services/other": "tok-other",
    **{user: f"tok-{user.split('/')[1]}" for user in USERS},
}
HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>&amp;"\''


def _needs_a_browser():
    problem = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "Playwright for Python is not installed (the test extra has it)"
    if problem is None and not os.access(CHROMIUM, os.X_OK):
        problem = f"{CHROMIUM} is missing: apt-get install chromium"
    if problem is not None:
        if REQUIRE:
            pytest.fail(f"{problem} (V1OP_REQUIRE_BROWSER=1)", pytrace=False)
        pytest.skip(problem)


# --- the server and the producer ---------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[str]
    grpc_port: int
    http_port: int
    stderr_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


def start_server(directory: Path) -> Server:
    tokens = directory / "tokens.txt"
    tokens.write_text("".join(f"{t} {who}\n" for who, t in TOKENS.items()), encoding="utf-8")
    command = [
        str(SCRIPT),
        "serve",
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
        "--db",
        str(directory / "operations.db"),
        "--tokens",
        str(tokens),
        "--import",
        "v1op.example.v1.evaluation_pb2",
    ]
    stderr_path = directory / "serve.err"
    env = {k: v for k, v in os.environ.items() if not k.startswith("V1OP_")}
    with open(stderr_path, "w", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env
        )
    lines: queue.Queue[str] = queue.Queue()
    stdout = process.stdout
    assert stdout is not None
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    ports: dict[str, int] = {}
    try:
        while len(ports) < 2:
            match = READY.match(lines.get(timeout=START_TIMEOUT))
            assert match is not None, stderr_path.read_text()
            ports[match[1]] = int(match[2])
    except (queue.Empty, AssertionError):
        process.kill()
        process.wait()
        raise AssertionError(f"v1op serve did not start: {stderr_path.read_text()}") from None
    return Server(process, ports["gRPC"], ports["HTTP"], stderr_path)


class Producer:
    """The service that starts work for users and reports on it (services/eval)."""

    def __init__(self, port: int) -> None:
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.ops = pb_grpc.OperationServiceStub(self.channel)
        self.lro = operations_pb2_grpc.OperationsStub(self.channel)

    @staticmethod
    def auth(principal: str = "services/eval") -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {TOKENS[principal]}"),)

    def create(self, owner: str, requested: Operation | None = None) -> Operation:
        if requested is None:
            requested = Operation(metadata=pack(make_progress(0.1, "starting")))
        request = pb.CreateOperationRequest(operation=requested, on_behalf_of=owner)
        return self.ops.CreateOperation(
            request, metadata=self.auth(), timeout=CALL_TIMEOUT
        ).operation

    def finished(self, owner: str) -> Operation:
        requested = Operation(done=True, metadata=pack(make_progress(1.0, "done")))
        requested.response.CopyFrom(pack(make_result()))
        return self.create(owner, requested)

    def report(self, name: str, fraction: float, message: str) -> None:
        update = Operation(name=name, metadata=pack(make_progress(fraction, message)))
        request = pb.UpdateOperationRequest(operation=update)
        self.ops.UpdateOperation(request, metadata=self.auth(), timeout=CALL_TIMEOUT)

    def succeed(self, name: str) -> None:
        final = Operation(name=name, done=True)
        final.response.CopyFrom(pack(make_result()))
        request = pb.FinalizeOperationRequest(operation=final)
        self.ops.FinalizeOperation(request, metadata=self.auth(), timeout=CALL_TIMEOUT)

    def get(self, name: str, principal: str) -> Operation:
        request = pb.GetOperationRequest(name=name)
        return self.ops.GetOperation(
            request, metadata=self.auth(principal), timeout=CALL_TIMEOUT
        ).operation

    def delete(self, name: str, principal: str) -> None:
        request = lro.DeleteOperationRequest(name=name)
        self.lro.DeleteOperation(request, metadata=self.auth(principal), timeout=CALL_TIMEOUT)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    _needs_a_browser()
    served = start_server(tmp_path_factory.mktemp("web-page"))
    yield served
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=40) == 0, served.stderr_path.read_text()


@pytest.fixture(scope="module")
def producer(server: Server) -> Iterator[Producer]:
    made = Producer(server.grpc_port)
    yield made
    made.channel.close()


@pytest.fixture(scope="module")
def users() -> Iterator[str]:
    return iter(USERS)


# --- the browser ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(server: Server, tmp_path_factory):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=SHOWN_TIMEOUT_MS)
    SCREENSHOTS.mkdir(exist_ok=True)
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh --user-data-dir
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1100, "height": 900},
            # A viewer away from UTC, so that local times differ from the stored ones.
            timezone_id=VIEWER_ZONE,
            locale="en-US",
            # No animation: a screenshot shows a progress bar where it is going.
            reduced_motion="reduce",
        )
        context.set_default_timeout(SHOWN_TIMEOUT_MS)
        yield context
        context.close()


@dataclass
class Tab:
    """A browser tab on the page, with what it said on its console."""

    page: object
    base: str
    console: list[tuple[str, str]] = field(default_factory=list)
    expected_errors: list[re.Pattern[str]] = field(default_factory=list)

    def expect_error(self, pattern: str) -> None:
        """A console error this test causes on purpose (a refusal's 4xx, a blocked script)."""
        self.expected_errors.append(re.compile(pattern))

    def unexpected_errors(self) -> list[str]:
        return [
            text
            for kind, text in self.console
            if kind in ("error", "pageerror")
            and not any(p.search(text) for p in self.expected_errors)
        ]

    def goto(self, path: str) -> None:
        self.page.goto(self.base + path)

    def sign_in(self, principal: str, path: str = "/ui/") -> None:
        from playwright.sync_api import expect

        self.goto(path)
        self.page.get_by_label("Token").fill(TOKENS[principal])
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.locator("#nav")).to_be_visible()

    def shot(self, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def fits(self) -> bool:
        """Nothing wider than the window: no sideways scrolling."""
        return bool(
            self.page.evaluate(
                "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
            )
        )


@pytest.fixture
def tab(browser, server: Server) -> Iterator[Tab]:
    page = browser.new_page()
    opened = Tab(page, server.base)
    page.on("console", lambda message: opened.console.append((message.type, message.text)))
    page.on("pageerror", lambda error: opened.console.append(("pageerror", str(error))))
    yield opened
    page.close()
    assert opened.unexpected_errors() == []


# WCAG 2 contrast of every piece of text on screen against the background it is drawn on:
# 4.5:1, or 3:1 for large text (24 px, or 18.66 px bold). Disabled controls are exempt.
LOW_CONTRAST = """() => {
  const rgba = (text) => (text.match(/[\\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => {
    const linear = (c) =>
      c / 255 <= 0.03928 ? c / 255 / 12.92 : ((c / 255 + 0.055) / 1.055) ** 2.4;
    return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
  };
  const background = (element) => {
    for (let e = element; e; e = e.parentElement) {
      const color = rgba(getComputedStyle(e).backgroundColor);
      if (color.length === 3 || (color.length === 4 && color[3] > 0)) return color.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const found = [];
  for (const element of document.querySelectorAll("body *")) {
    const own = [...element.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !element.checkVisibility() || element.closest(":disabled")) continue;
    const style = getComputedStyle(element);
    const [a, b] = [luminance(rgba(style.color)), luminance(background(element))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      found.push(`${element.textContent.trim().slice(0, 40)}: ${ratio.toFixed(2)}`);
    }
  }
  return found;
}"""


def low_contrast(tab: Tab) -> list[str]:
    return list(tab.page.evaluate(LOW_CONTRAST))


def row(tab: Tab, name: str):
    return tab.page.locator("li.op").filter(
        has=tab.page.locator(f'a[href$="{name.split("/")[1]}"]')
    )


# --- the tests ------------------------------------------------------------------------------------


def test_sign_in_keeps_the_token_in_session_storage_only(tab, users):
    from playwright.sync_api import expect

    person = next(users)
    page = tab.page
    tab.goto("/ui/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    token_input = page.get_by_label("Token")
    expect(token_input).to_have_attribute("type", "password")
    tab.shot("sign-in")

    tab.expect_error(r"status of 401")
    token_input.fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("The server refused this token")
    assert page.evaluate("sessionStorage.length") == 0

    token_input.fill(TOKENS[person])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Operations")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('v1op.token')") == TOKENS[person]
    assert page.evaluate("localStorage.length") == 0
    assert TOKENS[person] not in page.url
    assert page.evaluate("document.cookie") == ""

    # A reload keeps the sign-in (same tab); signing out forgets the token.
    page.reload()
    expect(page.get_by_role("heading", name="Operations")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Token")).to_be_visible()
    assert low_contrast(tab) == []
    assert page.evaluate("sessionStorage.length") == 0
    assert not any(TOKENS[person] in text for _, text in tab.console)


def test_the_list_is_newest_first_paged_and_filtered_by_state(tab, producer, users):
    from playwright.sync_api import expect

    person = next(users)
    made = [producer.finished(person).name for _ in range(21)]
    failed = Operation(done=True, metadata=pack(make_progress(0.4, "half")))
    failed.error.CopyFrom(make_status(code_pb2.INTERNAL, "it broke"))
    made.append(producer.create(person, failed).name)
    running = producer.create(person).name
    made.append(running)
    gone = producer.finished(person).name
    producer.delete(gone, person)
    page = tab.page

    tab.sign_in(person)
    rows = page.locator("li.op")
    expect(rows).to_have_count(20)
    expect(page.locator(".summary")).to_contain_text("23 operations, newest first · page 1")
    shown = [
        href.rsplit("/", 1)[1]
        for href in rows.locator("a.op-name").evaluate_all(
            "l => l.map(a => a.getAttribute('href'))"
        )
    ]
    assert shown == [name.split("/")[1] for name in made[::-1][:20]]
    expect(rows.first.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "10")
    assert low_contrast(tab) == []
    tab.shot("list")

    page.get_by_role("button", name="Older").click()
    expect(rows).to_have_count(3)
    expect(page.locator(".summary")).to_contain_text("page 2")
    expect(page.get_by_role("button", name="Older")).to_be_disabled()
    page.get_by_role("button", name="Newer").click()
    expect(rows).to_have_count(20)

    page.get_by_label("State").select_option("failed")
    expect(page).to_have_url(re.compile(r"/ui/\?state=failed$"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Failed")
    expect(rows.first.locator(".op-error")).to_have_text("INTERNAL: it broke")
    assert low_contrast(tab) == []
    page.get_by_label("State").select_option("running")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("a.op-name")).to_have_text(running.split("/")[1])
    page.get_by_label("State").select_option("deleted")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Deleted")
    # A deleted operation is not served by name; its view shows what the list had.
    rows.first.locator("a.op-name").click()
    expect(page.get_by_role("alert")).to_contain_text("This operation is deleted")
    expect(page.locator("dl.fields")).to_contain_text(gone)


def test_the_inbox_counts_unseen_operations_and_opening_one_marks_it_seen(tab, producer, users):
    from playwright.sync_api import expect

    person = next(users)
    finished = [producer.finished(person).name for _ in range(3)]
    producer.create(person)  # running: not in the inbox
    page = tab.page

    tab.sign_in(person)
    count = page.locator("#inbox-count")
    expect(count).to_have_text("3")
    expect(count).to_have_attribute("aria-label", "3 unseen")
    page.get_by_role("link", name=re.compile("^Inbox")).click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    expect(page.locator("li.op")).to_have_count(3)
    tab.shot("inbox")

    opened = finished[1]
    row(tab, opened).locator("a.op-name").click()
    expect(page).to_have_url(re.compile(f"/ui/operations/{opened.split('/')[1]}$"))
    expect(page.get_by_role("status").filter(has_text="Marked seen.")).to_be_visible()
    expect(count).to_have_text("2")
    assert producer.get(opened, person).HasField("seen_by_creator_time")
    assert not producer.get(finished[0], person).HasField("seen_by_creator_time")
    page.go_back()
    expect(page.locator("li.op")).to_have_count(2)


def test_a_progress_bar_moves_while_the_producer_reports(tab, producer, users):
    from playwright.sync_api import expect

    person = next(users)
    name = producer.create(person).name
    page = tab.page
    tab.sign_in(person)
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    bar = row(tab, name).get_by_role("progressbar")
    expect(bar).to_have_attribute("aria-valuenow", "10")
    expect(row(tab, name)).to_contain_text("10% · starting")
    producer.report(name, 0.55, "scoring 55 of 100")
    expect(bar).to_have_attribute("aria-valuenow", "55")
    expect(row(tab, name)).to_contain_text("55% · scoring 55 of 100")
    expect(bar).to_have_attribute("aria-valuetext", "55% · scoring 55 of 100")

    # The operation's own view: its bar moves too, and the end shows at once (WaitOperation).
    row(tab, name).locator("a.op-name").click()
    detail_bar = page.get_by_role("progressbar")
    expect(detail_bar).to_have_attribute("aria-valuenow", "55")
    producer.report(name, 0.9, "scoring 90 of 100")
    expect(detail_bar).to_have_attribute("aria-valuenow", "90")
    expect(page.locator(".any")).to_contain_text('"message": "scoring 90 of 100"')
    tab.shot("detail-running")
    producer.succeed(name)
    expect(page.locator(".badges-line")).to_contain_text("Succeeded")
    expect(page.get_by_role("progressbar")).to_have_count(0)
    expect(page.get_by_role("region", name="Response")).to_contain_text(
        "type.googleapis.com/v1op.example.v1.EvaluationResult"
    )
    page.go_back()
    expect(row(tab, name)).to_contain_text("Succeeded")
    assert page.evaluate("window.__sameDocument") is True


def hostile_failure(producer: Producer, owner: str) -> Operation:
    metadata = struct_pb2.Struct()
    metadata.update(
        {HOSTILE: HOSTILE, "progress": 0.5, "message": HOSTILE, "nested": {"x": [HOSTILE]}}
    )
    requested = Operation(done=True, metadata=pack(metadata))
    requested.error.CopyFrom(
        make_status(
            code_pb2.FAILED_PRECONDITION,
            f"the evaluation failed: {HOSTILE}",
            [
                error_details_pb2.ErrorInfo(
                    reason="DATASET_GONE", domain="eval.example.com", metadata={"dataset": HOSTILE}
                ),
                error_details_pb2.BadRequest(
                    field_violations=[
                        {"field": "dataset.rows[3]", "description": f"missing {HOSTILE}"},
                        {"field": "model", "description": "unknown model"},
                    ]
                ),
                error_details_pb2.RetryInfo(retry_delay={"seconds": 90, "nanos": 500_000_000}),
                error_details_pb2.ResourceInfo(
                    resource_type="eval.example.com/Dataset", resource_name=f"datasets/{HOSTILE}"
                ),
                error_details_pb2.PreconditionFailure(
                    violations=[{"type": "STATE", "subject": "datasets/d1", "description": "gone"}]
                ),
                error_details_pb2.Help(
                    links=[
                        {"description": "runbook", "url": "https://runbook.example.com/gone"},
                        {"description": "trap", "url": "javascript:window.__pwned=1"},
                    ]
                ),
            ],
        )
    )
    return producer.create(owner, requested)


def no_injection(tab: Tab) -> None:
    page = tab.page
    assert page.locator("main img, main script, main [onerror]").count() == 0
    assert page.locator('a[href^="javascript"]').count() == 0
    assert page.evaluate("window.__pwned") is None


def test_a_failed_operation_shows_its_error_and_typed_details_as_text(tab, producer, users):
    from playwright.sync_api import expect

    person = next(users)
    failed = hostile_failure(producer, person)
    page = tab.page
    tab.sign_in(person, f"/ui/operations/{failed.name.split('/')[1]}")

    error = page.get_by_role("region", name="Error", exact=True)
    expect(error).to_contain_text("FAILED_PRECONDITION (code 9)")
    expect(error.locator(".status-message")).to_have_text(f"the evaluation failed: {HOSTILE}")
    info = error.locator('[data-type="type.googleapis.com/google.rpc.ErrorInfo"]')
    expect(info).to_contain_text("DATASET_GONE")
    expect(info).to_contain_text("eval.example.com")
    expect(info).to_contain_text(HOSTILE)
    bad = error.locator('[data-type="type.googleapis.com/google.rpc.BadRequest"]')
    expect(bad).to_contain_text("dataset.rows[3]")
    expect(bad).to_contain_text(f"missing {HOSTILE}")
    expect(bad).to_contain_text("unknown model")
    retry = error.locator('[data-type="type.googleapis.com/google.rpc.RetryInfo"]')
    expect(retry).to_contain_text("90.5 s (90.500s)")
    resource = error.locator('[data-type="type.googleapis.com/google.rpc.ResourceInfo"]')
    expect(resource).to_contain_text("eval.example.com/Dataset")
    expect(resource).to_contain_text(f"datasets/{HOSTILE}")
    expect(
        error.locator('[data-type="type.googleapis.com/google.rpc.PreconditionFailure"]')
    ).to_contain_text("datasets/d1")
    help_links = error.locator('[data-type="type.googleapis.com/google.rpc.Help"]')
    expect(help_links.get_by_role("link")).to_have_attribute(
        "href", "https://runbook.example.com/gone"
    )
    expect(help_links).to_contain_text("javascript:window.__pwned=1")

    metadata = page.get_by_role("region", name="Metadata")
    expect(metadata).to_contain_text("type.googleapis.com/google.protobuf.Struct")
    expect(metadata.locator("pre")).to_contain_text(HOSTILE.replace('"', '\\"'))

    # Times in the viewer's zone, the full nanosecond timestamp on hover (title) and focus.
    created = page.locator("dl.fields time").first
    local = failed.create_time.ToDatetime() + VIEWER_OFFSET
    expect(created).to_contain_text(f"{local:%I:%M:%S %p} GMT+5:30")
    nanos = failed.create_time.ToNanoseconds() % 1_000_000_000
    full = failed.create_time.ToJsonString()
    expect(created).to_have_attribute("title", re.compile(rf"\.{nanos:09d}Z$"))
    assert full.rstrip("Z").split(".")[0] in created.get_attribute("title")
    expect(created).to_have_attribute("datetime", created.get_attribute("title"))
    no_injection(tab)
    assert low_contrast(tab) == []
    tab.shot("detail-failed")


def test_hostile_names_and_responses_render_as_text(tab, producer, users):
    from playwright.sync_api import expect

    person = next(users)
    result = make_result(f"evaluations/{HOSTILE}")
    result.details.update({HOSTILE: HOSTILE})
    requested = Operation(done=True, metadata=pack(make_progress(1.0, HOSTILE)))
    requested.response.CopyFrom(pack(result))
    made = producer.create(person, requested)
    page = tab.page
    tab.sign_in(person, f"/ui/operations/{made.name.split('/')[1]}")
    response = page.get_by_role("region", name="Response")
    expect(response).to_contain_text("type.googleapis.com/v1op.example.v1.EvaluationResult")
    expect(response.locator("pre")).to_contain_text(
        f'"evaluation": "evaluations/{HOSTILE.replace(chr(34), chr(92) + chr(34))}"'
    )
    no_injection(tab)

    # A hostile name in the address: the server's refusal, shown as text.
    tab.expect_error(r"status of 40[04]")
    hostile_id = "%3Cimg%20src%3Dx%20onerror%3Dwindow.__pwned%3D1%3E"
    tab.goto(f"/ui/operations/{hostile_id}")
    expect(page.get_by_role("alert")).to_contain_text("<img src=x onerror=window.__pwned=1>")
    no_injection(tab)


def test_the_creator_aborts_a_running_operation_and_others_are_refused(tab, producer, users):
    from playwright.sync_api import expect

    person = next(users)
    name = producer.create(person).name
    page = tab.page

    # A service may read it, but only its creator may abort it: the server says so.
    tab.sign_in("services/other", f"/ui/operations/{name.split('/')[1]}")
    tab.expect_error(r"status of 403")
    page.get_by_role("button", name="Abort…").click()
    page.get_by_role("button", name="Abort operation").click()
    expect(page.get_by_role("alert").filter(has_text="Abort refused")).to_have_text(
        f"Abort refused: PERMISSION_DENIED: only the creator of {name} may abort it"
    )
    assert not producer.get(name, person).done

    page.get_by_role("button", name="Sign out").click()
    tab.sign_in(person, f"/ui/operations/{name.split('/')[1]}")
    page.get_by_role("button", name="Abort…").click()
    page.get_by_role("button", name="Keep running").click()
    expect(page.get_by_role("button", name="Abort…")).to_be_focused()
    page.get_by_role("button", name="Abort…").click()
    page.get_by_role("button", name="Abort operation").click()
    expect(page.locator(".badges-line")).to_contain_text("Aborted")
    assert low_contrast(tab) == []
    expect(page.get_by_role("region", name="Error", exact=True)).to_contain_text(
        f"CANCELLED (code 1)aborted by {person}"
    )
    expect(page.get_by_role("button", name="Abort…")).to_have_count(0)
    stored = producer.get(name, person)
    assert stored.done and stored.error.code == code_pb2.CANCELLED
    tab.shot("detail-aborted")


def test_a_deep_link_opens_the_operation_after_sign_in(tab, producer, users):
    from playwright.sync_api import expect

    person = next(users)
    name = producer.finished(person).name
    page = tab.page
    path = f"/ui/operations/{name.split('/')[1]}"
    tab.goto(path)
    expect(page.get_by_label("Token")).to_be_visible()
    page.get_by_label("Token").fill(TOKENS[person])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=re.compile("^Operation "))).to_contain_text(
        name.split("/")[1]
    )
    expect(page).to_have_url(tab.base + path)
    expect(page.locator("dl.fields")).to_contain_text(name)
    # Opened directly in a tab that is signed in.
    page.goto(tab.base + path)
    expect(page.locator("dl.fields")).to_contain_text(name)


def test_every_view_fits_375_pixels(tab, producer, users):
    from playwright.sync_api import expect

    person = next(users)
    hostile_failure(producer, person)
    producer.create(person)
    page = tab.page
    page.set_viewport_size({"width": 375, "height": 800})
    tab.sign_in(person)
    expect(page.locator("li.op")).to_have_count(2)
    expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "10")
    expect(page.locator(".op-error:not(:empty)")).to_have_text(
        f"FAILED_PRECONDITION: the evaluation failed: {HOSTILE}"
    )
    no_injection(tab)
    assert tab.fits()
    tab.shot("list-375")
    page.get_by_role("link", name=re.compile("^Inbox")).click()
    expect(page.locator("li.op")).to_have_count(1)
    assert tab.fits()
    page.locator("li.op a.op-name").click()
    expect(page.get_by_role("region", name="Error", exact=True)).to_contain_text(
        "FAILED_PRECONDITION"
    )
    page.locator("dl.fields time").first.focus()  # the full timestamp shows beside it
    assert tab.fits()
    tab.shot("detail-375")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Token")).to_be_visible()
    assert tab.fits()


def test_keyboard_labels_and_visible_focus(tab, producer, users):
    from playwright.sync_api import expect

    person = next(users)
    name = producer.finished(person).name
    page = tab.page
    tab.goto("/ui/")
    # The token field is reached by keyboard and signs in with Enter.
    token = page.get_by_label("Token")
    for _ in range(10):
        page.keyboard.press("Tab")
        if token.evaluate("e => e === document.activeElement"):
            break
    expect(token).to_be_focused()
    page.keyboard.type(TOKENS[person])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Operations")).to_be_focused()

    # Every control has a name; focus is drawn with a visible outline.
    expect(page.get_by_label("State")).to_be_visible()
    inbox = page.get_by_role("link", name=re.compile("^Inbox"))
    for _ in range(10):
        page.keyboard.press("Tab")
        if inbox.evaluate("e => e === document.activeElement"):
            break
    expect(inbox).to_be_focused()
    outline = inbox.evaluate(
        "e => [getComputedStyle(e).outlineStyle, parseFloat(getComputedStyle(e).outlineWidth)]"
    )
    assert outline[0] != "none" and outline[1] >= 2, outline
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Inbox")).to_be_focused()
    link = page.locator("li.op a.op-name")
    link.focus()
    page.keyboard.press("Enter")
    expect(page.locator("dl.fields")).to_contain_text(name)
    for selector in ("button", "select", "input"):
        unnamed = page.locator(selector).evaluate_all(
            "l => l.filter(e => !(e.labels?.length || e.textContent.trim()"
            " || e.getAttribute('aria-label'))).length"
        )
        assert unnamed == 0, selector


def test_the_page_is_locked_down(tab, server):
    from playwright.sync_api import expect

    page = tab.page
    for path in (
        "/ui/",
        "/ui/inbox",
        "/ui/operations/x",
        "/ui/assets/app.js",
        "/ui/assets/style.css",
    ):
        response = page.request.get(server.base + path)
        assert response.status == 200, path
        headers = response.headers
        policy = headers["content-security-policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy, policy
        assert "frame-ancestors 'none'" in policy and "'unsafe-inline'" not in policy
        assert headers["x-content-type-options"] == "nosniff"
    tab.goto("/ui/")
    expect(page.get_by_label("Token")).to_be_visible()
    # The browser enforces the policy: an inline script does not run.
    tab.expect_error(r"Content Security Policy")
    ran = page.evaluate(
        """() => { const s = document.createElement('script');
                   s.textContent = 'window.__inline = 1'; document.body.append(s);
                   return window.__inline === 1; }"""
    )
    assert ran is False
