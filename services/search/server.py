"""The gRPC face of search: hands requests to the domain and maps its errors to status codes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from civic.listening.v1 import search_pb2, search_pb2_grpc, topics_pb2_grpc
from services.common.grpc_server import GrpcServer, rpc_errors
from services.common.settings import Settings
from services.search.indexing import Indexer
from services.search.removal import Removal
from services.search.replay import replay_dead_letters
from services.search.service import Searcher
from services.search.topics.service import Topics
from services.search.topics.servicer import SERVICE_NAME as TOPICS_SERVICE_NAME
from services.search.topics.servicer import TopicServicer
from services.search.topics.store import TopicStore

SERVICE_NAME = search_pb2.DESCRIPTOR.services_by_name["SearchService"].full_name


class SearchServicer(search_pb2_grpc.SearchServiceServicer):
    def __init__(self, indexer: Indexer, searcher: Searcher, removal: Removal) -> None:
        self.indexer = indexer
        self.searcher = searcher
        self.removal = removal

    @rpc_errors
    def IndexPosts(
        self, request: search_pb2.IndexPostsRequest, context: grpc.ServicerContext
    ) -> search_pb2.IndexPostsResponse:
        outcome = self.indexer.index(request.posts)
        return search_pb2.IndexPostsResponse(
            indexed=outcome.indexed, dead_lettered=outcome.dead_lettered,
            errors=[search_pb2.IndexError(id=post_id, reason=reason) for post_id, reason in outcome.errors],
            tagged=outcome.tagged,
        )

    @rpc_errors
    def Search(self, request: search_pb2.SearchRequest, context: grpc.ServicerContext) -> search_pb2.SearchResponse:
        return self.searcher.search(request)

    @rpc_errors
    def GetPost(self, request: search_pb2.GetPostRequest, context: grpc.ServicerContext) -> search_pb2.GetPostResponse:
        return self.searcher.get_post(request)

    @rpc_errors
    def Count(self, request: search_pb2.CountRequest, context: grpc.ServicerContext) -> search_pb2.CountResponse:
        return self.searcher.count(request)

    @rpc_errors
    def Aggregate(
        self, request: search_pb2.AggregateRequest, context: grpc.ServicerContext
    ) -> search_pb2.AggregateResponse:
        return self.searcher.aggregate(request)

    @rpc_errors
    def SemanticSearch(
        self, request: search_pb2.SemanticSearchRequest, context: grpc.ServicerContext
    ) -> search_pb2.SemanticSearchResponse:
        return self.searcher.semantic_search(request)

    @rpc_errors
    def VolumeOverTime(
        self, request: search_pb2.VolumeOverTimeRequest, context: grpc.ServicerContext
    ) -> search_pb2.VolumeOverTimeResponse:
        return self.searcher.volume_over_time(request)

    @rpc_errors
    def ReplayDeadLetters(
        self, request: search_pb2.ReplayDeadLettersRequest, context: grpc.ServicerContext
    ) -> search_pb2.ReplayDeadLettersResponse:
        return replay_dead_letters(self.indexer, request)

    @rpc_errors
    def RemovePosts(
        self, request: search_pb2.RemovePostsRequest, context: grpc.ServicerContext
    ) -> search_pb2.RemovePostsResponse:
        return self.removal.remove(request)


def build_server(
    settings: Settings, indexer: Indexer, searcher: Searcher, port: int | None = None, topics: Topics | None = None
) -> GrpcServer:
    """An unstarted server over the search domain (and the TopicService, given topics); port 0 picks a free one."""
    marks = TopicStore(indexer.es, settings.topics_index_prefix).names["marks"]
    removal = Removal(indexer.es, indexer.prefix, indexer.writer.deadletter_prefix, marks)
    services: list[tuple[Callable[[Any, grpc.Server], None], Any, str]] = [
        (search_pb2_grpc.add_SearchServiceServicer_to_server, SearchServicer(indexer, searcher, removal),
         SERVICE_NAME)]
    if topics is not None:
        services.append((topics_pb2_grpc.add_TopicServiceServicer_to_server, TopicServicer(topics),
                         TOPICS_SERVICE_NAME))
    return GrpcServer(settings, settings.search_port if port is None else port, services)
