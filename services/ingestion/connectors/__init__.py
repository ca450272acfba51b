"""Channel connectors, one module per channel behind the `Connector` protocol of `base`.

Adding a polled channel means one module with a class that has `kind` and `fetch(source, cursor)`,
and one line in `_PULL` below; a channel that pushes over a long-lived connection (a firehose) has
`run(source, cursor, checkpoint, stop)` instead and a line in `_STREAM`. The scheduler, the source
store and the CLI need no change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from services.common.errors import InvalidArgument
from services.common.settings import Settings
from services.ingestion.connectors.base import Connector, Subscription
from services.ingestion.connectors.bluesky import BlueskySubscription
from services.ingestion.connectors.feeds import FeedConnector
from services.ingestion.connectors.mastodon import MastodonConnector
from services.ingestion.connectors.open311 import Open311Connector, source_zone
from services.ingestion.connectors.reddit import RedditConnector
from services.ingestion.connectors.youtube import YouTubeConnector

_PULL: dict[str, Callable[[Settings], Connector]] = {
    "rss": lambda s: FeedConnector(s.connector_timeout_s, s.connector_max_retries),
    "mastodon": lambda s: MastodonConnector(s.connector_timeout_s, s.connector_max_retries),
    "reddit": lambda s: RedditConnector(s.connector_timeout_s, s.connector_max_retries),
    "youtube": lambda s: YouTubeConnector(s.connector_timeout_s, s.connector_max_retries),
    "open311": lambda s: Open311Connector(s.connector_timeout_s, s.connector_max_retries),
}
_STREAM: dict[str, Callable[[Settings], Subscription]] = {
    "bluesky": lambda s: BlueskySubscription(s.connector_timeout_s),
}
WEBHOOK = "webhook"
STREAMS = tuple(_STREAM)
KINDS = (*_PULL, *_STREAM, WEBHOOK)
# Parameters that must be numbers, per kind, and other checks made when a source is registered.
_NUMBERS = {
    "bluesky": ("checkpoint_s", "checkpoint_events"),
    "mastodon": ("recheck_hours",),
    "reddit": ("recheck_hours",),
    "open311": ("page_size",),
}


def connector_for(kind: str, settings: Settings) -> Connector:
    """The connector that polls sources of this kind; webhook sources are pushed to, not polled."""
    return _PULL[kind](settings)


def subscription_for(kind: str, settings: Settings) -> Subscription:
    """The long-lived subscription of a streaming kind (one of STREAMS)."""
    return _STREAM[kind](settings)


def check_params(kind: str, params: Mapping[str, str]) -> None:
    """Refuses, when a source is registered, parameters its connector could never use."""
    for name in _NUMBERS.get(kind, ()):
        if name in params and not _non_negative(params[name]):
            raise InvalidArgument(f"spec.params.{name}", f"must be a non-negative number, got {params[name]!r}")
    if kind == "open311":
        try:
            source_zone(params)
        except ValueError as exc:
            raise InvalidArgument("spec.params.timezone", str(exc).removeprefix("params.timezone: ")) from None


def _non_negative(value: str) -> bool:
    try:
        return float(value) >= 0
    except ValueError:
        return False
