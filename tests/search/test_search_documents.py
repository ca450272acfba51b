"""The document <-> EnrichedPost conversion, without a server: what search users read in the index
must come back as the post that was indexed."""

from __future__ import annotations

import pytest

from civic.listening.v1 import post_pb2
from services.search.documents import from_document, to_document


def enriched(seconds: int, nanos: int) -> post_pb2.EnrichedPost:
    post = post_pb2.Post(id="p1", tenant="t", channel="rss", text="Bus 12 late again", language="en",
                         author=post_pb2.Author(id="a1"), engagement=post_pb2.Engagement(likes=3))
    post.created_at.seconds, post.created_at.nanos = seconds, nanos
    return post_pb2.EnrichedPost(
        post=post,
        enrichment=post_pb2.Enrichment(sentiment=post_pb2.SENTIMENT_LABEL_NEGATIVE, topic="transit"),
    )


@pytest.mark.parametrize("nanos", [0, 123_000_000, 123_456_000, 123_456_789])
def test_created_at_survives_the_round_trip_at_every_precision(nanos: int) -> None:
    original = enriched(1_763_000_000, nanos)
    document = to_document(original)
    back = from_document(document)
    assert back.post.created_at == original.post.created_at
    assert back.post == original.post


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2025-11-13T04:13:20+02:00", "2025-11-13T02:13:20Z"),  # another writer's offset
        ("2025-11-13T02:13:20", "2025-11-13T02:13:20Z"),  # no zone: Elasticsearch reads it as UTC too
        ("2025-11-13T02:13:20.5Z", "2025-11-13T02:13:20.500Z"),
    ],
)
def test_timestamps_written_by_other_clients_are_read_as_elasticsearch_reads_them(written: str, expected: str) -> None:
    document = to_document(enriched(0, 0)) | {"created_at": written}
    assert from_document(document).post.created_at.ToJsonString() == expected
