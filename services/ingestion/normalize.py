"""Validation and normalization of incoming posts, before they reach the spool.

Every channel is normalized to one Post; these checks are what downstream services rely on, so a post
that fails one is refused here with the field and the reason, instead of failing later in a forwarder
retry loop where nobody sees it.
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import datetime, timedelta

from civic.listening.v1 import post_pb2
from services.common.errors import InvalidArgument
from services.common.language import detect_language
from services.common.settings import Settings
from services.common.validation import require_channel, require_tenant
from services.ingestion.pii import redact
from services.ingestion.post_fields import (
    MAX_ALT_TEXT_CHARS,
    MAX_CONTENT_WARNING_CHARS,
    check_fields,
    normalize_fields,
)

MAX_ID_CHARS = 256
# Clocks of connectors and channels drift, and time zones get mangled; a day is generous but still
# catches posts dated years ahead that would otherwise sit on top of every "newest first" list.
MAX_FUTURE_SKEW = timedelta(days=1)

_HORIZONTAL_SPACE = re.compile(r"[^\S\n]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")
# Invisible characters that make identical texts compare different.
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")


def normalize_whitespace(text: str) -> str:
    """NFC, Unix newlines, single spaces, at most one blank line, no leading or trailing space."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE.sub("", text)
    lines = (_HORIZONTAL_SPACE.sub(" ", line).strip() for line in text.split("\n"))
    return _MANY_NEWLINES.sub("\n\n", "\n".join(lines)).strip()


def validate_post(post: post_pb2.Post, field: str, settings: Settings, now: datetime) -> None:
    """Raises InvalidArgument naming `field`.<sub-field> for the first problem found."""
    if not post.id:
        raise InvalidArgument(f"{field}.id", "must not be empty")
    if len(post.id) > MAX_ID_CHARS:
        raise InvalidArgument(f"{field}.id", f"must be at most {MAX_ID_CHARS} characters")
    require_tenant(post.tenant, f"{field}.tenant")
    require_channel(post.channel, f"{field}.channel")
    if not post.text.strip():
        raise InvalidArgument(f"{field}.text", "must not be empty")
    if len(post.text) > settings.max_text_chars:
        raise InvalidArgument(f"{field}.text", f"must be at most {settings.max_text_chars} characters")
    if not post.HasField("created_at"):
        raise InvalidArgument(f"{field}.created_at", "must be set")
    # Compared in seconds: a timestamp beyond year 9999 must be refused, not overflow datetime.
    if post.created_at.seconds > (now + MAX_FUTURE_SKEW).timestamp():
        raise InvalidArgument(f"{field}.created_at", "must not be more than one day in the future")
    if post.HasField("geo"):
        _require_range(post.geo.lat, -90.0, 90.0, f"{field}.geo.lat")
        _require_range(post.geo.lon, -180.0, 180.0, f"{field}.geo.lon")
    counts = {
        "author.follower_count": post.author.follower_count,
        "engagement.likes": post.engagement.likes,
        "engagement.shares": post.engagement.shares,
        "engagement.replies": post.engagement.replies,
    }
    for name, value in counts.items():
        if value < 0:
            raise InvalidArgument(f"{field}.{name}", "must not be negative")
    check_fields(post, field)


def _require_range(value: float, low: float, high: float, field: str) -> None:
    if not math.isfinite(value) or not low <= value <= high:
        raise InvalidArgument(field, f"must be between {low:g} and {high:g}")


def _redact_beside_text(post: post_pb2.Post) -> int:
    """What people read beside the text (the content warning, alt texts) is redacted like it."""
    post.content_warning, found = redact(post.content_warning)
    post.content_warning = post.content_warning[:MAX_CONTENT_WARNING_CHARS]
    for media in post.media:
        media.alt_text, more = redact(media.alt_text)
        media.alt_text, found = media.alt_text[:MAX_ALT_TEXT_CHARS], found + more
    return found


def normalize_post(post: post_pb2.Post, settings: Settings) -> post_pb2.Post:
    """A copy with PII redacted, whitespace normalized and the language filled in.

    Redaction comes first so that no later step (nor the spool) ever sees the original text. Two
    forms of the redacted text are kept: `text`, normalized, for models, search and duplicate
    checks, and `display_text`, spaced and broken into lines as written, for people to read.
    """
    normalized = post_pb2.Post()
    normalized.CopyFrom(post)
    text = post.text
    normalized.redactions = 0
    if settings.redact_pii:
        text, normalized.redactions = redact(text)
        normalized.redactions += _redact_beside_text(normalized)
    # A placeholder can be longer than what it replaced; the limit holds for the stored text too.
    normalized.display_text = text[: settings.max_text_chars]
    normalized.text = normalize_whitespace(text)[: settings.max_text_chars]
    normalized.near_duplicate = False
    normalize_fields(normalized)
    if normalized.language:
        normalized.language = re.split(r"[-_]", normalized.language.strip().lower())[0]
        normalized.language_confidence = 1.0
    else:
        normalized.language, normalized.language_confidence = detect_language(normalized.text)
    return normalized
