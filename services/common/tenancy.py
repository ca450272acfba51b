"""The tenant of a request comes from the caller's credential, never from the request body.

Servicers read `request.tenant` (and `posts[i].tenant`, `rule.tenant`, ...) as before; this module
makes sure every such field of a request, at any depth, is either the caller's tenant or is filled
with it before the servicer runs.
"""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from services.common.auth import PermissionDenied

TENANT_FIELD = "tenant"


def scope_to_tenant(message: Message, tenant: str, path: str = "") -> None:
    """Fills empty `tenant` fields of message (recursively) with tenant; PermissionDenied, naming the
    field, when one holds another tenant."""
    if _has_tenant(message):
        value = getattr(message, TENANT_FIELD)
        if not value:
            setattr(message, TENANT_FIELD, tenant)
        elif value != tenant:
            raise PermissionDenied(f"{path}{TENANT_FIELD}: the credential is for another tenant")
    for name, child in _children(message):
        scope_to_tenant(child, tenant, f"{path}{name}.")


def tenants_of(message: Message) -> set[str]:
    """Every non-empty tenant named in message, for the audit record of a service call."""
    found = {getattr(message, TENANT_FIELD)} if _has_tenant(message) else set()
    for _, child in _children(message):
        found |= tenants_of(child)
    return found - {""}


def _has_tenant(message: Message) -> bool:
    field = message.DESCRIPTOR.fields_by_name.get(TENANT_FIELD)
    return field is not None and field.type == FieldDescriptor.TYPE_STRING and not field.is_repeated


def _children(message: Message) -> Iterator[tuple[str, Message]]:
    """The set sub-messages of message (map entries excepted), named as in an error message."""
    for field, value in message.ListFields():
        kind = field.message_type
        if field.type != FieldDescriptor.TYPE_MESSAGE or kind is None or kind.GetOptions().map_entry:
            continue
        if field.is_repeated:
            for index, item in enumerate(value):
                yield f"{field.name}[{index}]", item
        else:
            yield field.name, value
