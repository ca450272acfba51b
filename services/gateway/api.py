"""The JSON API: one handler per thing the pages show or do, each one or a few gRPC calls made with
the viewer's credential through the generated stubs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from civic.listening.v1 import alerting_pb2, ingestion_pb2, search_pb2
from services.common.errors import InvalidArgument
from services.gateway import convert, overview, params
from services.gateway.errors import calling
from services.gateway.upstream import TENANT_HEADER, Upstreams, Viewer, viewer_from_headers

UPSTREAMS = web.AppKey("upstreams", Upstreams)
TENANTS = web.AppKey("tenants", list)
STATES: dict[str, alerting_pb2.AlertState] = {
    "firing": alerting_pb2.ALERT_STATE_FIRING,
    "resolved": alerting_pb2.ALERT_STATE_RESOLVED,
    "all": alerting_pb2.ALERT_STATE_UNSPECIFIED,
}
OPERATORS = {
    "equal": alerting_pb2.MATCH_OPERATOR_EQUAL,
    "not_equal": alerting_pb2.MATCH_OPERATOR_NOT_EQUAL,
    "regex": alerting_pb2.MATCH_OPERATOR_REGEX,
    "not_regex": alerting_pb2.MATCH_OPERATOR_NOT_REGEX,
}
MAX_BODY_FIELD_CHARS = 500
MAX_SILENCE_MINUTES = 60 * 24 * 90

routes = web.RouteTableDef()


def viewer(request: web.Request) -> Viewer:
    return viewer_from_headers(request.headers.get("Authorization", ""), request.headers.get(TENANT_HEADER, ""))


def upstreams(request: web.Request) -> Upstreams:
    return request.app[UPSTREAMS]


def call(request: web.Request, who: Viewer) -> dict[str, Any]:
    return {"metadata": who.metadata, "timeout": upstreams(request).timeout_s}


async def body(request: web.Request) -> dict[str, Any]:
    """The JSON object of a POST; an empty body reads as {}."""
    raw = await request.text()
    if not raw.strip():
        return {}
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidArgument("body", f"not JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(document, dict):
        raise InvalidArgument("body", "must be a JSON object")
    return document


def field(document: dict[str, Any], name: str, required: bool = True) -> str:
    value = document.get(name, "")
    if not isinstance(value, str):
        raise InvalidArgument(name, "must be a string")
    value = value.strip()
    if required and not value:
        raise InvalidArgument(name, "is required")
    if len(value) > MAX_BODY_FIELD_CHARS:
        raise InvalidArgument(name, f"at most {MAX_BODY_FIELD_CHARS} characters")
    return value


# --- the page itself ------------------------------------------------------------------------------


@routes.get("/healthz")
async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "serving"})


@routes.get("/api/config")
async def config(request: web.Request) -> web.Response:
    """What the front end needs before the viewer picks anything: the agencies it may offer."""
    return web.json_response({"tenants": request.app[TENANTS], "tenant_header": TENANT_HEADER})


# --- posts ----------------------------------------------------------------------------------------


@routes.get("/api/overview")
async def get_overview(request: web.Request) -> web.Response:
    who = viewer(request)
    async with calling("search"):
        document = await overview.build(upstreams(request), who, request.query, datetime.now(UTC))
    return web.json_response(document)


@routes.get("/api/search")
async def search(request: web.Request) -> web.Response:
    """Boolean search (q, filters, sort, page_size, page_token), or with semantic=1 the posts
    closest in meaning to q."""
    who, args = viewer(request), request.query
    filters = params.filters(args)
    query = params.text(args, "q")
    size = params.integer(args, "page_size", 1, 100, default=20)
    async with calling("search"):
        if params.flag(args, "semantic"):
            if not query:
                raise InvalidArgument("q", "a semantic search needs a text to compare meanings with")
            found = await upstreams(request).search.SemanticSearch(search_pb2.SemanticSearchRequest(
                tenant=who.tenant, text=query, filters=filters, page_size=size,
            ), **call(request, who))
            hits = [convert.hit(h) for h in found.hits]
            return web.json_response({"hits": hits, "total": len(hits), "next_page_token": "",
                                      "semantic": True, "encoder": found.encoder})
        reply = await upstreams(request).search.Search(search_pb2.SearchRequest(
            tenant=who.tenant, query=query, filters=filters, page_size=size,
            page_token=params.text(args, "page_token", 4000),
            sort=params.choice(args, "sort", params.SORTS, default="relevance"),
        ), **call(request, who))
    return web.json_response({"hits": [convert.hit(h) for h in reply.hits], "total": reply.total,
                              "next_page_token": reply.next_page_token, "semantic": False})


@routes.get("/api/posts/{channel}/{id:.+}")
async def get_post(request: web.Request) -> web.Response:
    who = viewer(request)
    async with calling("search"):
        reply = await upstreams(request).search.GetPost(search_pb2.GetPostRequest(
            tenant=who.tenant, channel=request.match_info["channel"], id=request.match_info["id"],
        ), **call(request, who))
    return web.json_response(convert.post(reply.post))


# --- alerts ---------------------------------------------------------------------------------------


@routes.get("/api/alerts")
async def list_alerts(request: web.Request) -> web.Response:
    who = viewer(request)
    state = params.choice(request.query, "state", STATES, default="all")
    limit = params.integer(request.query, "limit", 1, 500, default=100)
    async with calling("alerting"):
        reply = await upstreams(request).alerting.ListAlerts(
            alerting_pb2.ListAlertsRequest(tenant=who.tenant, state=state, limit=limit), **call(request, who))
    return web.json_response({"alerts": [convert.alert(a) for a in reply.alerts]})


@routes.post("/api/alerts/{id}/{action:acknowledge|assign|resolve}")
async def act_on_alert(request: web.Request) -> web.Response:
    """Acknowledge, assign ({"assignee", "by"}) or resolve ({"by"}) one alert."""
    who, document = viewer(request), await body(request)
    alert_id, action, stub = request.match_info["id"], request.match_info["action"], upstreams(request).alerting
    by = field(document, "by")
    async with calling("alerting"):
        if action == "acknowledge":
            reply: Any = await stub.AcknowledgeAlert(alerting_pb2.AcknowledgeAlertRequest(
                tenant=who.tenant, alert_id=alert_id, by=by), **call(request, who))
        elif action == "assign":
            reply = await stub.AssignAlert(alerting_pb2.AssignAlertRequest(
                tenant=who.tenant, alert_id=alert_id, assignee=field(document, "assignee"), by=by),
                **call(request, who))
        else:
            reply = await stub.ResolveAlert(alerting_pb2.ResolveAlertRequest(
                tenant=who.tenant, alert_id=alert_id, by=by), **call(request, who))
    return web.json_response(convert.alert(reply.alert))


@routes.get("/api/silences")
async def list_silences(request: web.Request) -> web.Response:
    who = viewer(request)
    async with calling("alerting"):
        reply = await upstreams(request).alerting.ListSilences(alerting_pb2.ListSilencesRequest(
            tenant=who.tenant, include_expired=params.flag(request.query, "expired")), **call(request, who))
    return web.json_response({"silences": [convert.silence(s) for s in reply.silences]})


def silence_from(document: dict[str, Any], tenant: str, now: datetime) -> alerting_pb2.Silence:
    """{"matchers": [{"name", "value", "operator"}], "minutes", "comment", "by"} as a Silence."""
    matchers = document.get("matchers")
    if not isinstance(matchers, list) or not matchers:
        raise InvalidArgument("matchers", "at least one {name, value, operator} is required")
    silence = alerting_pb2.Silence(tenant=tenant, created_by=field(document, "by"),
                                   comment=field(document, "comment", required=False))
    for number, matcher in enumerate(matchers):
        if not isinstance(matcher, dict):
            raise InvalidArgument(f"matchers[{number}]", "must be an object")
        operator = str(matcher.get("operator") or "equal")
        if operator not in OPERATORS:
            raise InvalidArgument(f"matchers[{number}].operator", f"'{operator}' is not one of {', '.join(OPERATORS)}")
        silence.matchers.append(alerting_pb2.Matcher(
            name=field(matcher, "name"), value=field(matcher, "value", required=False), operator=OPERATORS[operator]))
    minutes = document.get("minutes")
    if not isinstance(minutes, int | float) or isinstance(minutes, bool) or not 1 <= minutes <= MAX_SILENCE_MINUTES:
        raise InvalidArgument("minutes", f"a number of minutes between 1 and {MAX_SILENCE_MINUTES}")
    silence.starts_at.FromDatetime(now)
    silence.ends_at.FromDatetime(now + timedelta(minutes=float(minutes)))
    return silence


@routes.post("/api/silences")
async def create_silence(request: web.Request) -> web.Response:
    who, document = viewer(request), await body(request)
    silence = silence_from(document, who.tenant, datetime.now(UTC))
    async with calling("alerting"):
        reply = await upstreams(request).alerting.CreateSilence(
            alerting_pb2.CreateSilenceRequest(silence=silence), **call(request, who))
    return web.json_response(convert.silence(reply.silence), status=201)


@routes.post("/api/silences/{id}/expire")
async def expire_silence(request: web.Request) -> web.Response:
    who = viewer(request)
    async with calling("alerting"):
        reply = await upstreams(request).alerting.ExpireSilence(
            alerting_pb2.ExpireSilenceRequest(tenant=who.tenant, id=request.match_info["id"]), **call(request, who))
    return web.json_response(convert.silence(reply.silence))


# --- sources --------------------------------------------------------------------------------------


@routes.get("/api/sources")
async def list_sources(request: web.Request) -> web.Response:
    who = viewer(request)
    async with calling("ingestion"):
        reply = await upstreams(request).ingestion.ListSources(
            ingestion_pb2.ListSourcesRequest(tenant=who.tenant), **call(request, who))
    return web.json_response({"sources": [convert.source(s) for s in reply.sources]})


@routes.post("/api/sources/{id}/{action:pause|resume}")
async def pause_or_resume(request: web.Request) -> web.Response:
    who, stub = viewer(request), upstreams(request).ingestion
    source_id = request.match_info["id"]
    async with calling("ingestion"):
        if request.match_info["action"] == "pause":
            reply: Any = await stub.PauseSource(
                ingestion_pb2.PauseSourceRequest(tenant=who.tenant, id=source_id), **call(request, who))
        else:
            reply = await stub.ResumeSource(
                ingestion_pb2.ResumeSourceRequest(tenant=who.tenant, id=source_id), **call(request, who))
    return web.json_response(convert.source(reply.source))


@routes.get("/api/failed-posts")
async def list_failed_posts(request: web.Request) -> web.Response:
    """The agency's dead letters: posts the forwarder gave up on, the latest first."""
    who = viewer(request)
    limit = params.integer(request.query, "limit", 1, 100, default=20)
    async with calling("ingestion"):
        reply = await upstreams(request).ingestion.ListFailedPosts(
            ingestion_pb2.ListFailedPostsRequest(tenant=who.tenant, page_size=limit), **call(request, who))
    return web.json_response({"total": reply.total, "posts": [convert.failed_post(p) for p in reply.posts]})
