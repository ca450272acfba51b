"""Silences: label matchers that hold an alert's notifications between a start and an end.

Matching follows Alertmanager: every matcher must hold, a missing label reads as the empty string and
regular expressions must match the whole value, in RE2 syntax as Alertmanager's (RE2 matches in
time linear in the label's length whatever the pattern, so a tenant's silence cannot stall alerting
the way a backtracking pattern like `(a+)+$` would with Python's re). Silenced alerts are still kept,
listed and streamed.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from typing import Any

import re2

from civic.listening.v1 import alerting_pb2
from services.alerting.rules import LABEL_NAME
from services.alerting.store import AlertStore
from services.common.errors import InvalidArgument, NotFound
from services.common.post_validation import check_time
from services.common.validation import require_tenant

SCHEMA = """
CREATE TABLE IF NOT EXISTS silences (
    tenant TEXT NOT NULL, id TEXT NOT NULL, ends_at REAL NOT NULL, payload BLOB NOT NULL,
    PRIMARY KEY (tenant, id)
);
"""
MAX_MATCHERS = 20
MAX_VALUE_CHARS = 500
MAX_COMMENT_CHARS = 1000
MAX_BY_CHARS = 200
EQUAL = alerting_pb2.MATCH_OPERATOR_EQUAL
NOT_EQUAL = alerting_pb2.MATCH_OPERATOR_NOT_EQUAL
REGEX = alerting_pb2.MATCH_OPERATOR_REGEX
NOT_REGEX = alerting_pb2.MATCH_OPERATOR_NOT_REGEX


def require_by(value: str, field: str) -> str:
    """Who did something: required until authentication gives it."""
    if not value.strip():
        raise InvalidArgument(field, "must name who does this")
    if len(value) > MAX_BY_CHARS:
        raise InvalidArgument(field, f"must be at most {MAX_BY_CHARS} characters")
    return value.strip()


def _seconds(timestamp: object) -> float:
    return float(timestamp.ToNanoseconds()) / 1e9  # type: ignore[attr-defined]


def validate_silence(silence: alerting_pb2.Silence, now: float) -> alerting_pb2.Silence:
    """The silence as it will be stored: a new id, the start defaulted to now; or InvalidArgument."""
    require_tenant(silence.tenant, "silence.tenant")
    if not 1 <= len(silence.matchers) <= MAX_MATCHERS:
        raise InvalidArgument("silence.matchers", f"must hold 1 to {MAX_MATCHERS} matchers")
    for i, matcher in enumerate(silence.matchers):
        field = f"silence.matchers[{i}]"
        if not LABEL_NAME.fullmatch(matcher.name):
            raise InvalidArgument(f"{field}.name", "must be a label name (letters, digits, '_')")
        if len(matcher.value) > MAX_VALUE_CHARS:
            raise InvalidArgument(f"{field}.value", f"must be at most {MAX_VALUE_CHARS} characters")
        if matcher.operator not in alerting_pb2.MatchOperator.values():
            raise InvalidArgument(f"{field}.operator", "is not a known operator")
        if matcher.operator in (REGEX, NOT_REGEX):
            try:
                _pattern(matcher.value)
            except re2.error as exc:
                reason = exc.args[0].decode(errors="replace") if isinstance(exc.args[0], bytes) else str(exc)
                raise InvalidArgument(f"{field}.value", f"is not an RE2 regular expression: {reason}") from None
    stored = alerting_pb2.Silence()
    stored.CopyFrom(silence)
    stored.id = uuid.uuid4().hex[:16]
    stored.created_by = require_by(silence.created_by, "silence.created_by")
    if len(silence.comment) > MAX_COMMENT_CHARS:
        raise InvalidArgument("silence.comment", f"must be at most {MAX_COMMENT_CHARS} characters")
    for name in ("starts_at", "ends_at"):
        if silence.HasField(name):
            check_time(getattr(silence, name), f"silence.{name}")
    for matcher in stored.matchers:
        if matcher.operator == alerting_pb2.MATCH_OPERATOR_UNSPECIFIED:
            matcher.operator = EQUAL
    if not silence.HasField("starts_at"):
        stored.starts_at.FromNanoseconds(int(now * 1e9))
    if not silence.HasField("ends_at"):
        raise InvalidArgument("silence.ends_at", "is required")
    if _seconds(stored.ends_at) <= max(_seconds(stored.starts_at), now):
        raise InvalidArgument("silence.ends_at", "must be after the start and in the future")
    return stored


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is the caller's INVALID_ARGUMENT, not a log line


@functools.lru_cache(maxsize=1024)
def _pattern(value: str) -> Any:
    return re2.compile(value, _RE2_OPTIONS)


def matches(silence: alerting_pb2.Silence, labels: dict[str, str]) -> bool:
    for matcher in silence.matchers:
        value = labels.get(matcher.name, "")
        if matcher.operator in (REGEX, NOT_REGEX):
            found = _pattern(matcher.value).fullmatch(value) is not None
            held = found if matcher.operator == REGEX else not found
        else:
            held = (value == matcher.value) == (matcher.operator != NOT_EQUAL)
        if not held:
            return False
    return True


def active_at(silence: alerting_pb2.Silence, now: float) -> bool:
    return _seconds(silence.starts_at) <= now < _seconds(silence.ends_at)


def silenced_by(silences: Sequence[alerting_pb2.Silence], alert: alerting_pb2.Alert, now: float) -> list[str]:
    """Ids of the silences that hold this alert's notifications now."""
    labels = dict(alert.labels)
    return [s.id for s in silences if active_at(s, now) and matches(s, labels)]


class Silences:
    """The silences table of the alerting store."""

    def __init__(self, store: AlertStore) -> None:
        self.store = store
        store.add_schema(SCHEMA)

    def create(self, silence: alerting_pb2.Silence, now: float) -> alerting_pb2.Silence:
        stored = validate_silence(silence, now)
        self._put(stored)
        return stored

    def _put(self, silence: alerting_pb2.Silence) -> None:
        self.store.execute(
            "INSERT INTO silences (tenant, id, ends_at, payload) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (tenant, id) DO UPDATE SET ends_at = excluded.ends_at, payload = excluded.payload",
            (silence.tenant, silence.id, _seconds(silence.ends_at), silence.SerializeToString()),
        )

    def list(self, tenant: str, now: float, include_expired: bool = False) -> list[alerting_pb2.Silence]:
        """Newest end first; without include_expired only those that have not ended."""
        require_tenant(tenant)
        rows = self.store.execute(
            "SELECT payload FROM silences WHERE tenant = ? AND (? = 1 OR ends_at > ?) ORDER BY ends_at DESC, id",
            (tenant, int(include_expired), now),
        )
        return [alerting_pb2.Silence.FromString(bytes(payload)) for (payload,) in rows]

    def expire(self, tenant: str, silence_id: str, now: float) -> alerting_pb2.Silence:
        """Ends the silence now; one that has already ended is returned unchanged."""
        require_tenant(tenant)
        rows = self.store.execute(
            "SELECT payload FROM silences WHERE tenant = ? AND id = ?", (tenant, silence_id)
        )
        if not rows:
            raise NotFound(f"silence {silence_id!r} of tenant {tenant!r} does not exist")
        silence = alerting_pb2.Silence.FromString(bytes(rows[0][0]))
        if _seconds(silence.ends_at) > now:
            silence.ends_at.FromNanoseconds(int(now * 1e9))
            if _seconds(silence.starts_at) > now:
                silence.starts_at.CopyFrom(silence.ends_at)
            self._put(silence)
        return silence
