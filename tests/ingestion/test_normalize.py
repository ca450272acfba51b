"""Validation and normalization of single posts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from civic.listening.v1 import post_pb2
from services.common.errors import InvalidArgument
from services.common.post_validation import MAX_TEXT_CHARS
from services.common.settings import Settings
from services.ingestion.normalize import normalize_post, normalize_whitespace, validate_post

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SETTINGS = Settings(max_text_chars=100)


def make_post(**fields: object) -> post_pb2.Post:
    post = post_pb2.Post(id="p1", tenant="city-a", channel="mastodon", text="The bins were not collected.")
    post.created_at.FromDatetime(NOW - timedelta(hours=1))
    for name, value in fields.items():
        setattr(post, name, value)
    return post


def reason(post: post_pb2.Post) -> str:
    with pytest.raises(InvalidArgument) as caught:
        validate_post(post, "posts[3]", SETTINGS, NOW)
    return str(caught.value)


def test_a_good_post_passes() -> None:
    validate_post(make_post(), "posts[0]", SETTINGS, NOW)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"id": ""}, "posts[3].id: must not be empty"),
        ({"id": "x" * 257}, "posts[3].id: must be at most 256 characters"),
        ({"tenant": ""}, "posts[3].tenant: must not be empty"),
        ({"tenant": "City A"}, "posts[3].tenant: must be 1-63"),
        ({"tenant": "city-a\n"}, "posts[3].tenant: must be 1-63"),
        ({"channel": ""}, "posts[3].channel: must not be empty"),
        ({"channel": "Mastodon!"}, "posts[3].channel: must be 1-32"),
        ({"channel": "mastodon\n"}, "posts[3].channel: must be 1-32"),
        ({"text": ""}, "posts[3].text: must not be empty"),
        ({"text": " \n\t "}, "posts[3].text: must not be empty"),
        ({"text": "x" * 101}, "posts[3].text: must be at most 100 characters"),
    ],
)
def test_each_field_is_checked_and_named(fields: dict[str, object], expected: str) -> None:
    assert reason(make_post(**fields)).startswith(expected)


def test_id_of_exactly_the_limit_is_accepted() -> None:
    validate_post(make_post(id="x" * 256, text="y" * 100), "posts[0]", SETTINGS, NOW)


def test_created_at_must_be_set_and_not_far_in_the_future() -> None:
    post = make_post()
    post.ClearField("created_at")
    assert reason(post) == "posts[3].created_at: must be set"
    post.created_at.FromDatetime(NOW + timedelta(days=1, minutes=1))
    assert reason(post) == "posts[3].created_at: must not be more than one day in the future"
    post.created_at.seconds = 400_000_000_000  # beyond year 9999
    assert reason(post) == "posts[3].created_at: must be on or after 1990-01-01 and before 9999-01-01"
    post.created_at.FromDatetime(NOW + timedelta(hours=23))
    validate_post(post, "posts[3]", SETTINGS, NOW)


@pytest.mark.parametrize(
    ("lat", "lon", "expected"),
    [
        (91.0, 0.0, "posts[3].geo.lat: must be between -90 and 90"),
        (-90.5, 0.0, "posts[3].geo.lat: must be between -90 and 90"),
        (0.0, 180.1, "posts[3].geo.lon: must be between -180 and 180"),
        (float("nan"), 0.0, "posts[3].geo.lat: must be between -90 and 90"),
    ],
)
def test_geo_must_be_in_range(lat: float, lon: float, expected: str) -> None:
    post = make_post()
    post.geo.lat, post.geo.lon = lat, lon
    assert reason(post) == expected


def test_geo_on_the_edges_is_accepted() -> None:
    post = make_post()
    post.geo.lat, post.geo.lon = -90.0, 180.0
    validate_post(post, "posts[0]", SETTINGS, NOW)


@pytest.mark.parametrize(
    "path", ["author.follower_count", "engagement.likes", "engagement.shares", "engagement.replies"]
)
@pytest.mark.parametrize("value", [-1, 10**12 + 1, 2**63 - 512])
def test_counts_are_bounded(path: str, value: int) -> None:
    post = make_post()
    message, name = path.split(".")
    setattr(getattr(post, message), name, value)
    assert reason(post) == f"posts[3].{path}: must be a count from 0 to 1,000,000,000,000"
    setattr(getattr(post, message), name, 10**12)
    validate_post(post, "posts[3]", SETTINGS, NOW)


@pytest.mark.parametrize(
    ("seconds", "nanos", "expected"),
    [
        (-62135596801, 0, "posts[3].created_at: must be on or after 1990-01-01 and before 9999-01-01"),
        (-62135596800, 0, "posts[3].created_at: must be on or after 1990-01-01 and before 9999-01-01"),
        (0, 0, "posts[3].created_at: must be on or after 1990-01-01 and before 9999-01-01"),
        (631151999, 0, "posts[3].created_at: must be on or after 1990-01-01 and before 9999-01-01"),
        (1_700_000_000, -1, "posts[3].created_at.nanos: must be 0 to 999,999,999, got -1"),
        (1_700_000_000, 1_000_000_000, "posts[3].created_at.nanos: must be 0 to 999,999,999, got 1000000000"),
    ],
)
def test_created_at_must_be_a_date_every_service_can_store(seconds: int, nanos: int, expected: str) -> None:
    post = make_post()
    post.created_at.seconds, post.created_at.nanos = seconds, nanos
    assert reason(post) == expected


def test_the_earliest_accepted_date_is_1990() -> None:
    post = make_post()
    post.created_at.FromDatetime(datetime(1990, 1, 1, tzinfo=UTC))
    validate_post(post, "posts[3]", SETTINGS, NOW)


@pytest.mark.parametrize(
    ("path", "limit"),
    [("source", 1024), ("url", 8192), ("language", 35), ("author.id", 256), ("author.name", 256),
     ("display_text", 100)],
)
def test_every_string_field_has_a_length_limit(path: str, limit: int) -> None:
    post = make_post()
    target, _, name = path.rpartition(".")
    holder = getattr(post, target) if target else post
    setattr(holder, name, "x" * limit)
    validate_post(post, "posts[3]", SETTINGS, NOW)
    setattr(holder, name, "x" * (limit + 1))
    assert reason(post) == f"posts[3].{path}: must be at most {limit:,} characters, got {limit + 1:,}"


@pytest.mark.parametrize("text", ["\u200b", "\ufeff\u200b\ufeff", "\u200d \u2060\n\u200c", "\u3164\u3164", "\x00\x07",
                                  "\u200e\u202e"])
def test_text_of_only_invisible_characters_is_refused(text: str) -> None:
    assert reason(make_post(text=text)) == "posts[3].text: must not be empty"


def test_text_with_something_visible_among_invisible_characters_passes() -> None:
    validate_post(make_post(text="\u200b!\u200b"), "posts[3]", SETTINGS, NOW)


def test_whitespace_is_normalized() -> None:
    raw = "  Hello\u00a0\u00a0 world\t!\r\n\r\n\r\n\r\nSecond\u200b line   \n"
    assert normalize_whitespace(raw) == "Hello world !\n\nSecond line"
    assert normalize_whitespace("e\u0301te\u0301") == "\u00e9t\u00e9"


def test_normalize_redacts_before_anything_else_and_counts() -> None:
    post = make_post(text="Call me  on 555-123-4567 or mail bob@example.org", redactions=7)
    normalized = normalize_post(post, SETTINGS)
    assert normalized.text == "Call me on [PHONE] or mail [EMAIL]"
    assert normalized.redactions == 2
    assert post.text.startswith("Call me  on 555"), "the request's post is not modified"


def test_display_text_keeps_the_authors_layout_but_never_the_pii() -> None:
    written = "Dear council,\n\n  Bins on Elm St:\n  - not collected\n  - call 555-123-4567  or bob@example.org\n"
    post = make_post(text=written, display_text="sent by the client, ignored")
    normalized = normalize_post(post, SETTINGS)
    assert normalized.display_text == (
        "Dear council,\n\n  Bins on Elm St:\n  - not collected\n  - call [PHONE]  or [EMAIL]\n"
    )
    assert normalized.text == "Dear council,\n\nBins on Elm St:\n- not collected\n- call [PHONE] or [EMAIL]"
    assert "555" not in normalized.SerializeToString().decode(errors="replace")


def test_the_stored_text_stays_within_the_limit_after_redaction() -> None:
    text = "x" * 93 + " a@b.io"
    normalized = normalize_post(make_post(text=text), SETTINGS)
    assert len(text) == SETTINGS.max_text_chars
    assert normalized.text == "x" * 93 + " [EMAIL"
    assert normalized.display_text == normalized.text


def test_redaction_can_be_turned_off() -> None:
    post = make_post(text="Call me on 555-123-4567", redactions=3)
    normalized = normalize_post(post, Settings(redact_pii=False))
    assert normalized.text == normalized.display_text == "Call me on 555-123-4567"
    assert normalized.redactions == 0


def test_language_is_detected_when_missing() -> None:
    french = make_post(text="Les poubelles n'ont pas été ramassées dans notre rue depuis deux semaines.")
    normalized = normalize_post(french, SETTINGS)
    assert normalized.language == "fr"
    assert 0.5 < normalized.language_confidence <= 1.0


def test_a_supplied_language_is_kept_with_full_confidence() -> None:
    normalized = normalize_post(make_post(language="en-US", language_confidence=0.2), SETTINGS)
    assert (normalized.language, normalized.language_confidence) == ("en", 1.0)
    assert normalize_post(make_post(language=" ZH_hant"), SETTINGS).language == "zh"


@pytest.mark.parametrize("sent", ["x-klingon", "-en", "İ" * 35, "e", "1234", "ené"])
def test_a_supplied_language_that_is_no_tag_is_detected(sent: str) -> None:
    normalized = normalize_post(make_post(language=sent, text="Les poubelles n'ont pas été ramassées."), SETTINGS)
    assert normalized.language == "fr" and normalized.language_confidence < 1.0


def test_a_sent_near_duplicate_mark_is_not_trusted() -> None:
    assert normalize_post(make_post(near_duplicate=True), SETTINGS).near_duplicate is False


def test_the_shared_checks_default_to_the_settings_text_limit() -> None:
    """Search and alerting built without settings check text against the same limit as ingestion's default."""
    assert Settings.model_fields["max_text_chars"].default == MAX_TEXT_CHARS
