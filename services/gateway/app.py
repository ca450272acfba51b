"""The gateway's web application: the pages, the JSON API, and errors always answered in words."""

from __future__ import annotations

import functools
import gzip
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from pathlib import Path

from aiohttp import web

from services.common.errors import InvalidArgument
from services.common.settings import Settings
from services.gateway import events, topics  # noqa: F401  (register the event stream and topics routes)
from services.gateway.api import TENANTS, UPSTREAMS, routes
from services.gateway.errors import UpstreamFailure
from services.gateway.upstream import NoViewer, connect

log = logging.getLogger("services.gateway")

STATIC_DIR = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    # What frame-ancestors says, for browsers that predate it.
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problem(status: int, message: str, **extra: str) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


@web.middleware
async def in_words(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure of the API becomes JSON {"error": sentence}; nothing reaches the viewer blank."""
    try:
        response = await handler(request)
    except NoViewer as exc:
        return problem(401, str(exc))
    except InvalidArgument as exc:
        return problem(400, f"{exc.field}: {exc.reason}", field=exc.field)
    except UpstreamFailure as exc:
        return problem(exc.status, exc.message, code=exc.code)
    except web.HTTPException as exc:
        if not request.path.startswith("/api/"):
            raise
        return problem(exc.status, f"{request.method} {request.path}: {exc.reason}")
    except Exception:
        log.exception("unexpected failure of %s %s", request.method, request.path)
        return problem(500, "The dashboard gateway failed unexpectedly; the operator will find why in its log")
    return response


async def secured(_: web.Request, response: web.StreamResponse) -> None:
    """Every response gets the security headers just before it is sent: pages, static files, errors
    of the API and of aiohttp itself (a 404, a 413), and the event stream."""
    response.headers.update(SECURITY_HEADERS)


async def index(_: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html")


@functools.cache
def plotly_bundle() -> tuple[bytes, bytes] | None:
    """Plotly's browser bundle from the plotly package (so nothing is fetched at run time), plain and
    gzipped once: about 4.8 MB that compress to a third."""
    bundle = resources.files("plotly") / "package_data" / "plotly.min.js"
    if not bundle.is_file():
        return None
    plain = bundle.read_bytes()
    return plain, gzip.compress(plain, compresslevel=6)


async def plotly_js(request: web.Request) -> web.StreamResponse:
    found = plotly_bundle()
    if found is None:
        return problem(404, "plotly.min.js is missing from the plotly package; reinstall it")
    headers = {"Cache-Control": "public, max-age=86400", "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return web.Response(body=found[1], content_type="text/javascript", headers=headers)
    return web.Response(body=found[0], content_type="text/javascript", headers=headers)


def build_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[in_words], client_max_size=256 * 1024)
    app[TENANTS] = [t.strip() for t in settings.gateway_tenants.split(",") if t.strip()]

    async def upstreams(app: web.Application) -> AsyncIterator[None]:
        async with connect(settings) as connected:
            app[UPSTREAMS] = connected
            yield

    app.cleanup_ctx.append(upstreams)
    app.on_response_prepare.append(secured)
    app.router.add_get("/", index)
    app.router.add_get("/static/vendor/plotly.min.js", plotly_js)
    app.router.add_routes(routes)
    app.router.add_static("/static/", STATIC_DIR)
    return app
