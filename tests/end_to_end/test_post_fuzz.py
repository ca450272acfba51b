"""Property: a post within the limits documented in post.proto is accepted, enriched, indexed and
evaluated without an error, whatever it holds; through the real servers (tests/fixtures/pipeline.py).

Each example is a batch of posts for a tenant of its own with one rule that counts every post, so
that the example's newest week must come back as an alert holding each of its posts. Examples are
few (POST_FUZZ_EXAMPLES, 15 by default) so that the test runs in well under a minute once the stack
is up; raise the number for a deeper search.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from civic.listening.v1 import alerting_pb2, ingestion_pb2, post_pb2, search_pb2
from services.common.post_validation import EARLIEST_POST, MAX_CHARS, MAX_COUNT, MAX_TEXT_CHARS
from services.common.validation import CHANNEL_PATTERN
from services.ingestion.normalize import visible
from tests.fixtures.pipeline import Pipeline

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("POST_FUZZ_EXAMPLES", "15"))
WEEK = 604_800
_tenants = itertools.count()


def at_limit(limit: int) -> st.SearchStrategy[str]:
    """Texts of exactly `limit` characters (Hypothesis draws no text that long, so a short one is repeated)."""
    return st.text(min_size=1, max_size=40).map(lambda seed: (seed * (limit // len(seed) + 1))[:limit])


def bounded(limit: int) -> st.SearchStrategy[str]:
    """Any text up to the limit, the limit itself included."""
    return st.one_of(st.text(max_size=min(limit, 40)), at_limit(limit))


# From the first accepted day to just under the day of skew ingestion allows ahead of now.
moments = st.datetimes(min_value=EARLIEST_POST.replace(tzinfo=None),
                       max_value=(datetime.now(UTC) + timedelta(hours=23)).replace(tzinfo=None))
counts = st.integers(min_value=0, max_value=MAX_COUNT)
texts = st.one_of(st.text(min_size=1, max_size=300), at_limit(MAX_TEXT_CHARS))


@st.composite
def posts(draw: st.DrawFn, number: int) -> post_pb2.Post:
    post = post_pb2.Post(
        id=f"{number}-{draw(bounded(MAX_CHARS['id'] - 4))}"[:MAX_CHARS["id"]],
        channel=draw(st.from_regex(CHANNEL_PATTERN, fullmatch=True)),
        source=draw(bounded(MAX_CHARS["source"])),
        text=draw(texts.filter(visible)),
        language=draw(st.one_of(st.just(""), st.sampled_from(["en", "fr-CA", "es_MX", "ZH-hant-TW"]),
                                bounded(MAX_CHARS["language"]))),
        url=draw(bounded(MAX_CHARS["url"])),
        near_duplicate=draw(st.booleans()),
        display_text=draw(st.text(max_size=50)),
        language_confidence=draw(st.floats(min_value=0, max_value=1, width=32)),
    )
    post.author.id, post.author.name = draw(bounded(MAX_CHARS["author.id"])), draw(bounded(MAX_CHARS["author.name"]))
    post.author.follower_count = draw(counts)
    post.engagement.likes, post.engagement.shares, post.engagement.replies = draw(counts), draw(counts), draw(counts)
    post.created_at.FromDatetime(draw(moments).replace(tzinfo=UTC))
    post.created_at.nanos = draw(st.integers(min_value=0, max_value=999_999_999))
    if draw(st.booleans()):
        post.geo.lat = draw(st.floats(min_value=-90, max_value=90))
        post.geo.lon = draw(st.floats(min_value=-180, max_value=180))
    return post


batches = st.integers(min_value=1, max_value=4).flatmap(lambda n: st.tuples(*(posts(i) for i in range(n))))


@pytest.fixture
def pipeline(make_pipeline: Callable[..., Pipeline]) -> Pipeline:
    """One pipeline for every example of the test (each example has a tenant of its own)."""
    return make_pipeline(forward_batch_size=64)


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
                                 HealthCheck.function_scoped_fixture])
@given(batch=batches)
def test_every_post_within_the_limits_is_indexed_and_evaluated(
    pipeline: Pipeline, batch: tuple[post_pb2.Post, ...]
) -> None:
    tenant = f"post-fuzz-{next(_tenants)}"
    for post in batch:
        post.tenant = tenant
    pipeline.alerting.PutRule(alerting_pb2.PutRuleRequest(rule=alerting_pb2.Rule(
        id="every-post", tenant=tenant, kind=alerting_pb2.RULE_KIND_QUERY_MATCH, threshold=1, window_seconds=WEEK,
    )), timeout=30)

    reply = pipeline.ingest(list(batch))
    assert [(r.outcome, r.reason) for r in reply.results] == [(ingestion_pb2.POST_OUTCOME_ACCEPTED, "")] * len(batch)
    stats = pipeline.wait(lambda s: s.pending == 0, limit_s=120, tenant=tenant)
    assert (stats.forwarded, stats.failed) == (len(batch), 0), stats

    for post in batch:
        found = pipeline.search.GetPost(search_pb2.GetPostRequest(tenant=tenant, channel=post.channel, id=post.id),
                                        timeout=30).post.post
        assert (found.source, found.url, found.author, found.engagement) == (
            post.source, post.url, post.author, post.engagement)
        assert found.created_at == post.created_at
        assert found.HasField("geo") == post.HasField("geo") and found.geo == post.geo

    alerts = pipeline.alerting.ListAlerts(alerting_pb2.ListAlertsRequest(tenant=tenant, limit=500), timeout=30).alerts
    newest = max(post.created_at.seconds for post in batch) // WEEK * WEEK
    in_newest_week = Counter(post.created_at.seconds // WEEK * WEEK for post in batch)[newest]
    assert [a.post_count for a in alerts if a.window_start.seconds == newest] == [in_newest_week]
