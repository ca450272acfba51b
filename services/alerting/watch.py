"""One WatchAlerts stream: stored events after a cursor, then new ones as they are recorded.

Events recorded by this process wake its watchers at once; those of another replica (a shared store)
are found by the short poll, so a stream sees every replica's events, each once and in order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from civic.listening.v1 import alerting_pb2
from services.alerting.store import AlertStore

WATCH_BATCH = 500
WATCH_POLL_S = 0.5


class Watch:
    """One WatchAlerts stream: its slot is given back by close(), whether or not it was iterated."""

    def __init__(self, store: AlertStore, tenant: str, after: int, release: Callable[[], None]) -> None:
        self.store, self.tenant, self.cursor = store, tenant, after
        self._release: Callable[[], None] | None = release

    def events(self, active: Callable[[], bool]) -> Iterator[alerting_pb2.AlertEvent]:
        """Stored events after the cursor, then new ones as they are recorded, while `active()`."""
        while active():
            events = self.store.events(self.tenant, self.cursor, WATCH_BATCH)
            for event in events:
                self.cursor = event.sequence
                yield event
            if not events:
                with self.store.changed:
                    self.store.changed.wait(timeout=WATCH_POLL_S)

    def close(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()

