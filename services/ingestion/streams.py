"""Long-lived subscriptions of the sources that stream (Bluesky's Jetstream): one thread per active
source, from the moment it is active until it is paused or deleted.

Each checkpoint of the subscription is ingested like a poll, and its cursor stored only once that
succeeded; a lost connection, or a spool too full to take a checkpoint, is recorded on the source
and the subscription reconnects from the last stored cursor after a backoff (full jitter, from 1 s
doubling to 60 s, back to the start once a connection delivered something).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from services.common.errors import DomainError, NotFound
from services.ingestion.connectors.base import ConnectorError, Fetch, SourceConfig, Subscription
from services.ingestion.sources import PollOutcome, SourceStore

log = logging.getLogger(__name__)

BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 60.0

Deliver = Callable[[SourceConfig, Fetch], PollOutcome]


def backoff_s(attempt: int) -> float:
    return random.uniform(0.0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt))


class Follower:
    """Keeps one source's subscription open, checkpoint after checkpoint, until stopped."""

    def __init__(self, source_id: str, store: SourceStore, subscription: Subscription, deliver: Deliver) -> None:
        self.source_id = source_id
        self.store = store
        self.subscription = subscription
        self.deliver = deliver
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"subscription-{source_id}", daemon=True)

    def start(self) -> Follower:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                config, cursor, _ = self.store.config(self.source_id)
            except NotFound:
                return  # deleted while it was followed
            progressed = False

            def checkpoint(fetch: Fetch, config: SourceConfig = config) -> None:
                nonlocal progressed
                outcome = self.deliver(config, fetch)  # raises, storing no cursor, if the spool refuses it
                self.store.record(self.source_id, outcome, fetch.cursor, time.time())
                progressed = True

            try:
                self.subscription.run(config, cursor, checkpoint, self._stop)
            except (ConnectorError, DomainError, ValueError) as exc:
                error = str(exc) or type(exc).__name__
                log.warning("source %s (%s) subscription: %s", self.source_id, config.kind, error)
                self.store.record(self.source_id, PollOutcome(error=error), None, time.time())
            except Exception:  # a bug must not end the subscription for good
                log.exception("source %s subscription failed", self.source_id)
            attempt = 0 if progressed else attempt + 1
            self._stop.wait(backoff_s(attempt))
