"""The playground: a static page (plain ES modules, no build step) served at ``/playground``.

The page holds no data, so it is served without an API key; everything it shows comes from ``/v1`` on the
same origin, fetched with the key the person types (kept in the tab's ``sessionStorage`` only). The
assets ship inside the package (``agent/web/static``) and load nothing from the network.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from agent.app_keys import SETTINGS

STATIC = Path(__file__).parent / "static"
PREFIX = "/playground"
routes = web.RouteTableDef()

# The page renders model output as text nodes only; the policy is a second line of defence.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
        "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

LANDING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>agent</title><link rel="icon" href="/playground/static/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/playground/static/style.css"></head>
<body class="landing"><main class="landing-card">
<h1>agent</h1><p>The OpenAI Assistants API for local models. The API lives under <code>/v1</code>.</p>
<p><a class="button primary" href="/playground">Open the playground</a></p>
</main></body></html>
"""


def is_public(path: str) -> bool:
    """Paths served without an API key: the landing page and the playground's static assets."""
    return path in ("/", PREFIX, PREFIX + "/", PREFIX + "/config.json") or path.startswith(
        PREFIX + "/static/"
    )


@routes.get("/")
async def landing(_request: web.Request) -> web.Response:
    return web.Response(text=LANDING, content_type="text/html", headers=HEADERS)


@routes.get(PREFIX)
@routes.get(PREFIX + "/")
async def page(_request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={**HEADERS, "Content-Type": "text/html"})


@routes.get(PREFIX + "/config.json")
async def config(request: web.Request) -> web.Response:
    """What the page needs before it has a key: whether it must ask for one."""
    return web.json_response({"auth_required": bool(request.app[SETTINGS].keys)}, headers=HEADERS)


@routes.get(PREFIX + "/static/{name}")
async def asset(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    path = STATIC / name
    if "/" in name or name.startswith(".") or name == "index.html" or not path.is_file():
        raise web.HTTPNotFound()
    kind = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}.get(path.suffix)
    if kind is None:
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={**HEADERS, "Content-Type": kind})
