"""A caller's deadline follows its call downstream.

When a server handles a call with a deadline and, while doing so, calls another service through
`channel()` (search embedding a query through inference, say), that inner call gets at most the
time the caller has left instead of the full CIVIC_RPC_TIMEOUT_S: work nobody waits for any more
is not started or is cut short.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import grpc

# A deadline further away than this is no deadline (gRPC reports "none" as a very large remainder).
NO_DEADLINE_S = 10 * 365 * 24 * 3600.0
# An inner call started after the caller's deadline still gets this long to fail cleanly.
MIN_TIMEOUT_S = 0.001

_deadline: ContextVar[float | None] = ContextVar("civic_call_deadline", default=None)


class ServerDeadlines(grpc.ServerInterceptor):
    """Remembers, for the thread handling a unary-response call, when its caller stops waiting."""

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        behavior = handler.unary_unary

        def run(request: Any, context: grpc.ServicerContext) -> Any:
            remaining = context.time_remaining()
            deadline = time.monotonic() + remaining if remaining is not None and remaining < NO_DEADLINE_S else None
            token = _deadline.set(deadline)
            try:
                return behavior(request, context)
            finally:
                _deadline.reset(token)

        return grpc.unary_unary_rpc_method_handler(
            run, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
        )


class ClientDeadlines(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Shortens the timeout of a call made while serving one to what that caller has left."""

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        deadline = _deadline.get()
        if deadline is None:
            return details
        remaining = max(MIN_TIMEOUT_S, deadline - time.monotonic())
        if details.timeout is not None and details.timeout <= remaining:
            return details
        return details._replace(timeout=remaining)  # type: ignore[attr-defined, no-any-return]

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)
