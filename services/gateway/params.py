"""Query-string parameters of the JSON API, read into request messages.

Plain functions without HTTP or gRPC types, so that a bad parameter is refused with the field named
before any service is called, and the rules can be tested on their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from civic.listening.v1 import search_pb2
from services.common import enum_names
from services.common.errors import InvalidArgument
from services.common.post_validation import EARLIEST_FILTER, LATEST_TIME, day

SORTS = {
    "relevance": search_pb2.SORT_ORDER_RELEVANCE,
    "newest": search_pb2.SORT_ORDER_NEWEST,
    "reach": search_pb2.SORT_ORDER_REACH,
}
INTERVALS = {
    "hour": (search_pb2.TIME_INTERVAL_HOUR, timedelta(hours=1)),
    "day": (search_pb2.TIME_INTERVAL_DAY, timedelta(days=1)),
    "week": (search_pb2.TIME_INTERVAL_WEEK, timedelta(weeks=1)),
}
# Periods the Overview offers, ending at the newest post unless `to` is given.
PERIODS = {"1d": timedelta(days=1), "3d": timedelta(days=3), "7d": timedelta(days=7),
           "30d": timedelta(days=30), "90d": timedelta(days=90)}
MAX_PERIOD = timedelta(days=366)
MAX_LIST_ITEMS = 20
MAX_ITEM_CHARS = 100
T = TypeVar("T")


def text(args: Mapping[str, str], name: str, limit: int = 1000) -> str:
    value = args.get(name, "").strip()
    if len(value) > limit:
        raise InvalidArgument(name, f"at most {limit} characters")
    return value


def listed(args: Mapping[str, str], name: str) -> list[str]:
    """A comma-separated list, e.g. channels=mastodon,reddit."""
    items = [item.strip() for item in args.get(name, "").split(",") if item.strip()]
    if len(items) > MAX_LIST_ITEMS:
        raise InvalidArgument(name, f"at most {MAX_LIST_ITEMS} values")
    if any(len(item) > MAX_ITEM_CHARS for item in items):
        raise InvalidArgument(name, f"values of at most {MAX_ITEM_CHARS} characters")
    return items


def choice(args: Mapping[str, str], name: str, options: Mapping[str, T], default: str | None = None) -> T:
    value = args.get(name, "").strip().lower() or default
    if value is None:
        raise InvalidArgument(name, f"is required, one of {', '.join(options)}")
    if value not in options:
        raise InvalidArgument(name, f"'{value}' is not one of {', '.join(options)}")
    return options[value]


def integer(args: Mapping[str, str], name: str, low: int, high: int, default: int = 0) -> int:
    raw = args.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidArgument(name, f"'{raw}' is not a whole number") from None
    if not low <= value <= high:
        raise InvalidArgument(name, f"must be between {low} and {high}")
    return value


def flag(args: Mapping[str, str], name: str) -> bool:
    return args.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def instant(args: Mapping[str, str], name: str) -> datetime | None:
    """An ISO 8601 date or date-time; a date means its start, a time without zone means UTC."""
    raw = args.get(name, "").strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(name, f"'{raw}' is not a date (use 2026-11-13 or 2026-11-13T14:00:00Z)") from None
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    # The search service's range for times, checked here so that no period arithmetic overflows.
    if not EARLIEST_FILTER <= value < LATEST_TIME:
        raise InvalidArgument(name, f"must be on or after {day(EARLIEST_FILTER)} and before {day(LATEST_TIME)}")
    return value


def labels(args: Mapping[str, str], name: str, options: Mapping[str, T]) -> list[T]:
    """A comma-separated list of enum words, e.g. sentiments=negative,neutral."""
    found = []
    for item in listed(args, name):
        if item.lower() not in options:
            raise InvalidArgument(name, f"'{item}' is not one of {', '.join(options)}")
        found.append(options[item.lower()])
    return found


def filters(args: Mapping[str, str]) -> search_pb2.SearchFilters:
    """The SearchFilters named by channels, languages, sentiments, topics, emotions, offensive,
    from, to and min_reach."""
    result = search_pb2.SearchFilters(
        channels=listed(args, "channels"),
        languages=listed(args, "languages"),
        topics=listed(args, "topics"),
        min_reach=integer(args, "min_reach", 0, 10**12),
        offensive_only=flag(args, "offensive"),
    )
    result.sentiments.extend(labels(args, "sentiments", enum_names.SENTIMENTS))
    result.emotions.extend(labels(args, "emotions", enum_names.EMOTIONS))
    start, end = instant(args, "from"), instant(args, "to")
    if start and end and start >= end:
        raise InvalidArgument("from", "must be before to")
    if start:
        result.created_from.FromDatetime(start)
    if end:
        result.created_to.FromDatetime(end)
    return result


@dataclass(frozen=True)
class Period:
    """The window the Overview describes, the one just before it, and the histogram interval."""

    start: datetime
    end: datetime
    interval_name: str

    @property
    def interval(self) -> search_pb2.TimeInterval:
        return INTERVALS[self.interval_name][0]

    @property
    def step(self) -> timedelta:
        return INTERVALS[self.interval_name][1]

    @property
    def previous_start(self) -> datetime:
        return self.start - (self.end - self.start)


def auto_interval(length: timedelta) -> str:
    """Hours for a few days, days up to a quarter, weeks beyond: enough points to read a trend."""
    if length <= timedelta(days=3):
        return "hour"
    return "day" if length <= timedelta(days=92) else "week"


def floor_to(moment: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 5, tzinfo=UTC)  # a Monday, so weeks start on Mondays as in the histogram
    return epoch + ((moment - epoch) // step) * step


def period(args: Mapping[str, str], newest: datetime | None, now: datetime) -> Period:
    """From `from`/`to`, or the `period` (1d, 3d, 7d, 30d, 90d; default 7d) ending at the interval
    boundary after the newest post (so example data from the past still shows), or now."""
    start, end = instant(args, "from"), instant(args, "to")
    length = PERIODS.get(args.get("period", "").strip() or "7d")
    if length is None:
        raise InvalidArgument("period", f"'{args.get('period')}' is not one of {', '.join(PERIODS)}")
    if start and end:
        length = end - start
    name = args.get("interval", "").strip() or auto_interval(length)
    if name not in INTERVALS:
        raise InvalidArgument("interval", f"'{name}' is not one of {', '.join(INTERVALS)}")
    step = INTERVALS[name][1]
    if end is None:
        end = start + length if start else floor_to(newest or now, step) + step
    start = start or end - length
    if start >= end:
        raise InvalidArgument("from", "must be before to")
    if end - start > MAX_PERIOD:
        raise InvalidArgument("from", f"the period may span at most {MAX_PERIOD.days} days")
    if (end - start) / step > 500:
        raise InvalidArgument("interval", f"'{name}' gives over 500 points for this period; choose a longer one")
    chosen = Period(start, end, name)
    if chosen.previous_start < EARLIEST_FILTER or end + step >= LATEST_TIME:
        raise InvalidArgument("from", f"the period and the one before it must lie between {day(EARLIEST_FILTER)} "
                                      f"and {day(LATEST_TIME)}")
    return chosen
