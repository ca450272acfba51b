"""Open311 GeoReport v2 requests.json from a local server: start_date cursor, pages, geo, errors."""

from __future__ import annotations

from typing import Any

import pytest

from services.ingestion.connectors.base import ConnectorError, SourceConfig
from services.ingestion.connectors.open311 import Open311Connector
from tests.fixtures.channel_servers import ChannelServer, Reply

PATH = "/open311/v2/requests.json"


def request(n: int, description: str | None, when: str) -> dict[str, Any]:
    """A service request as in the GeoReport v2 spec (wiki.open311.org/GeoReport_v2)."""
    return {"service_request_id": f"6381{n}", "status": "open", "status_notes": None,
            "service_name": "Pothole", "service_code": "001", "description": description,
            "agency_responsible": "Streets", "service_notice": None, "requested_datetime": when,
            "updated_datetime": when, "expected_datetime": None, "address": "8TH AVE and JUDAH ST",
            "address_id": "545483", "zipcode": 94122, "lat": 37.762221815, "long": -122.4651145,
            "media_url": "https://city.example/media/1.jpg"}


def source(url: str, **params: str) -> SourceConfig:
    return SourceConfig("t1", "sf", "open311", f"{url}/open311/v2", {"page_size": "2", **params})


def test_pages_geo_and_cursor(channel_server: ChannelServer) -> None:
    pages = {
        "1": [request(1, "Deep pothole in bike lane", "2025-03-01T08:00:00-08:00"),
              request(2, None, "2025-03-01T09:00:00-08:00")],
        "2": [{"service_request_id": "63813", "description": "no date"}],
    }
    channel_server.route(PATH, handler=lambda r: Reply(200, pages[r.query["page"]]))
    fetch = Open311Connector(5, 1).fetch(source(channel_server.url, jurisdiction_id="sf.gov"), {})
    assert [(p.id, p.text) for p in fetch.posts] == [("63811", "Deep pothole in bike lane"), ("63812", "Pothole")]
    post = fetch.posts[0]
    assert (round(post.geo.lat, 4), round(post.geo.lon, 4)) == (37.7622, -122.4651)
    assert post.created_at.ToJsonString() == "2025-03-01T16:00:00Z"
    assert post.url == f"{channel_server.url}/open311/v2/requests/63811.json"
    assert len(fetch.skipped) == 1 and "63813" in fetch.skipped[0]
    assert fetch.cursor == {"newest": "2025-03-01T17:00:00+00:00", "ids_at_newest": "63812"}
    sent = channel_server.requests_to(PATH)
    assert [r.query["page"] for r in sent] == ["1", "2"] and sent[0].query["jurisdiction_id"] == "sf.gov"

    # Next poll: start_date from the cursor; the request at exactly that time is not sent again.
    channel_server.route(PATH, Reply(200, [request(2, None, "2025-03-01T09:00:00-08:00"),
                                           ]))
    again = Open311Connector(5, 1).fetch(source(channel_server.url), fetch.cursor)
    assert again.posts == []
    assert channel_server.requests_to(PATH)[-1].query["start_date"] == "2025-03-01T17:00:00Z"


def test_open311_error_array_fails_the_poll(channel_server: ChannelServer) -> None:
    channel_server.route(PATH, Reply(400, [{"code": 400, "description": "Invalid start_date"}]))
    with pytest.raises(ConnectorError, match="Invalid start_date"):
        Open311Connector(5, 0).fetch(source(channel_server.url), {})


def test_retry_after_as_http_date(channel_server: ChannelServer) -> None:
    waits: list[float] = []
    channel_server.route(PATH, Reply(429, "", {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}), Reply(200, []))
    assert Open311Connector(5, 1, sleep=waits.append).fetch(source(channel_server.url), {}).posts == []
    assert waits == [0.0]  # a date in the past means "now"


def test_zero_zero_is_no_location_and_request_details_are_kept(channel_server: ChannelServer) -> None:
    nowhere = {**request(4, "Graffiti on the library wall", "2025-03-02T08:00:00Z"), "lat": 0, "long": 0,
               "status": "Closed", "agency_responsible": "Public Works", "address": "100 Larkin St"}
    as_strings = {**request(5, "Streetlight out", "2025-03-02T09:00:00Z"), "lat": "37.7793", "long": "-122.4193"}
    channel_server.route(PATH, Reply(200, [nowhere, as_strings]))
    first, second = Open311Connector(5, 1).fetch(source(channel_server.url), {}).posts
    assert not first.HasField("geo") and (second.geo.lat, second.geo.lon) == (37.7793, -122.4193)
    details = first.service_request
    assert (details.status, details.service_code, details.service_name, details.agency, details.address) == (
        "closed", "001", "Pothole", "Public Works", "100 Larkin St")
    assert details.updated_at.ToJsonString() == "2025-03-02T08:00:00Z"
    assert [(m.type, m.url) for m in first.media] == [("image", "https://city.example/media/1.jpg")]


def test_a_server_that_ignores_page_is_read_once(channel_server: ChannelServer) -> None:
    full = [request(n, f"Request {n}", f"2025-03-02T0{n}:00:00Z") for n in (1, 2)]
    channel_server.route(PATH, Reply(200, full))  # whatever page is asked for
    fetch = Open311Connector(5, 1).fetch(source(channel_server.url), {})
    assert [p.id for p in fetch.posts] == ["63811", "63812"]
    assert [r.query["page"] for r in channel_server.requests_to(PATH)] == ["1", "2"]


def test_local_times_without_offset_follow_the_sources_time_zone(channel_server: ChannelServer) -> None:
    channel_server.route(PATH, Reply(200, [request(6, "Tree down on Oak St", "2025-07-01T09:30:00")]))
    pacific = source(channel_server.url, timezone="America/Los_Angeles")
    fetch = Open311Connector(5, 1).fetch(pacific, {})
    assert fetch.posts[0].created_at.ToJsonString() == "2025-07-01T16:30:00Z"  # PDT is UTC-7
    Open311Connector(5, 1).fetch(pacific, fetch.cursor)
    assert channel_server.requests_to(PATH)[-1].query["start_date"] == "2025-07-01T09:30:00-07:00"
    with pytest.raises(ValueError, match=r"params\.timezone"):
        Open311Connector(5, 1).fetch(source(channel_server.url, timezone="Pacific Time"), {})
