"""RSS 2.0 and Atom feeds from a local server: conditional GET, new entries only, bad entries skipped."""

from __future__ import annotations

import pytest

from services.ingestion.connectors.base import ConnectorError, SourceConfig
from services.ingestion.connectors.feeds import FeedConnector
from tests.fixtures.channel_servers import ChannelServer, Reply

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel>
  <title>City of Springfield Newsroom</title><link>https://springfield.example/news</link>
  <description>Press releases</description>
  <item><title>Water main repair on Elm Street</title><link>https://springfield.example/news/1</link>
    <guid isPermaLink="false">news-1</guid><pubDate>Mon, 03 Mar 2025 09:00:00 GMT</pubDate>
    <description>&lt;p&gt;Crews will work &lt;b&gt;overnight&lt;/b&gt;.&lt;/p&gt;</description></item>
  <item><title>Library hours extended</title><link>https://springfield.example/news/2</link>
    <guid isPermaLink="false">news-2</guid><pubDate>Tue, 04 Mar 2025 10:30:00 GMT</pubDate>
    <description>Open until 9 pm on weekdays.</description></item>
  <item><title>Entry without any date</title><guid>news-undated</guid><description>x</description></item>
  %s
</channel></rss>"""

NEW_ITEM = """<item><title>Snow emergency declared</title><guid isPermaLink="false">news-3</guid>
    <pubDate>Wed, 05 Mar 2025 06:00:00 GMT</pubDate><description>Park on odd side.</description></item>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Metro Transit alerts</title><id>urn:uuid:feed</id><updated>2025-03-03T12:00:00Z</updated>
  <entry><title>Line 3 delays</title><id>urn:uuid:e1</id><link href="https://transit.example/a/1"/>
    <updated>2025-03-03T11:00:00Z</updated><published>2025-03-03T10:00:00+01:00</published>
    <author><name>Metro Transit</name></author>
    <content type="html">&lt;p&gt;Signal problem near Central.&lt;/p&gt;</content></entry>
</feed>"""


def source(url: str) -> SourceConfig:
    return SourceConfig(tenant="t1", name="newsroom", kind="rss", url=url)


def test_rss_items_become_posts_and_the_cursor_makes_the_next_poll_incremental(
    channel_server: ChannelServer,
) -> None:
    headers = {"ETag": '"v1"', "Last-Modified": "Tue, 04 Mar 2025 10:30:00 GMT",
               "Content-Type": "application/rss+xml"}
    channel_server.route("/feed.xml", Reply(200, (RSS % "").encode(), headers))
    connector = FeedConnector(timeout_s=5, max_retries=1)
    first = connector.fetch(source(f"{channel_server.url}/feed.xml"), {})
    assert [p.id for p in first.posts] == ["news-1", "news-2"]
    assert first.posts[0].text == "Water main repair on Elm Street\n\nCrews will work overnight."
    assert first.posts[0].url == "https://springfield.example/news/1"
    assert first.posts[0].created_at.ToJsonString() == "2025-03-03T09:00:00Z"
    assert first.posts[0].channel == "rss" and first.posts[0].tenant == "t1"
    assert len(first.skipped) == 1 and "date" in first.skipped[0]
    assert first.cursor["etag"] == '"v1"' and first.cursor["ids_at_newest"] == "news-2"

    # Unchanged feed: the server answers 304 to the conditional GET.
    channel_server.route("/feed.xml", Reply(304, b"", {"ETag": '"v1"'}))
    unchanged = connector.fetch(source(f"{channel_server.url}/feed.xml"), first.cursor)
    assert unchanged.posts == [] and unchanged.cursor == first.cursor
    sent = channel_server.requests_to("/feed.xml")[-1].headers
    assert sent["if-none-match"] == '"v1"' and sent["if-modified-since"] == headers["Last-Modified"]

    # A new item: only it comes back, though the feed re-serves the old ones.
    channel_server.route("/feed.xml", Reply(200, (RSS % NEW_ITEM).encode(), {**headers, "ETag": '"v2"'}))
    later = connector.fetch(source(f"{channel_server.url}/feed.xml"), first.cursor)
    assert [p.id for p in later.posts] == ["news-3"]
    assert later.cursor["etag"] == '"v2"'


def test_atom_entries_use_published_date_content_and_author(channel_server: ChannelServer) -> None:
    channel_server.route("/atom", Reply(200, ATOM.encode(), {"Content-Type": "application/atom+xml"}))
    fetch = FeedConnector(timeout_s=5, max_retries=1).fetch(source(f"{channel_server.url}/atom"), {})
    (post,) = fetch.posts
    assert post.id == "urn:uuid:e1"
    assert post.text == "Line 3 delays\n\nSignal problem near Central."
    assert post.created_at.ToJsonString() == "2025-03-03T09:00:00Z"
    assert post.author.name == "Metro Transit" and post.url == "https://transit.example/a/1"


def test_rate_limited_feed_is_retried_after_the_servers_delay(channel_server: ChannelServer) -> None:
    waits: list[float] = []
    channel_server.route(
        "/feed.xml", Reply(429, "slow down", {"Retry-After": "7"}), Reply(200, (RSS % "").encode())
    )
    fetch = FeedConnector(timeout_s=5, max_retries=2, sleep=waits.append).fetch(
        source(f"{channel_server.url}/feed.xml"), {}
    )
    assert waits == [7.0] and len(fetch.posts) == 2


def test_a_page_that_is_not_a_feed_fails_the_poll(channel_server: ChannelServer) -> None:
    channel_server.route("/feed.xml", Reply(200, "<html><body>Moved</body"))
    with pytest.raises(ConnectorError, match="not a feed"):
        FeedConnector(timeout_s=5, max_retries=0).fetch(source(f"{channel_server.url}/feed.xml"), {})
