"""The Elasticsearch connection and the one place where its failures become domain errors."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from elasticsearch import ApiError, Elasticsearch, TransportError

from services.common import elasticsearch_client
from services.common.errors import InvalidArgument, ResourceExhausted, Unavailable
from services.common.settings import Settings


def connect(settings: Settings) -> Elasticsearch:
    """The search service's client: bulk writes of a full batch get time and retries to succeed."""
    return elasticsearch_client.connect(settings, request_timeout=30, max_retries=3)


@contextlib.contextmanager
def elasticsearch_errors(query_field: str = "query") -> Iterator[None]:
    """Cluster down or overloaded -> Unavailable / ResourceExhausted; a query the cluster cannot
    parse -> InvalidArgument naming the query field. Anything else is a bug and stays as it is."""
    try:
        yield
    except TransportError as exc:
        raise Unavailable(f"elasticsearch unreachable: {exc}") from exc
    except ApiError as exc:
        if exc.meta.status == 429:
            raise ResourceExhausted("elasticsearch is overloaded, retry later") from exc
        if exc.meta.status >= 500:
            raise Unavailable(f"elasticsearch error {exc.meta.status}: {exc.error}") from exc
        if exc.meta.status == 400 and exc.error in {"search_phase_execution_exception", "parse_exception",
                                                     "query_shard_exception", "x_content_parse_exception"}:
            raise InvalidArgument(query_field, f"not understood: {_root_cause(exc)}") from exc
        raise


def _root_cause(exc: ApiError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    causes = body.get("error", {}).get("root_cause") or [{}]
    return str(causes[0].get("reason") or exc.error)
