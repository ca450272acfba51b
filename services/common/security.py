"""The one server interceptor that secures every RPC of every service, so servicers stay unaware of it.

For each call (health and reflection excepted): authenticate the bearer token, check the method's
role, pin every `tenant` field of the request to the caller's tenant, apply the tenant's rate limit,
and queue an audit record of who did what and how it ended. Installed by GrpcServer when
authentication is configured (SECURITY.md).
"""

from __future__ import annotations

import collections
import logging
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.common import elasticsearch_client
from services.common.audit import AuditLog, describe
from services.common.auth import (
    Authenticator,
    PermissionDenied,
    Principal,
    Unauthenticated,
    authorize,
    is_open,
)
from services.common.ratelimit import RateLimiter
from services.common.settings import Settings
from services.common.status import status_of
from services.common.tenancy import scope_to_tenant, tenants_of

log = logging.getLogger(__name__)

MAX_AUDITED_TENANTS = 20


class _Status(collections.namedtuple("_Status", ("code", "details", "trailing_metadata")), grpc.Status):
    pass


def retry_status(message: str, wait_s: float) -> grpc.Status:
    """RESOURCE_EXHAUSTED carrying google.rpc.RetryInfo and a `retry-after` (seconds) trailer."""
    delay = duration_pb2.Duration()
    delay.FromMilliseconds(max(1, math.ceil(wait_s * 1000)))
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    rich = rpc_status.to_status(
        status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message=message, details=[detail])
    )
    return _Status(rich.code, rich.details, (*rich.trailing_metadata, ("retry-after", str(math.ceil(wait_s)))))


class Security:
    """The interceptor and what it owns (authenticator, rate limiter, audit writer)."""

    def __init__(self, settings: Settings, authenticator: Authenticator, service: str) -> None:
        self.authenticator = authenticator
        self.service = service
        self.limiter = (
            RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst) if settings.rate_limit_per_s > 0 else None
        )
        self.audit = AuditLog(settings, elasticsearch_client.connect(settings)) if settings.audit_index else None
        self.interceptor = SecurityInterceptor(self)

    @staticmethod
    def from_settings(settings: Settings, service: str) -> Security | None:
        authenticator = Authenticator.from_settings(settings)
        return Security(settings, authenticator, service) if authenticator else None

    def close(self) -> None:
        if self.audit is not None:
            self.audit.close()

    def admit(self, method: str, request: Message | None, context: grpc.ServicerContext) -> Principal:
        """The caller, once authenticated, authorized, scoped and within its rate; aborts otherwise."""
        principal: Principal | None = None
        try:
            principal = self.authenticator.authenticate(context.invocation_metadata())
            authorize(principal, method)
            if request is not None:
                self.scope(principal, request)
        except Unauthenticated as exc:
            self.record(method, principal, request, "UNAUTHENTICATED", context, 0.0)
            context.abort(status_of(exc), str(exc))
        except PermissionDenied as exc:
            self.record(method, principal, request, "PERMISSION_DENIED", context, 0.0)
            context.abort(status_of(exc), str(exc))
        assert principal is not None  # abort raised otherwise
        if self.limiter is not None and not principal.any_tenant:
            wait_s = self.limiter.take(principal.tenant)
            if wait_s > 0:
                self.record(method, principal, request, "RESOURCE_EXHAUSTED", context, 0.0)
                context.abort_with_status(
                    retry_status(f"rate limit of tenant {principal.tenant}; retry in {wait_s:.2f}s", wait_s)
                )
        return principal

    @staticmethod
    def scope(principal: Principal, request: Message) -> None:
        if not principal.any_tenant:
            scope_to_tenant(request, principal.tenant)

    def record(
        self, method: str, principal: Principal | None, request: Message | None, outcome: str,
        context: grpc.ServicerContext, duration_s: float,
    ) -> None:
        if self.audit is None:
            return
        tenants = sorted(tenants_of(request))[:MAX_AUDITED_TENANTS] if request is not None else []
        self.audit.record(
            service=self.service, method=method, outcome=outcome,
            subject=principal.subject if principal else "", credential=principal.kind if principal else "",
            tenant=principal.tenant if principal else "", tenants=tenants,
            roles=sorted(principal.roles) if principal else [], peer=context.peer(),
            duration_ms=round(duration_s * 1000, 3), details=describe(request) if request is not None else {},
        )


def _outcome(context: grpc.ServicerContext, failed: bool) -> str:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    return "UNKNOWN" if failed else "OK"


class SecurityInterceptor(grpc.ServerInterceptor):
    def __init__(self, security: Security) -> None:
        self._security = security

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        method: str = handler_call_details.method  # type: ignore[attr-defined]
        if handler is None or is_open(method):
            return handler
        return self._wrap(handler, method)

    def _wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        security = self._security
        codecs = {"request_deserializer": handler.request_deserializer,
                  "response_serializer": handler.response_serializer}

        def run(behavior: Callable[..., Any], request: Any, context: grpc.ServicerContext, streamed: bool) -> Any:
            started = time.monotonic()
            principal = security.admit(method, None if streamed else request, context)
            if streamed:
                request = _scoped_stream(principal, request, context)
            failed = True
            try:
                result = behavior(request, context)
                failed = False
                return result
            finally:
                security.record(method, principal, None if streamed else request, _outcome(context, failed),
                                context, time.monotonic() - started)

        if handler.unary_unary is not None:
            uu = handler.unary_unary
            return grpc.unary_unary_rpc_method_handler(lambda r, c: run(uu, r, c, False), **codecs)
        if handler.unary_stream is not None:
            us = handler.unary_stream
            return grpc.unary_stream_rpc_method_handler(lambda r, c: run(us, r, c, False), **codecs)
        if handler.stream_unary is not None:
            su = handler.stream_unary
            return grpc.stream_unary_rpc_method_handler(lambda r, c: run(su, r, c, True), **codecs)
        ss = handler.stream_stream
        return grpc.stream_stream_rpc_method_handler(lambda r, c: run(ss, r, c, True), **codecs)


class _Undecodable:
    """Stands for request bytes that do not parse as the method's request message."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class UndecodableRequests(grpc.ServerInterceptor):
    """Bytes that are not a valid request message get INVALID_ARGUMENT, not gRPC's INTERNAL
    ("Exception deserializing request"), so that a caller can tell bad input from a server fault."""

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        parse = handler.request_deserializer if handler is not None else None
        if handler is None or parse is None or handler.request_streaming:
            return handler

        def tolerant(data: bytes) -> Any:
            try:
                return parse(data)
            except Exception as exc:
                return _Undecodable(type(exc).__name__)

        def guarded(behavior: Callable[..., Any]) -> Callable[..., Any]:
            def run(request: Any, context: grpc.ServicerContext) -> Any:
                if isinstance(request, _Undecodable):
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                  f"request: not a valid request message ({request.reason})")
                return behavior(request, context)
            return run

        codecs = {"request_deserializer": tolerant, "response_serializer": handler.response_serializer}
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(guarded(handler.unary_unary), **codecs)
        return grpc.unary_stream_rpc_method_handler(guarded(handler.unary_stream), **codecs)


def _scoped_stream(
    principal: Principal, requests: Iterator[Message], context: grpc.ServicerContext
) -> Iterator[Message]:
    """Each request of a client stream is scoped to the caller's tenant as it arrives."""
    for request in requests:
        try:
            Security.scope(principal, request)
        except PermissionDenied as exc:
            context.abort(status_of(exc), str(exc))
        yield request
