"""The gRPC face of the TopicService: hands requests to the domain and maps its errors to status codes."""

from __future__ import annotations

import grpc

from civic.listening.v1 import topics_pb2, topics_pb2_grpc
from services.common.grpc_server import rpc_errors
from services.search.topics.service import Topics

SERVICE_NAME = topics_pb2.DESCRIPTOR.services_by_name["TopicService"].full_name


class TopicServicer(topics_pb2_grpc.TopicServiceServicer):
    def __init__(self, topics: Topics) -> None:
        self.topics = topics

    @rpc_errors
    def PutTopic(
        self, request: topics_pb2.PutTopicRequest, context: grpc.ServicerContext
    ) -> topics_pb2.PutTopicResponse:
        return self.topics.put(request)

    @rpc_errors
    def GetTopic(
        self, request: topics_pb2.GetTopicRequest, context: grpc.ServicerContext
    ) -> topics_pb2.GetTopicResponse:
        return self.topics.get(request)

    @rpc_errors
    def ListTopics(
        self, request: topics_pb2.ListTopicsRequest, context: grpc.ServicerContext
    ) -> topics_pb2.ListTopicsResponse:
        return self.topics.list_topics(request)

    @rpc_errors
    def DeleteTopic(
        self, request: topics_pb2.DeleteTopicRequest, context: grpc.ServicerContext
    ) -> topics_pb2.DeleteTopicResponse:
        return self.topics.delete(request)

    @rpc_errors
    def CopyDefaultTopics(
        self, request: topics_pb2.CopyDefaultTopicsRequest, context: grpc.ServicerContext
    ) -> topics_pb2.CopyDefaultTopicsResponse:
        return self.topics.copy_defaults(request)

    @rpc_errors
    def MarkPost(
        self, request: topics_pb2.MarkPostRequest, context: grpc.ServicerContext
    ) -> topics_pb2.MarkPostResponse:
        return self.topics.mark(request)

    @rpc_errors
    def MarkPosts(
        self, request: topics_pb2.MarkPostsRequest, context: grpc.ServicerContext
    ) -> topics_pb2.MarkPostsResponse:
        return self.topics.mark_many(request)

    @rpc_errors
    def ListMarks(
        self, request: topics_pb2.ListMarksRequest, context: grpc.ServicerContext
    ) -> topics_pb2.ListMarksResponse:
        return self.topics.list_marks(request)

    @rpc_errors
    def GetTaggingJob(
        self, request: topics_pb2.GetTaggingJobRequest, context: grpc.ServicerContext
    ) -> topics_pb2.GetTaggingJobResponse:
        return self.topics.get_job(request)

    @rpc_errors
    def ListTaggingJobs(
        self, request: topics_pb2.ListTaggingJobsRequest, context: grpc.ServicerContext
    ) -> topics_pb2.ListTaggingJobsResponse:
        return self.topics.list_jobs(request)

    @rpc_errors
    def ReenrichPosts(
        self, request: topics_pb2.ReenrichPostsRequest, context: grpc.ServicerContext
    ) -> topics_pb2.ReenrichPostsResponse:
        return self.topics.reenrich(request)
