"""Channel connectors, one module per channel behind the `Connector` protocol of `base`.

Adding a channel means one module with a class that has `kind` and `fetch(source, cursor)`, and one
line in `_PULL` below; the scheduler, the source store and the CLI need no change.
"""

from __future__ import annotations

from collections.abc import Callable

from services.common.settings import Settings
from services.ingestion.connectors.base import Connector
from services.ingestion.connectors.bluesky import BlueskyConnector
from services.ingestion.connectors.feeds import FeedConnector
from services.ingestion.connectors.mastodon import MastodonConnector
from services.ingestion.connectors.open311 import Open311Connector
from services.ingestion.connectors.reddit import RedditConnector
from services.ingestion.connectors.youtube import YouTubeConnector

_PULL: dict[str, Callable[[Settings], Connector]] = {
    "rss": lambda s: FeedConnector(s.connector_timeout_s, s.connector_max_retries),
    "mastodon": lambda s: MastodonConnector(s.connector_timeout_s, s.connector_max_retries),
    "reddit": lambda s: RedditConnector(s.connector_timeout_s, s.connector_max_retries),
    "youtube": lambda s: YouTubeConnector(s.connector_timeout_s, s.connector_max_retries),
    "open311": lambda s: Open311Connector(s.connector_timeout_s, s.connector_max_retries),
    "bluesky": lambda s: BlueskyConnector(s.connector_timeout_s),
}
WEBHOOK = "webhook"
KINDS = (*_PULL, WEBHOOK)


def connector_for(kind: str, settings: Settings) -> Connector:
    """The connector that polls sources of this kind; webhook sources are pushed to, not polled."""
    return _PULL[kind](settings)
