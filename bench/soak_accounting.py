"""The soak bench's verdict, as plain functions: which acknowledged posts are in search once, more
than once or not at all, and how long a post took to become searchable outside the kill windows."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Delivery:
    """What search holds against what the clients were told."""

    indexed_once: int
    duplicated: list[str]
    lost: list[str]
    never_sent: list[str]


def delivery(acknowledged: Iterable[str], sent: Iterable[str], stored: Mapping[str, int]) -> Delivery:
    """`stored` counts the documents per post id across every backing index of the tenant.

    A post sent but never acknowledged (its answer was lost) may or may not be stored; it is neither
    lost nor wrong. Anything stored that was never sent is wrong.
    """
    acked = set(acknowledged)
    sent_ids = set(sent) | acked
    return Delivery(
        indexed_once=sum(1 for post_id in acked if stored.get(post_id, 0) == 1),
        duplicated=sorted(post_id for post_id, times in stored.items() if times > 1),
        lost=sorted(post_id for post_id in acked if stored.get(post_id, 0) == 0),
        never_sent=sorted(set(stored) - sent_ids),
    )


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (share in (0, 1]); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def latencies_outside(
    accepted_at: Mapping[str, float], indexed_at: Mapping[str, float], windows: Sequence[tuple[float, float]]
) -> list[float]:
    """Seconds from acceptance to indexing of each post whose journey overlaps no kill window
    (a kill until its component serves again)."""
    found = []
    for post_id, accepted in accepted_at.items():
        indexed = indexed_at.get(post_id)
        if indexed is None:
            continue
        if any(accepted <= end and indexed >= start for start, end in windows):
            continue
        found.append(max(0.0, indexed - accepted))
    return found
