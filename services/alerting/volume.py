"""Volume spike and drop rules: the online anomaly detector fed each rule's windows in event-time order.

The detector learns a window once it is closed (the tenant has posts in a later window), counting an
empty window as 0, so a flatline is seen even when the matching stream falls silent. The open window is
only scored, on a copy, so that a spike fires while it is happening rather than after it. Its state is
pickled next to the rule's counters, in the same transaction, so a restart continues the series; a state
pickled by another version of the detector is dropped and the series relearnt from the kept history.
"""

from __future__ import annotations

import pickle

from civic.listening.v1 import alerting_pb2
from services.alerting.rules import VOLUME_DROP
from services.alerting.store import AlertStore
from services.common.anomaly import DEFAULT_SENSITIVITY, STATE_VERSION, Verdict, VolumeAnomalyDetector


def new_detector(rule: alerting_pb2.Rule) -> VolumeAnomalyDetector:
    return VolumeAnomalyDetector(rule.sensitivity or None, direction="fall" if rule.kind == VOLUME_DROP else "rise")


def stored_detector(store: AlertStore, rule: alerting_pb2.Rule) -> tuple[int, VolumeAnomalyDetector] | None:
    """The rule's detector as stored, with the next window it has to learn; None if none, or of another version."""
    state = store.detector(rule.tenant, rule.id)
    if state is None:
        return None
    try:
        detector = pickle.loads(state[1])
    except (AttributeError, ImportError, EOFError, TypeError, ValueError, pickle.UnpicklingError):
        return None  # pickled by a version whose classes are gone
    if not isinstance(detector, VolumeAnomalyDetector) or getattr(detector, "state_version", None) != STATE_VERSION:
        return None
    return state[0], detector


def anomalous(rule: alerting_pb2.Rule, verdict: Verdict) -> bool:
    """Whether the window is anomalous, ignoring the detector's own cooldown: each window of a long
    burst or flatline holds the condition, so its alert stays firing; grouping makes it one event."""
    return verdict.score >= 1.0 - (rule.sensitivity or DEFAULT_SENSITIVITY)


def learn_closed(
    store: AlertStore, rule: alerting_pb2.Rule, closed_before: int, horizon: int
) -> list[tuple[int, Verdict]]:
    """Feeds the detector every window from where it stopped up to `closed_before`; their verdicts.

    Windows older than `horizon` (the kept history) are skipped: after a long gap the detector
    resumes at the horizon rather than learning weeks of zeros.
    """
    state = stored_detector(store, rule)
    if state is None:
        first = store.earliest_window(rule.tenant, rule.id)
        if first is None:
            return []
        next_start, detector = first, new_detector(rule)
    else:
        next_start, detector = state
    width = rule.window_seconds
    if next_start < horizon:
        next_start += (horizon - next_start + width - 1) // width * width
    if next_start >= closed_before:
        return []
    counts = store.window_counts(rule.tenant, rule.id, next_start, closed_before)
    verdicts = [
        (start, detector.update(counts.get(start, 0), start)) for start in range(next_start, closed_before, width)
    ]
    store.put_detector(rule.tenant, rule.id, closed_before, pickle.dumps(detector))
    return verdicts


def score_open(store: AlertStore, rule: alerting_pb2.Rule, start: int, count: int) -> Verdict | None:
    """The verdict on the open window `start` with its count so far, learning nothing; None when the
    detector has not caught up to that window (the window is not the open one)."""
    state = stored_detector(store, rule)
    if state is None or state[0] != start:
        return None
    return state[1].update(count, start)
