"""The rounds of single tries that decide a failing batch's fate (services/ingestion/isolation.py),
driven without servers: which post fails, and when a probe first goes through, are chosen here."""

from __future__ import annotations

from services.ingestion.isolation import Isolated, Tried, isolate

ATTEMPTS = 3


def run_rounds(items: list[str], bad: set[str], probe_works_from_round: int | None) -> tuple[Isolated[str], list[int]]:
    """isolate() over `items` where `bad` always fail and the probe goes through from that round on."""
    rounds: list[int] = [0]
    pauses: list[int] = []

    def try_one(item: str) -> tuple[Tried, str]:
        return (Tried.FAILED, "Enrich: DATA_LOSS") if item in bad else (Tried.DONE, "")

    def probe() -> bool:
        rounds[0] += 1
        return probe_works_from_round is not None and rounds[0] >= probe_works_from_round

    return isolate(items, try_one, probe, ATTEMPTS, pauses.append), pauses


def test_a_post_that_fails_beside_one_that_goes_through_is_a_dead_letter() -> None:
    result, _ = run_rounds(["bad", "good"], {"bad"}, probe_works_from_round=None)
    assert result.done == ["good"]
    assert list(result.dead) == ["bad"] and result.waiting == []


def test_nothing_going_through_leaves_every_post_waiting() -> None:
    result, pauses = run_rounds(["a", "b"], {"a", "b"}, probe_works_from_round=None)
    assert (result.dead, result.waiting) == ({}, ["a", "b"])
    assert len(pauses) == 2 * ATTEMPTS - 1


def test_a_probe_that_goes_through_in_the_last_round_still_settles_the_bad_post() -> None:
    """A post arriving behind a lone bad post late in its rounds (a replayed post waiting for company)
    is proof enough: the bad post gets its counted tries and becomes a dead letter, not a wait for ever."""
    result, pauses = run_rounds(["bad"], {"bad"}, probe_works_from_round=2 * ATTEMPTS)
    assert list(result.dead) == ["bad"] and result.waiting == []
    assert result.dead["bad"].endswith("(failed 3 times alone while other posts went through)")
    assert max(pauses) == 2 * ATTEMPTS - 1, "the pause never grows past the longest of the bounded rounds"
