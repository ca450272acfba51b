"""The limits of the channel fields of a Post (their lengths in post_validation, the rest in post_fields):
refused over IngestPosts, fitted for connectors' posts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from civic.listening.v1 import post_pb2
from services.common.errors import InvalidArgument
from services.common.settings import Settings
from services.ingestion.normalize import normalize_post, validate_post
from services.ingestion.post_fields import MAX_AREA_POINTS, fit

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def make_post() -> post_pb2.Post:
    post = post_pb2.Post(id="p1", tenant="city-a", channel="mastodon", text="The bins were not collected.")
    post.created_at.FromDatetime(NOW - timedelta(hours=1))
    return post


def ring(points: int) -> list[post_pb2.GeoPoint]:
    corners = [post_pb2.GeoPoint(lat=40 + i / 1000, lon=-75 + (i % 2) / 1000) for i in range(points - 1)]
    return [*corners, corners[0]]


def refusal(post: post_pb2.Post) -> str:
    with pytest.raises(InvalidArgument) as caught:
        validate_post(post, "posts[2]", Settings(), NOW)
    return str(caught.value)


def test_every_field_within_its_limits_passes_and_is_normalized() -> None:
    post = make_post()
    post.parent_id, post.root_id, post.conversation_id = "109", "100", "100"
    post.edited_at.FromDatetime(NOW)
    post.sensitive, post.content_warning = True, "Call 555-123-4567 about the crash"
    post.hashtags.extend(["#Potholes", "potholes", "MainSt"])
    post.mentions.extend(["cityhall@gov.example", "cityhall@gov.example"])
    post.media.add(type="image", url="https://cdn.example/a.jpg", alt_text="A pothole, call 555-123-4567")
    post.links.append("https://city.example/report")
    post.sender_languages.extend(["pt-BR", "en"])
    post.categories.append("Roads and traffic")
    post.service_request.status, post.service_request.address = "open", "8TH AVE and JUDAH ST"
    post.official_alert.severity = "severe"
    post.official_alert.area_polygon.extend(ring(5))
    validate_post(post, "posts[0]", Settings(), NOW)
    normalized = normalize_post(post, Settings())
    assert list(normalized.hashtags) == ["potholes", "mainst"] and list(normalized.mentions) == ["cityhall@gov.example"]
    # What people read beside the text is redacted like the text.
    assert normalized.content_warning == "Call [PHONE] about the crash"
    assert normalized.media[0].alt_text == "A pothole, call [PHONE]" and normalized.redactions == 2


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda p: setattr(p, "parent_id", "x" * 257), "posts[2].parent_id: must be at most 256"),
        (lambda p: setattr(p, "content_warning", "x" * 1001), "posts[2].content_warning: must be at most 1,000"),
        (lambda p: p.hashtags.extend(["ok", "two words"]), "posts[2].hashtags[1]: must not contain spaces"),
        (lambda p: p.hashtags.extend(["#"]), "posts[2].hashtags[0]: must not be empty"),
        (lambda p: p.hashtags.extend(str(i) for i in range(101)), "posts[2].hashtags: must hold at most 100"),
        (lambda p: p.mentions.append("x" * 257), "posts[2].mentions: must be at most 256"),
        (lambda p: p.media.add(type="picture"), "posts[2].media[0].type: must be one of"),
        (lambda p: p.media.add(type="image", url="ftp://x/y"), "posts[2].media[0].url: must be an http(s) URL"),
        (lambda p: p.media.add(type="image", alt_text="x" * 2001), "posts[2].media.alt_text: must be at most 2,000"),
        (lambda p: [p.media.add(type="image") for _ in range(21)], "posts[2].media: must hold at most 20"),
        (lambda p: p.links.append("/relative"), "posts[2].links[0]: must be an http(s) URL"),
        (lambda p: p.links.append("https://x.example/" + "a" * 2048), "posts[2].links: must be at most 2,048"),
        (lambda p: p.sender_languages.append("english please"), "posts[2].sender_languages[0]: 'english please'"),
        (lambda p: p.categories.append(" "), "posts[2].categories[0]: must not be empty"),
        (lambda p: setattr(p.service_request, "status", "x" * 33), "posts[2].service_request.status: must be at"),
        (lambda p: setattr(p.official_alert, "severity", "Severe"), "posts[2].official_alert.severity: must be one"),
        (lambda p: p.official_alert.area_polygon.extend(ring(5)[:-1]),
         "posts[2].official_alert.area_polygon: must be a closed"),
        (lambda p: p.official_alert.area_polygon.extend(ring(102)), "posts[2].official_alert.area_polygon: must hold"),
        (lambda p: setattr(p.edited_at, "nanos", -1), "posts[2].edited_at.nanos: must be 0 to 999,999,999"),
    ],
)
def test_each_limit_is_enforced_and_names_the_field(change: object, expected: str) -> None:
    post = make_post()
    change(post)  # type: ignore[operator]
    assert refusal(post).startswith(expected)


def test_fit_clips_a_connectors_post_into_the_limits_instead_of_losing_it() -> None:
    post = make_post()
    post.parent_id = "x" * 300
    post.content_warning = "w" * 5000
    post.hashtags.extend(["ok", "two words", *(f"t{i}" for i in range(150))])
    post.links.extend(["https://a.example/1", "javascript:alert(1)"])
    post.media.add(type="image", url="not a url", alt_text="a" * 3000)
    post.media.add(type="hologram")
    post.sender_languages.extend(["en", "???"])
    post.official_alert.severity = "Catastrophic"
    post.official_alert.area_polygon.extend(ring(450))
    fit(post)
    validate_post(post, "posts[0]", Settings(), NOW)
    assert post.parent_id == "" and len(post.content_warning) == 1000
    assert post.hashtags[0] == "ok" and len(post.hashtags) == 100 and "two words" not in post.hashtags
    assert list(post.links) == ["https://a.example/1"] and list(post.sender_languages) == ["en"]
    assert [(m.type, m.url, len(m.alt_text)) for m in post.media] == [("image", "", 2000)]
    polygon = post.official_alert.area_polygon
    assert post.official_alert.severity == "" and 4 <= len(polygon) <= MAX_AREA_POINTS and polygon[0] == polygon[-1]
