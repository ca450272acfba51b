"""Posts shared by the tests that run against the secured stack (tests/fixtures/security.py): the test
modules import these, never each other."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from civic.listening.v1 import post_pb2
from tests.fixtures.security import embedding

NOW = datetime.now(UTC).replace(microsecond=0)


def enriched(tenant: str, post_id: str, text: str) -> post_pb2.EnrichedPost:
    post = post_pb2.Post(id=post_id, tenant=tenant, channel="mastodon", text=text, language="en",
                         source="#city", author=post_pb2.Author(id=f"author-{post_id}", name="Resident"))
    post.created_at.FromDatetime(NOW - timedelta(hours=1))
    enrichment = post_pb2.Enrichment(sentiment=post_pb2.SENTIMENT_LABEL_NEGATIVE, topic="transit",
                                     embedding=embedding(text))
    return post_pb2.EnrichedPost(post=post, enrichment=enrichment)
