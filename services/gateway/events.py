"""Live alert updates: the tenant's WatchAlerts stream relayed to the browser as server-sent events.

Each event carries the alert as it is after the change and its sequence as the SSE id, so a browser
that reconnects (Last-Event-ID, or ?after=N) resumes where it stopped. A comment line every few
seconds keeps proxies from closing a quiet stream and tells the gateway when the viewer has left,
so that the upstream watch is cancelled instead of lingering.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import grpc
from aiohttp import web

from civic.listening.v1 import alerting_pb2
from services.gateway import convert, params
from services.gateway.api import routes, upstreams, viewer
from services.gateway.errors import describe

KEEPALIVE_S = 15.0
RECONNECT_MS = 3000


def frame(name: str, data: Any, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def resume_after(request: web.Request) -> int:
    after = params.integer(request.query, "after", 0, 2**62)
    last = request.headers.get("Last-Event-ID", "").strip()
    return max(after, int(last)) if last.isdigit() else after


async def keep_alive(request: web.Request, response: web.StreamResponse, watch: Any, lock: asyncio.Lock) -> None:
    """Comments every KEEPALIVE_S; cancels the watch as soon as the viewer's connection closes."""
    quiet = 0.0
    while True:
        await asyncio.sleep(1.0)
        quiet += 1.0
        if request.transport is None or request.transport.is_closing():
            watch.cancel()
            return
        if quiet >= KEEPALIVE_S:
            quiet = 0.0
            try:
                async with lock:
                    await response.write(b": keep-alive\n\n")
            except ConnectionError:
                watch.cancel()
                return


@routes.get("/api/alerts/events")
async def alert_events(request: web.Request) -> web.StreamResponse:
    who = viewer(request)
    after = resume_after(request)
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
    })
    await response.prepare(request)
    await response.write(f"retry: {RECONNECT_MS}\n: watching alerts\n\n".encode())
    watch = upstreams(request).alerting.WatchAlerts(
        alerting_pb2.WatchAlertsRequest(tenant=who.tenant, after_sequence=after), metadata=who.metadata)
    lock = asyncio.Lock()
    pinger = asyncio.create_task(keep_alive(request, response, watch, lock))
    try:
        async for reply in watch:
            async with lock:
                await response.write(frame("alert", convert.event(reply.event), reply.event.sequence))
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.CANCELLED:
            status, message = describe("alerting", exc.code(), exc.details() or "")
            with contextlib.suppress(ConnectionError):
                await response.write(frame("problem", {"status": status, "error": message}))
    except ConnectionError:  # the viewer left mid-write: nothing to tell anyone
        watch.cancel()
    except asyncio.CancelledError:
        watch.cancel()
        raise
    finally:
        pinger.cancel()
    return response
