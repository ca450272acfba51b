"""Domain errors, free of gRPC, that the servicers map onto status codes in one place."""

from __future__ import annotations


class DomainError(Exception):
    """Base of the errors a caller can act on; anything else is a bug."""


class InvalidArgument(DomainError):
    """A request field is wrong; the message names the field and why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotFound(DomainError):
    """The addressed object does not exist (for this tenant)."""


class ResourceExhausted(DomainError):
    """The service is at capacity; the caller should retry later, after retry_after_s when given (it
    reaches gRPC callers as google.rpc.RetryInfo and a `retry-after` trailer)."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unavailable(DomainError):
    """A dependency (Elasticsearch, another service) cannot be reached right now."""
