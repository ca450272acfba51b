"""The soak bench's verdict (bench/soak_accounting.py): lost, duplicated and unexpected posts, and
latencies that leave out every post whose journey overlaps a kill."""

from __future__ import annotations

import math

from bench.soak_accounting import delivery, latencies_outside, percentile


def test_delivery_separates_once_twice_missing_and_never_sent() -> None:
    verdict = delivery(
        acknowledged=["a", "b", "c", "d"],
        sent=["a", "b", "c", "d", "e", "f"],
        stored={"a": 1, "b": 2, "e": 1, "zz": 1},
    )
    assert verdict.indexed_once == 1  # a; b is stored twice
    assert verdict.duplicated == ["b"]
    assert verdict.lost == ["c", "d"]
    # e was sent but its answer never came back: stored or not, it is neither lost nor wrong.
    assert verdict.never_sent == ["zz"]


def test_a_duplicate_that_was_never_acknowledged_still_counts() -> None:
    verdict = delivery(acknowledged=[], sent=["x"], stored={"x": 3})
    assert (verdict.indexed_once, verdict.duplicated, verdict.lost) == (0, ["x"], [])


def test_latencies_leave_out_journeys_that_overlap_a_kill() -> None:
    accepted = {"before": 0.0, "across": 9.0, "inside": 11.0, "after": 30.0, "unindexed": 31.0}
    indexed = {"before": 2.0, "across": 12.5, "inside": 14.0, "after": 31.5}
    assert sorted(latencies_outside(accepted, indexed, [(10.0, 20.0)])) == [1.5, 2.0]
    assert sorted(latencies_outside(accepted, indexed, [])) == [1.5, 2.0, 3.0, 3.5]


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.99), percentile(values, 1.0)) == (50.0, 99.0, 100.0)
    assert percentile([4.0], 0.99) == 4.0
    assert math.isnan(percentile([], 0.5))
