"""Background loops of the alerting process: escalation and webhooks, and the Elasticsearch copy.

They run beside the gRPC threads so that EvaluatePosts never waits for a receiver or a cluster.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

MAX_IDLE_S = 30.0


class Loop:
    """Runs `step` every `interval_s`; a step that returns False (a dependency is down) makes the
    loop wait twice as long each time, up to MAX_IDLE_S, until a step succeeds again."""

    def __init__(self, name: str, interval_s: float, step: Callable[[], bool | None]) -> None:
        self.name, self.interval_s, self.step = name, interval_s, step
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Loop:
        self._thread.start()
        return self

    def _run(self) -> None:
        wait = self.interval_s
        while not self._stop.wait(wait):
            try:
                healthy = self.step() is not False
            except Exception:
                if self._stop.is_set():
                    return  # the store was closed under us: the process is stopping
                log.exception("%s step failed", self.name)
                healthy = False
            wait = self.interval_s if healthy else min(max(wait * 2, self.interval_s), MAX_IDLE_S)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=MAX_IDLE_S)
