"""Field checks that several services share, raising InvalidArgument that names the field.

Patterns are applied with fullmatch: `$` would also match before a final newline, and
"city-transit\n" would pass for a tenant that then names no index, alias or rule.
"""

from __future__ import annotations

import re

from services.common.errors import InvalidArgument

TENANT_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
CHANNEL_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}")


def require_tenant(value: str, field: str = "tenant") -> str:
    if not value:
        raise InvalidArgument(field, "must not be empty")
    if not TENANT_PATTERN.fullmatch(value):
        raise InvalidArgument(
            field, "must be 1-63 lower-case letters, digits, '-' or '_', starting with a letter or digit"
        )
    return value


def require_channel(value: str, field: str = "channel") -> str:
    if not value:
        raise InvalidArgument(field, "must not be empty")
    if not CHANNEL_PATTERN.fullmatch(value):
        raise InvalidArgument(field, "must be 1-32 lower-case letters, digits, '.', '-' or '_'")
    return value
