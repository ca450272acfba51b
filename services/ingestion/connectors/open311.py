"""Open311 GeoReport v2 `GET requests.json`: citizens' service requests to a city, with location.

Incremental with `start_date` (the spec's filter on requested_datetime) from the newest request seen,
kept as a TimeCursor so requests filed in the same second are neither lost nor resent. Endpoints
that page their results (the widely implemented `page` / `page_size` extension) are followed page by
page while pages come back full; a server that ignores `page` answers the same page again, and the
walk stops there instead of reading it up to the page limit.

Servers write times as the spec asks (with an offset) or, some of them, as the city's local time
without one: the `timezone` parameter (an IANA name, e.g. America/Los_Angeles) says what such a time
means (UTC when unset), and `start_date` is then sent in that zone's local time with its offset,
right whether the server reads the offset or not. `lat`/`long` of 0,0 (what many servers send for
"no location") is no location.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from civic.listening.v1 import post_pb2
from services.ingestion.connectors.base import ConnectorError, Fetch, SourceConfig, TimeCursor, new_post, parse_time
from services.ingestion.connectors.http import HttpConnector

DEFAULT_PAGE_SIZE = 100
MAX_PAGES = 20


def source_zone(params: Mapping[str, str]) -> tzinfo:
    name = params.get("timezone", "").strip()
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"params.timezone: {name!r} is not an IANA time zone (e.g. America/Los_Angeles)") from exc


class Open311Connector(HttpConnector):
    kind = "open311"

    def fetch(self, source: SourceConfig, cursor: Mapping[str, str]) -> Fetch:
        url = source.url.rstrip("/") + "/requests.json"
        zone = source_zone(source.params)
        seen = TimeCursor.load(cursor)
        page_size = int(source.params.get("page_size", DEFAULT_PAGE_SIZE))
        query: dict[str, Any] = {"page_size": page_size}
        for name in ("jurisdiction_id", "service_code", "status"):
            if source.params.get(name):
                query[name] = source.params[name]
        if source.secret:
            query["api_key"] = source.secret
        if seen.newest is not None:
            query["start_date"] = seen.newest.astimezone(zone).isoformat(timespec="seconds").replace("+00:00", "Z")
        fetch = Fetch([], {})
        found: list[post_pb2.Post] = []
        read: set[str] = set()
        with self.http() as http:
            for page in range(1, MAX_PAGES + 1):
                body, _ = http.get_json(url, {**query, "page": page})
                if not isinstance(body, list):
                    raise ConnectorError(f"{url}: expected a JSON array of service requests")
                if body and isinstance(body[0], dict) and "code" in body[0] and "description" in body[0] \
                        and "service_request_id" not in body[0]:
                    raise ConnectorError(f"{url}: Open311 error {body[0]['code']}: {body[0]['description']}")
                ids = {str(r.get("service_request_id")) for r in body if isinstance(r, dict)}
                if ids and ids <= read:
                    break  # the server ignores `page`: this page was read already
                read |= ids
                for request in body:
                    try:
                        post = self._post(source, request, zone)
                    except (KeyError, TypeError, ValueError, AttributeError) as exc:
                        name = request.get("service_request_id", "?") if isinstance(request, dict) else "?"
                        fetch.skipped.append(f"request {name}: {exc!r}")
                        continue
                    if seen.is_new(post.created_at.ToDatetime(tzinfo=UTC), post.id):
                        found.append(post)
                if len(body) < page_size:
                    break
        for post in sorted(found, key=lambda p: (p.created_at.seconds, p.created_at.nanos)):
            fetch.posts.append(post)
            seen.advance(post.created_at.ToDatetime(tzinfo=UTC), post.id)
        fetch.cursor = seen.dump()
        return fetch

    def _post(self, source: SourceConfig, request: dict[str, Any], zone: tzinfo) -> post_pb2.Post:
        request_id = request["service_request_id"]
        if not request_id:
            raise ValueError("no service_request_id")
        text = (request.get("description") or "").strip() or (request.get("service_name") or "").strip()
        if not text:
            raise ValueError("no description and no service_name")
        post = new_post(source, str(request_id), text, parse_time(request["requested_datetime"], zone))
        post.source = f"{source.url} {request.get('service_name', '')}".strip()
        post.url = f"{source.url.rstrip('/')}/requests/{request_id}.json"  # the spec's single-request URL
        if request.get("lat") not in (None, "") and request.get("long") not in (None, ""):
            lat, lon = float(request["lat"]), float(request["long"])
            if (lat, lon) != (0.0, 0.0):
                post.geo.lat, post.geo.lon = lat, lon
        details = post.service_request
        details.status = str(request.get("status") or "").strip().lower()
        details.service_code = str(request.get("service_code") or "")
        details.service_name = str(request.get("service_name") or "")
        details.agency = str(request.get("agency_responsible") or "")
        details.address = str(request.get("address") or "")
        try:
            if request.get("updated_datetime"):
                details.updated_at.FromDatetime(parse_time(str(request["updated_datetime"]), zone).astimezone(UTC))
        except ValueError:
            details.ClearField("updated_at")  # the request itself is good; only this date is unreadable
        if str(request.get("media_url") or "").startswith(("http://", "https://")):
            post.media.add(type="image", url=str(request["media_url"]))
        return post
