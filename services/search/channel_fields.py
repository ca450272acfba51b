"""The document fields of what a channel says beyond the text: threading, edits, sensitive marks,
hashtags, mentions, media, links, the sender's language tags, categories, Open311 and CAP details.

Kept apart from documents.py, which converts the rest of the post and its enrichment. Empty values
are left out of the document, so `exists` queries mean "the channel said so"; `sensitive` is always
written (false: not marked). The corners of a CAP area polygon are geo points, so analysts can find
the official alerts with a corner in a box or near a place.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from civic.listening.v1 import post_pb2

_REFS = ("parent_id", "root_id", "conversation_id")
_LISTS = ("hashtags", "mentions", "links", "sender_languages", "categories")
_REQUEST_TEXTS = ("status", "service_code", "service_name", "agency", "address")
_ALERT_TEXTS = ("event", "severity", "urgency", "certainty", "area")


def _time(stamp: Timestamp) -> str:
    return stamp.ToJsonString()


def _read_time(text: str, into: Timestamp) -> None:
    into.FromJsonString(text)


def to_fields(post: post_pb2.Post) -> dict[str, Any]:
    doc: dict[str, Any] = {name: getattr(post, name) for name in _REFS if getattr(post, name)}
    doc["sensitive"] = post.sensitive
    if post.content_warning:
        doc["content_warning"] = post.content_warning
    if post.HasField("edited_at"):
        doc["edited_at"] = _time(post.edited_at)
    doc.update({name: list(getattr(post, name)) for name in _LISTS if getattr(post, name)})
    if post.media:
        doc["media"] = [{key: value for key, value in (("type", m.type), ("url", m.url), ("alt_text", m.alt_text))
                         if value} for m in post.media]
    if post.HasField("service_request"):
        request = post.service_request
        doc["service_request"] = {name: getattr(request, name) for name in _REQUEST_TEXTS if getattr(request, name)}
        if request.HasField("updated_at"):
            doc["service_request"]["updated_at"] = _time(request.updated_at)
    if post.HasField("official_alert"):
        alert = post.official_alert
        doc["official_alert"] = {name: getattr(alert, name) for name in _ALERT_TEXTS if getattr(alert, name)}
        if alert.area_polygon:
            doc["official_alert"]["area_polygon"] = [{"lat": p.lat, "lon": p.lon} for p in alert.area_polygon]
        if alert.HasField("expires_at"):
            doc["official_alert"]["expires_at"] = _time(alert.expires_at)
    return doc


def read_fields(source: dict[str, Any], post: post_pb2.Post) -> None:
    """to_fields, backwards: fills these fields of `post` from a stored document (every hit of every
    search goes through here, so only the fields the document has are touched)."""
    for name in _REFS:
        if name in source:
            setattr(post, name, source[name])
    post.sensitive = bool(source.get("sensitive", False))
    if "content_warning" in source:
        post.content_warning = source["content_warning"]
    if "edited_at" in source:
        _read_time(source["edited_at"], post.edited_at)
    for name in _LISTS:
        if name in source:
            getattr(post, name).extend(source[name])
    for media in source.get("media", []):
        post.media.add(type=media.get("type", ""), url=media.get("url", ""), alt_text=media.get("alt_text", ""))
    if "service_request" in source:
        stored = source["service_request"]
        post.service_request.SetInParent()
        for name in _REQUEST_TEXTS:
            setattr(post.service_request, name, stored.get(name, ""))
        if stored.get("updated_at"):
            _read_time(stored["updated_at"], post.service_request.updated_at)
    if "official_alert" in source:
        stored = source["official_alert"]
        post.official_alert.SetInParent()
        for name in _ALERT_TEXTS:
            setattr(post.official_alert, name, stored.get(name, ""))
        for point in stored.get("area_polygon", []):
            post.official_alert.area_polygon.add(lat=point["lat"], lon=point["lon"])
        if stored.get("expires_at"):
            _read_time(stored["expires_at"], post.official_alert.expires_at)
