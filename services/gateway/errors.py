"""gRPC outcomes as HTTP statuses and sentences a viewer can act on.

The services' own messages name the field and why (INVALID_ARGUMENT, NOT_FOUND), so they are shown
as they are; failures of the stack itself get a sentence saying which service and what to do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc


class UpstreamFailure(Exception):
    """A service answered with an error status; status and message are what the viewer gets."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def describe(service: str, code: grpc.StatusCode, details: str) -> tuple[int, str]:
    """The HTTP status and the sentence for a service's error, ending with a full stop."""
    status, sentence = _describe(service, code, (details or "").strip().rstrip("."))
    return status, f"{sentence}."


def _describe(service: str, code: grpc.StatusCode, details: str) -> tuple[int, str]:
    match code:
        case grpc.StatusCode.INVALID_ARGUMENT | grpc.StatusCode.OUT_OF_RANGE:
            return 400, details or f"The {service} service did not accept the request"
        case grpc.StatusCode.NOT_FOUND:
            return 404, details or "Not found"
        case grpc.StatusCode.ALREADY_EXISTS | grpc.StatusCode.FAILED_PRECONDITION | grpc.StatusCode.ABORTED:
            return 409, details or f"The {service} service refused the change in its current state"
        case grpc.StatusCode.UNAUTHENTICATED:
            return 401, f"Your access token was not accepted ({details or 'no reason given'}); sign in again"
        case grpc.StatusCode.PERMISSION_DENIED:
            return 403, f"You are not allowed to do this ({details or 'no reason given'})"
        case grpc.StatusCode.RESOURCE_EXHAUSTED:
            return 429, f"The {service} service is busy ({details or 'at capacity'}); try again in a few seconds"
        case grpc.StatusCode.UNAVAILABLE:
            return 503, (f"The {service} service cannot be reached right now; "
                         "it may be starting or stopped. Try again in a moment")
        case grpc.StatusCode.DEADLINE_EXCEEDED:
            return 504, f"The {service} service took too long to answer; try a shorter period or a narrower query"
        case grpc.StatusCode.UNIMPLEMENTED:
            return 501, f"The {service} service does not offer this"
        case _:
            return 502, f"The {service} service failed ({code.name.lower()}): {details or 'no details'}"


@asynccontextmanager
async def calling(service: str) -> AsyncIterator[None]:
    """Turns a gRPC error of the named service into an UpstreamFailure."""
    try:
        yield
    except grpc.aio.AioRpcError as exc:
        status, message = describe(service, exc.code(), exc.details() or "")
        raise UpstreamFailure(status, message, exc.code().name) from None
