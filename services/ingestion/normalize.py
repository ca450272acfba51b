"""Validation and normalization of incoming posts, before they reach the spool.

Every channel is normalized to one Post. The checks are those of every downstream service
(services/common/post_validation.py) and intake's own, so a post that fails one is refused here with
the field and the reason, instead of failing later in the forwarder where nobody sees it.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta

from civic.listening.v1 import post_pb2
from services.common.errors import InvalidArgument
from services.common.language import detect_language
from services.common.post_validation import check_post, require_created_at
from services.common.settings import Settings
from services.ingestion.pii import redact
from services.ingestion.post_fields import (
    MAX_ALT_TEXT_CHARS,
    MAX_CONTENT_WARNING_CHARS,
    check_fields,
    normalize_fields,
)

# Clocks of connectors and channels drift, and time zones get mangled; a day is generous but still
# catches posts dated years ahead that would otherwise sit on top of every "newest first" list.
MAX_FUTURE_SKEW = timedelta(days=1)

_HORIZONTAL_SPACE = re.compile(r"[^\S\n]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")
# Invisible characters that make identical texts compare different.
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
# The first subtag of a BCP-47 tag: what is kept of a language the sender supplies.
_PRIMARY_SUBTAG = re.compile(r"[a-z]{2,8}")
# Letters that render as nothing (Hangul fillers, the blank Braille pattern), a known way to post
# "empty" text past a non-blank check.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def normalize_whitespace(text: str) -> str:
    """NFC, Unix newlines, single spaces, at most one blank line, no leading or trailing space."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE.sub("", text)
    lines = (_HORIZONTAL_SPACE.sub(" ", line).strip() for line in text.split("\n"))
    return _MANY_NEWLINES.sub("\n\n", "\n".join(lines)).strip()


def validate_post(post: post_pb2.Post, field: str, settings: Settings, now: datetime) -> None:
    """Raises InvalidArgument naming `field`.<sub-field> for the first problem found.

    What every service checks (check_post), and what only intake asks: a date no more than a day
    ahead, and a text that shows something.
    """
    check_post(post, field, settings.max_text_chars)
    require_created_at(post, field)
    if post.created_at.seconds > (now + MAX_FUTURE_SKEW).timestamp():
        raise InvalidArgument(f"{field}.created_at", "must not be more than one day in the future")
    if not visible(post.text):
        raise InvalidArgument(f"{field}.text", "must not be empty")
    check_fields(post, field)


def visible(text: str) -> bool:
    """True when the text has a character that shows: not a space, a control or format character
    (zero-width spaces and joiners, byte order marks, bidi marks) nor a blank filler letter."""
    return any(
        not char.isspace() and char not in _BLANK_LETTERS and unicodedata.category(char) not in ("Cc", "Cf")
        for char in text
    )


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
    primary = re.split(r"[-_]", post.language.strip())[0].lower()
    if _PRIMARY_SUBTAG.fullmatch(primary):
        normalized.language, normalized.language_confidence = primary, 1.0
    else:  # none sent, or something that is no language tag
        normalized.language, normalized.language_confidence = detect_language(normalized.text)
    return normalized
