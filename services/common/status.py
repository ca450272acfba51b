"""The one mapping from domain errors to gRPC status codes, for every server (the grpcio servers
through grpc_server.rpc_errors and the security interceptor, the Ray Serve ingress through its
context)."""

from __future__ import annotations

import grpc

from services.common.auth import PermissionDenied, Unauthenticated
from services.common.errors import DomainError, InvalidArgument, NotFound, ResourceExhausted, Unavailable

STATUS_OF: tuple[tuple[type[DomainError], grpc.StatusCode], ...] = (
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
)
MAPPED = tuple(kind for kind, _ in STATUS_OF)


def status_of(error: DomainError) -> grpc.StatusCode:
    """The status a caller gets for this error; UNKNOWN for a domain error without its own code."""
    return next((code for kind, code in STATUS_OF if isinstance(error, kind)), grpc.StatusCode.UNKNOWN)
