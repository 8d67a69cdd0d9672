"""The web page at ``/ui/``: static files shipped in the wheel (``gateway/ui/``), served
with headers that lock it down.

The page is a client like any other: its JavaScript calls the REST and Connect API of the
same port with the person's bearer token, so the page itself needs no identity and shows
only what the API gives that token. Every path the page routes to (``/ui/``, ``/ui/inbox``,
``/ui/operations/<id>``) answers with the same ``index.html``, so that links to them work
when opened directly; the page's own code decides what to show.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

__all__ = ["UI_PREFIX", "WEB_PAGE_HEADERS", "add_web_page"]

UI_PREFIX = "/ui"

# No inline script or style anywhere (the page sets sizes through the CSSOM, which CSP
# allows); it loads nothing from elsewhere, talks only to its own origin, and may not be
# framed (clickjacking of the abort button).
_CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
WEB_PAGE_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # The files change with the installed package: revalidate rather than serve stale code.
    "Cache-Control": "no-cache",
}
_CONTENT_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}


def _load_files() -> dict[str, tuple[bytes, str]]:
    """Every file of ``ui/`` by name, read once: requests never touch the file system, so
    no path a caller sends can reach outside these files."""
    found: dict[str, tuple[bytes, str]] = {}
    for entry in (resources.files(__package__) / "ui").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in _CONTENT_TYPES:
            found[entry.name] = (entry.read_bytes(), _CONTENT_TYPES[suffix])
    if "index.html" not in found:
        raise RuntimeError("the web page's files are missing from the installed package")
    return found


def add_web_page(app: web.Application) -> None:
    """Serve the web page under ``/ui/`` on ``app``."""
    files = _load_files()
    index, _ = files["index.html"]

    def answer(body: bytes, content_type: str) -> web.Response:
        return web.Response(
            body=body,
            content_type=content_type,
            charset="utf-8",
            headers=WEB_PAGE_HEADERS,
        )

    async def page(request: web.Request) -> web.StreamResponse:
        return answer(index, "text/html")

    async def asset(request: web.Request) -> web.StreamResponse:
        found = files.get(request.match_info["name"])
        if found is None:
            # The port's middleware answers in its Status shape.
            raise web.HTTPNotFound()
        return answer(*found)

    async def to_page(request: web.Request) -> web.StreamResponse:
        # Returned, not raised: the port's middleware makes raised HTTP errors Status bodies.
        return web.Response(status=308, headers={"Location": f"{UI_PREFIX}/"})

    app.router.add_get(UI_PREFIX, to_page)
    app.router.add_get(f"{UI_PREFIX}/", page)
    app.router.add_get(f"{UI_PREFIX}/inbox", page)
    app.router.add_get(f"{UI_PREFIX}/operations/{{id:[^/]+}}", page)
    app.router.add_get(f"{UI_PREFIX}/assets/{{name:[^/]+}}", asset)
