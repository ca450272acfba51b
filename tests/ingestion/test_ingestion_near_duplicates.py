"""Near-duplicate marking: copy-paste campaigns by different authors, within a tenant."""

from __future__ import annotations

from services.ingestion.near_duplicates import (
    NearDuplicateIndex,
    Seen,
    mark_batch,
    signature,
    similarity,
)

CAMPAIGN = (
    "Stop the new highway through Riverside park now! Sign the petition and tell the council to vote "
    "no on Tuesday."
)
UNRELATED = "The passport office on Main street has had a two hour queue every morning this week."


def seen(text: str, author: str, tenant: str = "city-a") -> Seen:
    sig = signature(text)
    assert sig is not None
    return Seen(tenant, author, sig)


def test_light_edits_stay_similar_and_other_texts_do_not() -> None:
    base = signature(CAMPAIGN)
    assert base is not None
    for variant in (
        CAMPAIGN.upper(),
        CAMPAIGN.replace("Tuesday", "Wednesday"),
        CAMPAIGN + " #SaveRiverside",
        "  " + CAMPAIGN.replace(" ", "   "),
    ):
        other = signature(variant)
        assert other is not None
        assert similarity(base, other) >= 0.6, variant
    unrelated = signature(UNRELATED)
    assert unrelated is not None
    assert similarity(base, unrelated) < 0.2


def test_short_texts_are_not_judged() -> None:
    assert signature("thank you so much") is None


def test_marks_copies_by_other_authors_only() -> None:
    index = NearDuplicateIndex()
    index.add(seen(CAMPAIGN, "alice"))
    assert index.matches_other_author(seen(CAMPAIGN.replace("now!", "today!"), "bob"))
    assert not index.matches_other_author(seen(CAMPAIGN, "alice")), "the same author repeating is no campaign"
    assert not index.matches_other_author(seen(UNRELATED, "bob"))
    assert not index.matches_other_author(seen(CAMPAIGN, "bob", tenant="city-b")), "tenants are separate"
    assert index.matches_other_author(seen(CAMPAIGN, "")), "an unknown author may be anyone"


def test_marks_within_one_batch_without_touching_the_index() -> None:
    index = NearDuplicateIndex()
    batch = [seen(CAMPAIGN, "a"), None, seen(UNRELATED, "b"), seen(CAMPAIGN, "c"), seen(CAMPAIGN, "d")]
    assert mark_batch(index, batch) == [False, False, False, True, True]
    assert len(index) == 0


def test_memory_is_bounded_and_the_oldest_are_forgotten() -> None:
    index = NearDuplicateIndex(capacity=3)
    index.add(seen(CAMPAIGN, "first"))
    for n in range(3):
        index.add(seen(f"{UNRELATED} Number {n} of the complaints about it {n * 7}", f"x{n}"))
    assert len(index) == 3
    assert not index.matches_other_author(seen(CAMPAIGN, "later"))
