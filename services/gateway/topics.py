"""The Topics page's API: the agency's topics, their quality, analysts' marks and re-tagging jobs."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from civic.listening.v1 import topics_pb2
from services.common.errors import InvalidArgument
from services.gateway import convert, params
from services.gateway.api import body, call, field, routes, upstreams, viewer
from services.gateway.errors import calling

MAX_TEXTS = 50
MAX_TEXT_CHARS = 2000


def texts(document: dict[str, Any], name: str) -> list[str]:
    value = document.get(name, [])
    if not isinstance(value, list) or len(value) > MAX_TEXTS:
        raise InvalidArgument(name, f"a list of at most {MAX_TEXTS} texts")
    if not all(isinstance(item, str) and len(item) <= MAX_TEXT_CHARS for item in value):
        raise InvalidArgument(name, f"every item must be a text of at most {MAX_TEXT_CHARS} characters")
    return [item.strip() for item in value if item.strip()]


def threshold(document: dict[str, Any]) -> float:
    value = document.get("threshold", 0)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidArgument("threshold", "must be a number between 0 and 1")
    return float(value)


@routes.get("/api/topics")
async def list_topics(request: web.Request) -> web.Response:
    who = viewer(request)
    async with calling("search"):
        reply = await upstreams(request).topics.ListTopics(topics_pb2.ListTopicsRequest(tenant=who.tenant),
                                                            **call(request, who))
        jobs = await upstreams(request).topics.ListTaggingJobs(
            topics_pb2.ListTaggingJobsRequest(tenant=who.tenant, limit=5), **call(request, who))
    return web.json_response({**convert.topic_set(reply.topic_set),
                              "jobs": [convert.tagging_job(j) for j in jobs.jobs]})


@routes.get("/api/topics/{name}")
async def get_topic(request: web.Request) -> web.Response:
    who, name = viewer(request), request.match_info["name"]
    limit = params.integer(request.query, "marks", 1, 1000, default=50)
    async with calling("search"):
        found = await upstreams(request).topics.GetTopic(topics_pb2.GetTopicRequest(tenant=who.tenant, name=name),
                                                         **call(request, who))
        marks = await upstreams(request).topics.ListMarks(
            topics_pb2.ListMarksRequest(tenant=who.tenant, topic=name, limit=limit), **call(request, who))
    return web.json_response({**convert.topic(found.topic), "marks": [convert.mark(m) for m in marks.marks]})


@routes.put("/api/topics/{name}")
async def put_topic(request: web.Request) -> web.Response:
    """{"description", "examples": [...], "counter_examples": [...], "query", "threshold", "by"}."""
    who, document = viewer(request), await body(request)
    topic = topics_pb2.Topic(
        name=request.match_info["name"], description=field(document, "description"),
        examples=texts(document, "examples"), counter_examples=texts(document, "counter_examples"),
        query=field(document, "query", required=False), threshold=threshold(document),
    )
    async with calling("search"):
        reply = await upstreams(request).topics.PutTopic(
            topics_pb2.PutTopicRequest(tenant=who.tenant, topic=topic, by=field(document, "by")), **call(request, who))
    return web.json_response({"topic": convert.topic(reply.topic), "job": convert.tagging_job(reply.job)})


@routes.post("/api/topics/{name}/delete")
async def delete_topic(request: web.Request) -> web.Response:
    who, document = viewer(request), await body(request)
    async with calling("search"):
        reply = await upstreams(request).topics.DeleteTopic(topics_pb2.DeleteTopicRequest(
            tenant=who.tenant, name=request.match_info["name"], by=field(document, "by")), **call(request, who))
    return web.json_response({"job": convert.tagging_job(reply.job)})


@routes.post("/api/topics-copy-defaults")
async def copy_defaults(request: web.Request) -> web.Response:
    who, document = viewer(request), await body(request)
    async with calling("search"):
        reply = await upstreams(request).topics.CopyDefaultTopics(topics_pb2.CopyDefaultTopicsRequest(
            tenant=who.tenant, by=field(document, "by")), **call(request, who))
    return web.json_response(convert.topic_set(reply.topic_set))


@routes.post("/api/topics/{name}/marks")
async def mark_post(request: web.Request) -> web.Response:
    """{"channel", "post_id", "relevant": true|false, "by"}."""
    who, document = viewer(request), await body(request)
    relevant = document.get("relevant")
    if not isinstance(relevant, bool):
        raise InvalidArgument("relevant", "must be true or false")
    async with calling("search"):
        reply = await upstreams(request).topics.MarkPost(topics_pb2.MarkPostRequest(
            tenant=who.tenant, topic=request.match_info["name"], channel=field(document, "channel"),
            post_id=field(document, "post_id"), relevant=relevant, by=field(document, "by")), **call(request, who))
    return web.json_response({"quality": convert.quality(reply.quality),
                              "job": convert.tagging_job(reply.job) if reply.HasField("job") else None})
