"""Who is calling: bearer tokens (API keys stored hashed, or JWTs signed by a configured JWKS) turned
into a Principal with a tenant and roles, and the role each RPC needs.

Free of gRPC so that the gRPC interceptor and the Ray Serve ingress (where no interceptor can be
installed) check credentials the same way. Both files are re-read when they change on disk, so keys
and signing keys rotate without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import jwt

from services.common.errors import DomainError
from services.common.settings import Settings
from services.common.validation import TENANT_PATTERN

log = logging.getLogger(__name__)

ROLES = ("ingest", "reader", "analyst", "admin", "service")
# A role also grants the roles it implies; `service` is for the services' own calls and may act for
# any tenant.
IMPLIED: dict[str, frozenset[str]] = {
    "admin": frozenset({"analyst", "reader", "ingest"}),
    "analyst": frozenset({"reader"}),
    "service": frozenset(ROLES),
}
KEY_PREFIX = "civic"
# Asymmetric algorithms only: a JWKS holds public keys, and HS*/none must never verify.
JWT_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]

_INGESTION = "/civic.listening.v1.IngestionService/"
_SEARCH = "/civic.listening.v1.SearchService/"
_ALERTING = "/civic.listening.v1.AlertingService/"
_INFERENCE = "/civic.listening.v1.InferenceService/"
_TOPICS = "/civic.listening.v1.TopicService/"

# The role each RPC needs (any role implying it will do). Every RPC of every service is listed: a
# method missing here is refused, so a new RPC cannot ship open by mistake.
METHOD_ROLES: dict[str, str] = {
    _INGESTION + "IngestPosts": "ingest",
    _INGESTION + "GetIngestionStats": "ingest",
    _INGESTION + "CreateSource": "admin",
    _INGESTION + "ListSources": "reader",
    _INGESTION + "PauseSource": "admin",
    _INGESTION + "ResumeSource": "admin",
    _INGESTION + "DeleteSource": "admin",
    _INGESTION + "GetSourceStatus": "reader",
    _INGESTION + "ListFailedPosts": "reader",
    _INGESTION + "ReplayFailedPosts": "admin",
    _INGESTION + "DeletePosts": "ingest",
    _SEARCH + "IndexPosts": "service",
    _SEARCH + "Search": "reader",
    _SEARCH + "GetPost": "reader",
    _SEARCH + "Count": "reader",
    _SEARCH + "Aggregate": "reader",
    _SEARCH + "SemanticSearch": "reader",
    _SEARCH + "VolumeOverTime": "reader",
    _SEARCH + "ReplayDeadLetters": "admin",
    _SEARCH + "RemovePosts": "service",
    _ALERTING + "EvaluatePosts": "service",
    _ALERTING + "ListAlerts": "reader",
    _ALERTING + "PutRule": "analyst",
    _ALERTING + "ListRules": "reader",
    _ALERTING + "DeleteRule": "analyst",
    _ALERTING + "AcknowledgeAlert": "analyst",
    _ALERTING + "AssignAlert": "analyst",
    _ALERTING + "ResolveAlert": "analyst",
    _ALERTING + "CreateSilence": "analyst",
    _ALERTING + "ListSilences": "reader",
    _ALERTING + "ExpireSilence": "analyst",
    _ALERTING + "WatchAlerts": "reader",
    _ALERTING + "PutWebhook": "admin",
    _ALERTING + "ListWebhooks": "admin",
    _ALERTING + "DeleteWebhook": "admin",
    _TOPICS + "PutTopic": "analyst",
    _TOPICS + "GetTopic": "reader",
    _TOPICS + "ListTopics": "reader",
    _TOPICS + "DeleteTopic": "analyst",
    _TOPICS + "CopyDefaultTopics": "analyst",
    _TOPICS + "MarkPost": "analyst",
    _TOPICS + "MarkPosts": "analyst",
    _TOPICS + "ListMarks": "reader",
    _TOPICS + "GetTaggingJob": "reader",
    _TOPICS + "ListTaggingJobs": "reader",
    _TOPICS + "ReenrichPosts": "admin",
    _INFERENCE + "Enrich": "reader",
    _INFERENCE + "Embed": "reader",
}
# Open to everyone: probes and tools must reach them without a token (reflection can be turned off).
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.v1alpha.ServerReflection/",
                 "/grpc.reflection.v1.ServerReflection/")


class Unauthenticated(DomainError):
    """No credential, or one that does not verify: the caller is unknown."""


class PermissionDenied(DomainError):
    """The caller is known but may not do this (role or tenant)."""


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. tenant is empty only for the `service` role (any tenant)."""

    subject: str
    tenant: str
    roles: frozenset[str]
    kind: str  # "api-key" or "jwt"

    @property
    def any_tenant(self) -> bool:
        return "service" in self.roles

    def granted(self) -> frozenset[str]:
        return self.roles.union(*(IMPLIED.get(role, frozenset()) for role in self.roles))


def is_open(method: str) -> bool:
    return method.startswith(OPEN_PREFIXES)


def authorize(principal: Principal, method: str) -> None:
    """PermissionDenied unless one of the principal's roles grants the method's role."""
    needed = METHOD_ROLES.get(method)
    if needed is None:
        raise PermissionDenied(f"{method} is not open to any role")
    if needed not in principal.granted():
        raise PermissionDenied(f"{method} needs the {needed} role")


def _checked_identity(tenant: Any, roles: Any, where: str) -> tuple[str, frozenset[str]]:
    """The tenant and roles of a credential, or Unauthenticated when they make no sense."""
    if not isinstance(roles, list) or not roles or not all(isinstance(r, str) and r in ROLES for r in roles):
        raise Unauthenticated(f"{where}: roles must be a non-empty list of {', '.join(ROLES)}")
    role_set = frozenset(roles)
    tenant = tenant or ""
    if not isinstance(tenant, str) or (tenant and not TENANT_PATTERN.fullmatch(tenant)):
        raise Unauthenticated(f"{where}: tenant is not a valid tenant name")
    if not tenant and "service" not in role_set:
        raise Unauthenticated(f"{where}: a tenant is required unless the role is service")
    return tenant, role_set


# --- files re-read when they change ---------------------------------------------------------------

T = TypeVar("T")


class _Reloading(Generic[T]):
    """The parsed content of a file, parsed again when its modification time or size changes. The
    first read happens at construction, so a missing or broken file stops the process at start; a
    later broken version is logged and the previous content kept."""

    def __init__(self, path: Path, parse: Callable[[bytes], T]) -> None:
        self._path, self._parse = path, parse
        self._lock = threading.Lock()
        stat = os.stat(path)
        self._stamp = (stat.st_mtime_ns, stat.st_size)
        self._value = parse(path.read_bytes())

    def get(self) -> T:
        with self._lock:
            try:
                stat = os.stat(self._path)
                stamp = (stat.st_mtime_ns, stat.st_size)
                if stamp != self._stamp:
                    self._value = self._parse(self._path.read_bytes())
                    self._stamp = stamp
            except (OSError, ValueError, KeyError, TypeError, jwt.PyJWTError) as exc:
                log.warning("keeping the previous %s: cannot read the new one: %s", self._path, exc)
            return self._value


# --- API keys ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyRecord:
    """One API key as stored: the secret only as a SHA-256 digest (the secret is 256 random bits, so a
    fast hash is as strong as a slow one and keeps every call cheap)."""

    id: str
    sha256: str
    tenant: str
    roles: tuple[str, ...]
    created_at: str
    description: str = ""


def _parse_keys(data: bytes) -> dict[str, KeyRecord]:
    document = json.loads(data or b"{}")
    records = {}
    for raw in document.get("keys", []):
        record = KeyRecord(
            id=raw["id"], sha256=raw["sha256"], tenant=raw.get("tenant", ""), roles=tuple(raw["roles"]),
            created_at=raw.get("created_at", ""), description=raw.get("description", ""),
        )
        records[record.id] = record
    return records


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_api_key(token: str) -> tuple[str, str] | None:
    """(key id, secret) of a token shaped `civic_<id>_<secret>`, else None."""
    prefix, _, rest = token.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != KEY_PREFIX or not key_id or not secret:
        return None
    return key_id, secret


def create_key(path: Path, tenant: str, roles: Sequence[str], description: str = "") -> tuple[str, KeyRecord]:
    """Adds a new key to the keys file (created with mode 0600) and returns (token, record). The token
    exists only in the return value: the file keeps its digest."""
    _checked_identity(tenant, list(roles), "key")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    record = KeyRecord(
        id=key_id, sha256=_digest(secret), tenant=tenant, roles=tuple(roles),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"), description=description,
    )
    records = list(_parse_keys(path.read_bytes()).values()) if path.exists() else []
    _write_keys(path, [*records, record])
    return f"{KEY_PREFIX}_{key_id}_{secret}", record


def revoke_key(path: Path, key_id: str) -> bool:
    """Removes a key; False when there was none with that id."""
    records = _parse_keys(path.read_bytes()) if path.exists() else {}
    if key_id not in records:
        return False
    del records[key_id]
    _write_keys(path, list(records.values()))
    return True


def list_keys(path: Path) -> list[KeyRecord]:
    return list(_parse_keys(path.read_bytes()).values()) if path.exists() else []


def _write_keys(path: Path, records: Iterable[KeyRecord]) -> None:
    document = {"keys": [
        {"id": r.id, "sha256": r.sha256, "tenant": r.tenant, "roles": list(r.roles),
         "created_at": r.created_at, "description": r.description}
        for r in records
    ]}
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(path.name + ".partial")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(document, out, indent=2)
    staged.replace(path)  # atomic: a server re-reading the file never sees half of it


# --- the authenticator --------------------------------------------------------------------------------


class Authenticator:
    """Turns the `authorization` metadata value into a Principal, or raises Unauthenticated."""

    def __init__(self, settings: Settings) -> None:
        self._keys = _Reloading(settings.auth_keys_file, _parse_keys) if settings.auth_keys_file else None
        self._jwks = (
            _Reloading(settings.auth_jwks_file, lambda data: jwt.PyJWKSet.from_json(data.decode()))
            if settings.auth_jwks_file else None
        )
        self._issuer = settings.auth_jwt_issuer or None
        self._audience = settings.auth_jwt_audience

    @staticmethod
    def from_settings(settings: Settings) -> Authenticator | None:
        """None when authentication is off (no keys file and no JWKS configured)."""
        if settings.auth_keys_file is None and settings.auth_jwks_file is None:
            return None
        return Authenticator(settings)

    def authenticate(self, metadata: Iterable[tuple[str, Any]]) -> Principal:
        header = next((str(value) for key, value in metadata if key == "authorization"), "")
        scheme, _, token = header.strip().partition(" ")
        if not header:
            raise Unauthenticated("missing authorization metadata (Bearer token)")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("authorization must be 'Bearer <token>'")
        token = token.strip()
        api_key = split_api_key(token)
        if api_key is not None:
            return self._api_key(*api_key)
        return self._jwt(token)

    def _api_key(self, key_id: str, secret: str) -> Principal:
        if self._keys is None:
            raise Unauthenticated("API keys are not accepted here")
        record = self._keys.get().get(key_id)
        # Compare against a digest even for unknown ids, so timing does not tell which ids exist.
        expected = record.sha256 if record else _digest(key_id)
        if not hmac.compare_digest(expected, _digest(secret)) or record is None:
            raise Unauthenticated("unknown or revoked API key")
        tenant, roles = _checked_identity(record.tenant, list(record.roles), f"key {key_id}")
        return Principal(subject=f"key:{key_id}", tenant=tenant, roles=roles, kind="api-key")

    def _jwt(self, token: str) -> Principal:
        if self._jwks is None:
            raise Unauthenticated("token is neither an API key nor accepted as a JWT here")
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            keys = self._jwks.get()
            key = keys[kid] if kid else (keys.keys[0] if len(keys.keys) == 1 else None)
            if key is None:
                raise Unauthenticated("JWT has no kid and the JWKS has several keys")
            claims = jwt.decode(
                token, key=key.key, algorithms=JWT_ALGORITHMS, audience=self._audience, issuer=self._issuer,
                options={"require": ["exp", "sub", "aud"]}, leeway=30,
            )
        except KeyError:
            raise Unauthenticated("JWT signed by a key the JWKS does not hold") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid JWT: {exc}") from None
        tenant, roles = _checked_identity(claims.get("tenant"), claims.get("roles"), "JWT")
        return Principal(subject=f"jwt:{claims['sub']}", tenant=tenant, roles=roles, kind="jwt")


def read_token(settings: Settings) -> str:
    """The bearer token this process sends: CIVIC_AUTH_TOKEN, else the content of the token file."""
    if settings.auth_token:
        return settings.auth_token.strip()
    if settings.auth_token_file is not None:
        return settings.auth_token_file.read_text().strip()
    return ""
