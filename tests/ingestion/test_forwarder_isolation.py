"""One bad post must not stop everyone's: a downstream that always fails on one post, through real
servers (tests/fixtures/pipeline.py). The posts behind it are indexed within seconds, the bad one is a
dead letter with its reason until it is replayed; an outage, however long, dead-letters nothing and
shows as a stalled forwarder in the figures and the health service."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
import pytest

from civic.listening.v1 import ingestion_pb2, search_pb2
from tests.fixtures.pipeline import POISON, Pipeline, make_post

pytestmark = pytest.mark.slow

CITY, OTHER = "isolation-city", "isolation-other"


def poison_first(pipeline: Pipeline, good: int, others: int) -> float:
    """Ingests the bad post alone (the head of the queue), then the good ones; returns when."""
    assert pipeline.ingest([make_post(CITY, "bad", f"{POISON} The bus shelter on Elm Street is smashed")]).accepted == 1
    posts = [make_post(CITY, f"good-{n}", f"Bus {n} was late again on Elm Street") for n in range(good)]
    posts += [make_post(OTHER, f"other-{n}", f"The library on Oak Road closes early, day {n}") for n in range(others)]
    assert pipeline.ingest(posts).accepted == good + others
    return time.monotonic()


@pytest.mark.parametrize("failure", ["internal", "deadline"])
def test_a_post_that_always_fails_becomes_a_dead_letter_and_the_others_flow(
    make_pipeline: Callable[..., Pipeline], failure: str
) -> None:
    pipeline = make_pipeline(rpc_timeout_s=2.0) if failure == "deadline" else make_pipeline()
    if failure == "deadline":
        pipeline.inference.hang_s = 2.5  # always longer than the forwarder's deadline
    else:
        pipeline.inference.poison = grpc.StatusCode.INTERNAL
    started = poison_first(pipeline, good=30, others=10)
    stats = pipeline.settled()
    settled_s = time.monotonic() - started
    assert (stats.accepted, stats.forwarded, stats.failed, stats.pending) == (41, 40, 1, 0), stats
    assert (pipeline.count(CITY), pipeline.count(OTHER)) == (30, 10)
    assert settled_s < 90, f"the posts behind the bad one took {settled_s:.0f}s"
    print(f"\n{failure}: 40 good posts behind a bad one settled in {settled_s:.1f}s")

    failed = pipeline.ingestion.ListFailedPosts(ingestion_pb2.ListFailedPostsRequest(tenant=CITY), timeout=30)
    assert (failed.total, [p.post_id for p in failed.posts]) == (1, ["bad"])
    expected = "Enrich: INTERNAL: inference failed" if failure == "internal" else "Enrich: DEADLINE_EXCEEDED"
    assert failed.posts[0].reason.startswith(expected), failed.posts[0].reason
    assert failed.posts[0].reason.endswith("(failed 3 times alone while other posts went through)")
    assert failed.posts[0].HasField("failed_at") and failed.posts[0].channel == "webhook"
    other = pipeline.ingestion.ListFailedPosts(ingestion_pb2.ListFailedPostsRequest(tenant=OTHER), timeout=30)
    assert other.total == 0
    assert pipeline.stats(CITY).failed == 1 and pipeline.stats(OTHER).failed == 0
    # The batch failed past the bound (stalled), then flowed again once the bad post was set aside.
    assert pipeline.stalls == [True, False]
    assert pipeline.forwarder_serving() and not stats.HasField("stalled_since") and stats.last_error == ""

    # Fixed downstream: the dead letter goes back in the queue and through.
    pipeline.inference.poison, pipeline.inference.hang_s = None, 0.0
    replayed = pipeline.ingestion.ReplayFailedPosts(ingestion_pb2.ReplayFailedPostsRequest(tenant=CITY), timeout=30)
    assert (replayed.replayed, replayed.remaining) == (1, 0)
    stats = pipeline.settled()
    assert (stats.forwarded, stats.failed, stats.pending) == (41, 0, 0)
    found = pipeline.search.GetPost(search_pb2.GetPostRequest(tenant=CITY, channel="webhook", id="bad"), timeout=30)
    assert POISON in found.post.post.text
    assert pipeline.ingestion.ListFailedPosts(ingestion_pb2.ListFailedPostsRequest(tenant=CITY), timeout=30).total == 0


def test_a_bad_post_that_fails_again_after_a_replay_is_a_dead_letter_again(
    make_pipeline: Callable[..., Pipeline]
) -> None:
    pipeline = make_pipeline()
    pipeline.inference.poison = grpc.StatusCode.DATA_LOSS
    poison_first(pipeline, good=3, others=0)
    assert pipeline.settled().failed == 1
    replayed = pipeline.ingestion.ReplayFailedPosts(
        ingestion_pb2.ReplayFailedPostsRequest(tenant=CITY, post_ids=["bad"]), timeout=30)
    assert (replayed.replayed, replayed.remaining) == (1, 0)
    assert pipeline.stats().pending == 1
    # Nothing behind it now: it waits (the forwarder cannot tell it from an outage) until a post
    # arrives behind it and goes through.
    time.sleep(3)
    assert (pipeline.stats().pending, pipeline.stats().failed) == (1, 0)
    assert pipeline.ingest([make_post(CITY, "later", "Street lights out on Birch Lane")]).accepted == 1
    stats = pipeline.settled()
    assert (stats.forwarded, stats.failed) == (4, 1)
    (letter,) = pipeline.ingestion.ListFailedPosts(ingestion_pb2.ListFailedPostsRequest(tenant=CITY), timeout=30).posts
    assert letter.post_id == "bad" and letter.reason.startswith("Enrich: DATA_LOSS: inference failed")


def test_an_outage_dead_letters_nothing_and_shows_as_a_stall(make_pipeline: Callable[..., Pipeline]) -> None:
    pipeline = make_pipeline()
    pipeline.inference.outage = True
    posts = [make_post(CITY, f"p{n}", f"Water main burst on King Street, report {n}") for n in range(12)]
    assert pipeline.ingest(posts).accepted == 12
    stalled = pipeline.wait(lambda s: s.HasField("stalled_since"), limit_s=60)
    assert stalled.last_error.startswith("Enrich: UNAVAILABLE: inference is restarting")
    assert not pipeline.forwarder_serving()
    assert pipeline.stats(CITY).HasField("stalled_since"), "every tenant sees that the forwarder is stalled"
    # Past the bound and a whole round of single tries (3 batch tries, up to 2 x 3 rounds of 12):
    deadline = time.monotonic() + 120
    while pipeline.inference.calls < 3 + 6 * 12 + 3:
        assert time.monotonic() < deadline, pipeline.inference.calls
        time.sleep(0.2)
    stats = pipeline.stats()
    assert (stats.pending, stats.forwarded, stats.failed) == (12, 0, 0), stats
    pipeline.inference.outage = False
    stats = pipeline.settled()
    assert (stats.forwarded, stats.failed) == (12, 0)
    assert pipeline.count(CITY) == 12
    assert not pipeline.stats().HasField("stalled_since") and pipeline.forwarder_serving()
    assert pipeline.stalls == [True, False]


def test_a_batch_of_bad_posts_does_not_hold_up_the_posts_behind_it(make_pipeline: Callable[..., Pipeline]) -> None:
    """A whole batch (16 posts) of bad posts: none goes through, so a post from behind the batch is
    tried; it goes through, which shows the bad posts to be the cause."""
    pipeline = make_pipeline()
    pipeline.inference.poison = grpc.StatusCode.UNKNOWN
    bad = [make_post(CITY, f"bad-{n}", f"{POISON} Noise complaint {n} on Pine Street") for n in range(16)]
    assert pipeline.ingest(bad).accepted == 16
    assert pipeline.ingest([make_post(OTHER, "behind", "The pool on Ash Road reopened, thank you")]).accepted == 1
    stats = pipeline.settled()
    assert (stats.forwarded, stats.failed) == (1, 16)
    assert pipeline.count(OTHER) == 1 and pipeline.count(CITY) == 0
    assert pipeline.ingestion.ListFailedPosts(ingestion_pb2.ListFailedPostsRequest(tenant=CITY), timeout=30).total == 16


def test_dead_letter_requests_are_checked(make_pipeline: Callable[..., Pipeline]) -> None:
    pipeline = make_pipeline()
    for call, request, field in [
        (pipeline.ingestion.ListFailedPosts, ingestion_pb2.ListFailedPostsRequest(), "tenant"),
        (pipeline.ingestion.ListFailedPosts, ingestion_pb2.ListFailedPostsRequest(tenant=CITY, page_size=101),
         "page_size"),
        (pipeline.ingestion.ListFailedPosts, ingestion_pb2.ListFailedPostsRequest(
            tenant=CITY, post_ids=[str(n) for n in range(1001)]), "post_ids"),
        (pipeline.ingestion.ReplayFailedPosts, ingestion_pb2.ReplayFailedPostsRequest(tenant=f"{CITY}\n"), "tenant"),
        (pipeline.ingestion.ReplayFailedPosts, ingestion_pb2.ReplayFailedPostsRequest(tenant=CITY, post_ids=[""]),
         "post_ids"),
    ]:
        with pytest.raises(grpc.RpcError) as refused:
            call(request, timeout=30)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
        assert refused.value.details().startswith(f"{field}:")  # type: ignore[attr-defined]
