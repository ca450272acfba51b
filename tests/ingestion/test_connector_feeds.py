"""RSS 2.0 and Atom feeds from a local server: conditional GET, new entries only, bad entries skipped."""

from __future__ import annotations

from datetime import UTC, datetime

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
    before = datetime.now(UTC)
    first = connector.fetch(source(f"{channel_server.url}/feed.xml"), {})
    # The entry without any date is kept, dated when first seen, and remembered by id.
    assert [p.id for p in first.posts] == ["news-1", "news-2", "news-undated"]
    assert first.posts[2].created_at.ToDatetime(tzinfo=UTC) >= before.replace(microsecond=0)
    assert first.posts[0].text == "Water main repair on Elm Street\n\nCrews will work overnight."
    assert first.posts[0].url == "https://springfield.example/news/1"
    assert first.posts[0].created_at.ToJsonString() == "2025-03-03T09:00:00Z"
    assert first.posts[0].channel == "rss" and first.posts[0].tenant == "t1"
    assert first.skipped == []
    assert first.cursor["etag"] == '"v1"' and first.cursor["ids_at_newest"] == "news-2"
    assert first.cursor["undated_ids"] == "news-undated"

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
    assert waits == [7.0] and len(fetch.posts) == 3


def test_a_page_that_is_not_a_feed_fails_the_poll(channel_server: ChannelServer) -> None:
    channel_server.route("/feed.xml", Reply(200, "<html><body>Moved</body"))
    with pytest.raises(ConnectorError, match="not a feed"):
        FeedConnector(timeout_s=5, max_retries=0).fetch(source(f"{channel_server.url}/feed.xml"), {})


# A Brazilian city hall's RSS as served (pt-BR weekday and month names) and a French one.
PT_RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Prefeitura de Curitiba - Notícias</title>
  <link>https://prefeitura.example/noticias</link><language>pt-BR</language>
  <item><title>Obras interditam a Avenida Sete de Setembro</title><link>https://prefeitura.example/n/1</link>
    <guid isPermaLink="true">https://prefeitura.example/n/1</guid><pubDate>Seg, 24 Set 2018 10:00:00 -0300</pubDate>
    <category>Obras</category><category>Trânsito</category>
    <enclosure url="https://prefeitura.example/img/obra.jpg" length="48213" type="image/jpeg"/>
    <description>Desvio pela Rua XV.</description></item>
  <item><title>Vacinação no sábado</title><link>https://prefeitura.example/n/2</link>
    <guid isPermaLink="true">https://prefeitura.example/n/2</guid><pubDate>Qua, 26 Set 2018 08:15:00 -0300</pubDate>
    <description>Postos abertos das 8h às 17h.</description></item>
</channel></rss>"""
FR_RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Ville de Lyon</title><language>fr</language>
  <item><title>Collecte des encombrants</title><guid>lyon-88</guid>
    <pubDate>mer, 16 nov 2022 08:30:00 +0100</pubDate><description>Quartier de la Croix-Rousse.</description></item>
  <item><title>Piscine fermée</title><guid>lyon-89</guid><pubDate>le jour où</pubDate>
    <description>Travaux.</description></item>
</channel></rss>"""


def test_localized_dates_are_read_instead_of_losing_every_entry(channel_server: ChannelServer) -> None:
    channel_server.route("/pt.xml", Reply(200, PT_RSS.encode(), {"Content-Type": "application/rss+xml"}))
    fetch = FeedConnector(timeout_s=5, max_retries=1).fetch(source(f"{channel_server.url}/pt.xml"), {})
    assert [(p.id, p.created_at.ToJsonString()) for p in fetch.posts] == [
        ("https://prefeitura.example/n/1", "2018-09-24T13:00:00Z"),
        ("https://prefeitura.example/n/2", "2018-09-26T11:15:00Z"),
    ]
    post = fetch.posts[0]
    assert list(post.categories) == ["Obras", "Trânsito"] and list(post.sender_languages) == ["pt-BR"]
    assert [(m.type, m.url) for m in post.media] == [("image", "https://prefeitura.example/img/obra.jpg")]
    assert fetch.cursor["newest"] == "2018-09-26T11:15:00+00:00" and fetch.skipped == []

    # An unreadable date falls back to first-seen; the next poll neither repeats nor loses anything.
    channel_server.route("/fr.xml", Reply(200, FR_RSS.encode()))
    french = FeedConnector(timeout_s=5, max_retries=1).fetch(source(f"{channel_server.url}/fr.xml"), {})
    assert [p.id for p in french.posts] == ["lyon-88", "lyon-89"]
    assert french.posts[0].created_at.ToJsonString() == "2022-11-16T07:30:00Z"
    again = FeedConnector(timeout_s=5, max_retries=1).fetch(source(f"{channel_server.url}/fr.xml"), french.cursor)
    assert again.posts == []


ATOM_UPDATED_ONLY = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Council livewire</title><id>tag:council.example,2025:live</id>
  <link rel="self" href="https://council.example/livewire/feed.atom"/><updated>2025-03-03T12:00:00Z</updated>
  <entry><title>Budget vote tonight</title><id>tag:council.example,2025:live/41</id>
    <link rel="alternate" href="/livewire/2025/03/budget-vote"/>
    <link rel="related" href="/agendas/2025-03-03.pdf"/>
    <updated>2025-03-03T11:00:00Z</updated><summary>Doors open at 6 pm.</summary></entry>
  <entry xml:base="https://council.example/minutes/"><title>Minutes published</title>
    <id>tag:council.example,2025:live/42</id><link href="2025-03-02.html"/>
    <published>2025-03-03T11:30:00Z</published><updated>2025-03-03T11:45:00Z</updated>
    <summary>Read them online.</summary></entry>
</feed>"""


def test_relative_links_are_resolved_and_updated_dates_a_post(channel_server: ChannelServer) -> None:
    channel_server.route("/livewire/feed.atom", Reply(200, ATOM_UPDATED_ONLY.encode(),
                                                      {"Content-Type": "application/atom+xml"}))
    fetch = FeedConnector(timeout_s=5, max_retries=1).fetch(source(f"{channel_server.url}/livewire/feed.atom"), {})
    first, second = fetch.posts
    assert first.url == f"{channel_server.url}/livewire/2025/03/budget-vote"
    assert list(first.links) == [f"{channel_server.url}/agendas/2025-03-03.pdf"]
    assert first.created_at.ToJsonString() == "2025-03-03T11:00:00Z" and not first.HasField("edited_at")
    assert second.url == "https://council.example/minutes/2025-03-02.html"
    assert second.edited_at.ToJsonString() == "2025-03-03T11:45:00Z"


# An NWS-style CAP 1.2 Atom feed (alerts.weather.gov's ATOM shape).
CAP_ATOM = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:cap="urn:oasis:names:tc:emergency:cap:1.2"
      xmlns:georss="http://www.georss.org/georss" xml:lang="en-US">
  <id>https://alerts.example/cap/us.php?x=0</id><title>Current Watches, Warnings and Advisories</title>
  <updated>2025-03-03T12:00:00-05:00</updated>
  <entry><id>https://alerts.example/cap/wwacapget.php?x=CA1254</id>
    <updated>2025-03-03T10:05:00-05:00</updated><published>2025-03-03T10:05:00-05:00</published>
    <author><name>w-nws.webmaster@noaa.gov</name></author>
    <title>Flood Warning issued March 3 at 10:05AM EST until March 4 at 10:00AM EST by NWS</title>
    <link href="https://alerts.example/cap/wwacapget.php?x=CA1254"/>
    <summary>The river will rise above flood stage this evening.</summary>
    <cap:event>Flood Warning</cap:event><cap:effective>2025-03-03T10:05:00-05:00</cap:effective>
    <cap:expires>2025-03-04T10:00:00-05:00</cap:expires><cap:status>Actual</cap:status>
    <cap:msgType>Alert</cap:msgType><cap:category>Met</cap:category><cap:urgency>Expected</cap:urgency>
    <cap:severity>Severe</cap:severity><cap:certainty>Likely</cap:certainty>
    <cap:areaDesc>Lower Valley; Riverside</cap:areaDesc>
    <cap:polygon>38.47,-120.14 38.34,-119.95 38.52,-119.74 38.62,-119.89 38.47,-120.14</cap:polygon>
  </entry>
  <entry><id>https://alerts.example/georss/7</id><title>Road closed</title>
    <published>2025-03-03T11:00:00Z</published><summary>Bridge inspection.</summary>
    <georss:point>45.256 -71.92</georss:point></entry>
</feed>"""


def test_cap_severity_area_and_georss_location(channel_server: ChannelServer) -> None:
    channel_server.route("/cap.atom", Reply(200, CAP_ATOM.encode(), {"Content-Type": "application/atom+xml"}))
    closure, warning = FeedConnector(timeout_s=5, max_retries=1).fetch(source(f"{channel_server.url}/cap.atom"),
                                                                       {}).posts
    alert = warning.official_alert
    assert (alert.event, alert.severity, alert.urgency, alert.certainty, alert.area) == (
        "Flood Warning", "severe", "expected", "likely", "Lower Valley; Riverside")
    assert [(p.lat, p.lon) for p in alert.area_polygon][:2] == [(38.47, -120.14), (38.34, -119.95)]
    assert len(alert.area_polygon) == 5 and alert.expires_at.ToJsonString() == "2025-03-04T15:00:00Z"
    assert list(warning.sender_languages) == ["en-US"]
    assert (closure.geo.lat, closure.geo.lon) == (45.256, -71.92) and not closure.HasField("official_alert")
