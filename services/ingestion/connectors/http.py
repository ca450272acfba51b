"""HTTP for connectors: one client per poll, rate limits honoured, transient failures retried.

Channels answer 429 (and YouTube 403 "rateLimitExceeded") when polled too fast, usually with a
Retry-After header; ignoring it gets a token banned. A 429 or 5xx is retried within the poll after
Retry-After (seconds or an HTTP date) or, without one, exponential backoff with full jitter. When
retries run out the poll fails with a ConnectorError and the scheduler backs the source off.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from services.ingestion.connectors.base import ConnectorError

USER_AGENT = "civic-listening/0.1 (+https://github.com/civic-listening)"
RETRIED = frozenset({429, 500, 502, 503, 504})
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 60.0
# A Retry-After longer than this fails the poll instead of holding the scheduler thread.
MAX_WAIT_S = 120.0


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None when absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def backoff_s(attempt: int) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2^attempt)], so many sources do not retry in step."""
    return random.uniform(0.0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt))


class Http:
    """A small wrapper over httpx.Client; `sleep` is injectable so tests can see the waits asked for."""

    def __init__(
        self,
        timeout_s: float,
        max_retries: int,
        headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = httpx.Client(
            timeout=timeout_s, headers={"User-Agent": USER_AGENT, **(headers or {})}, follow_redirects=True
        )
        self.max_retries = max_retries
        self.sleep = sleep

    def __enter__(self) -> Http:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def get(
        self, url: str, params: Mapping[str, Any] | httpx.QueryParams | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """The response of a GET that is not rate limited; 304 and 4xx are returned for the caller."""
        for attempt in range(self.max_retries + 1):
            try:
                response = self.client.get(url, params=params, headers=headers)
            except httpx.HTTPError as exc:
                if attempt == self.max_retries:
                    raise ConnectorError(f"GET {url}: {exc}") from exc
                self.sleep(backoff_s(attempt))
                continue
            if not _rate_limited(response) and response.status_code not in RETRIED:
                return response
            if attempt == self.max_retries:
                break
            wait = retry_after_s(response.headers.get("Retry-After"))
            wait = backoff_s(attempt) if wait is None else wait
            if wait > MAX_WAIT_S:
                raise ConnectorError(f"GET {url}: rate limited for {wait:.0f}s")
            self.sleep(wait)
        raise ConnectorError(f"GET {url}: HTTP {response.status_code} after {self.max_retries} retries")

    def get_json(
        self, url: str, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> tuple[Any, httpx.Response]:
        response = self.get(url, params, headers)
        if response.status_code >= 400:
            raise ConnectorError(f"GET {url}: HTTP {response.status_code}: {response.text[:200]}")
        try:
            return response.json(), response
        except ValueError as exc:
            raise ConnectorError(f"GET {url}: answer is not JSON") from exc


def _rate_limited(response: httpx.Response) -> bool:
    """YouTube signals quota and rate limits as 403 with a reason instead of 429."""
    if response.status_code != 403 or "json" not in response.headers.get("content-type", ""):
        return False
    return "rateLimitExceeded" in response.text or "userRateLimitExceeded" in response.text


class HttpConnector:
    """Base of the HTTP-polling connectors: builds one Http client per poll from the settings."""

    kind = ""

    def __init__(
        self, timeout_s: float = 30.0, max_retries: int = 4, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.sleep = sleep

    def http(self, headers: Mapping[str, str] | None = None) -> Http:
        return Http(self.timeout_s, self.max_retries, headers, self.sleep)
