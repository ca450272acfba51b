"""Channels that push: an HTTP POST of JSON, signed with HMAC-SHA256 over the raw body.

The sender computes `sha256=<hex of HMAC-SHA256(secret, body)>` and sends it in the
`X-Signature-256` header (the scheme GitHub and many SaaS webhooks use). The body is one post or
`{"posts": [...]}`, each in the protobuf JSON form of civic.listening.v1.Post (camelCase or
snake_case names). The tenant always comes from the source, never from the body, so a leaked
secret cannot write into another agency's data.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from google.protobuf.json_format import ParseDict, ParseError

from civic.listening.v1 import post_pb2
from services.ingestion.connectors.base import Fetch, SourceConfig

SIGNATURE_HEADER = "X-Signature-256"


class BadSignature(Exception):
    """The signature is missing or does not match the source's secret."""


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str | None) -> None:
    if not secret:
        raise BadSignature("the source has no signing secret")
    if not signature or not hmac.compare_digest(sign(secret, body), signature.strip()):
        raise BadSignature(f"{SIGNATURE_HEADER} does not match the body")


def parse(source: SourceConfig, body: bytes) -> Fetch:
    """Posts of a verified body; entries that are not valid Post JSON are skipped with the reason."""
    try:
        document: Any = json.loads(body)
    except ValueError as exc:
        raise ValueError(f"body: not JSON ({exc})") from exc
    entries = document.get("posts") if isinstance(document, dict) and "posts" in document else [document]
    if not isinstance(entries, list):
        raise ValueError("body.posts: must be a list")
    fetch = Fetch([], {})
    for i, entry in enumerate(entries):
        try:
            if not isinstance(entry, dict):
                raise ParseError("not an object")
            post = ParseDict(entry, post_pb2.Post(), ignore_unknown_fields=True)
        except ParseError as exc:
            fetch.skipped.append(f"posts[{i}]: {exc}")
            continue
        post.tenant = source.tenant
        post.channel = post.channel or "webhook"
        post.source = post.source or source.name
        fetch.posts.append(post)
    return fetch
