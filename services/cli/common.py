"""What every `civic` command shares: the consoles, one-line errors and client stubs."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
import typer
from rich.console import Console

from services.common.errors import DomainError
from services.common.grpc_server import channel
from services.common.settings import get_settings

console = Console()
err = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])
S = TypeVar("S")


def fail(message: str) -> typer.Exit:
    err.print(f"[red]civic:[/red] {message}", highlight=False, soft_wrap=True)  # one line, however long
    return typer.Exit(code=1)


def friendly_errors(command: F) -> F:
    """One clear line and a non-zero exit instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except grpc.RpcError as exc:
            code = exc.code()  # type: ignore[attr-defined]
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise fail("the stack is not reachable; start it with `civic up`") from None
            if code == grpc.StatusCode.UNAUTHENTICATED:
                raise fail(f"{exc.details()}; set CIVIC_AUTH_TOKEN (or CIVIC_AUTH_TOKEN_FILE) to an "  # type: ignore[attr-defined]
                           "API key or JWT") from None
            raise fail(f"{code.name}: {exc.details()}") from None  # type: ignore[attr-defined]
        except typer.Exit:  # a RuntimeError too: the command has said why already
            raise
        except (OSError, ValueError, RuntimeError, TimeoutError, DomainError) as exc:
            raise fail(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def stub(factory: Callable[[grpc.Channel], S], target: str) -> S:
    """A client of the service at target, with the stack's message limits, TLS settings and the
    bearer token of CIVIC_AUTH_TOKEN / CIVIC_AUTH_TOKEN_FILE (all through the one client helper)."""
    return factory(channel(target, get_settings()))
