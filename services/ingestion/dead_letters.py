"""ListFailedPosts and ReplayFailedPosts: the spool's dead letters, looked at and sent again.

A dead letter is an accepted post the forwarder gave up on (forwarder.py, isolation.py). It stays in
the spool with the reason, so nothing accepted is lost, until an operator puts it back in the queue
once the cause is fixed; a post that fails again simply becomes a dead letter again.
"""

from __future__ import annotations

from collections.abc import Sequence

from civic.listening.v1 import ingestion_pb2
from services.common.errors import InvalidArgument
from services.common.validation import require_tenant
from services.ingestion.spool import FailedPost, Spool

MAX_POST_IDS = 1000
MAX_REPLAY = 5000
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def _post_ids(post_ids: Sequence[str]) -> list[str]:
    if len(post_ids) > MAX_POST_IDS:
        raise InvalidArgument("post_ids", f"at most {MAX_POST_IDS:,}, got {len(post_ids):,}")
    if any(not post_id for post_id in post_ids):
        raise InvalidArgument("post_ids", "must not contain an empty id")
    return list(post_ids)


def _page_size(requested: int) -> int:
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= requested <= MAX_PAGE_SIZE:
        raise InvalidArgument("page_size", f"must be between 1 and {MAX_PAGE_SIZE} (0 means {DEFAULT_PAGE_SIZE})")
    return requested


def _message(post: FailedPost) -> ingestion_pb2.FailedPost:
    found = ingestion_pb2.FailedPost(channel=post.channel, post_id=post.post_id, reason=post.reason)
    found.failed_at.FromNanoseconds(int(post.failed_at * 1e9))
    return found


def list_failed(spool: Spool, request: ingestion_pb2.ListFailedPostsRequest) -> ingestion_pb2.ListFailedPostsResponse:
    tenant = require_tenant(request.tenant)
    total, posts = spool.failed_posts(tenant, _post_ids(request.post_ids), _page_size(request.page_size))
    return ingestion_pb2.ListFailedPostsResponse(total=total, posts=[_message(post) for post in posts])


def replay_failed(
    spool: Spool, request: ingestion_pb2.ReplayFailedPostsRequest
) -> ingestion_pb2.ReplayFailedPostsResponse:
    tenant, post_ids = require_tenant(request.tenant), _post_ids(request.post_ids)
    replayed = spool.requeue(tenant, post_ids, MAX_REPLAY)
    remaining, _ = spool.failed_posts(tenant, post_ids, 0)
    return ingestion_pb2.ReplayFailedPostsResponse(replayed=replayed, remaining=remaining)
