"""Property-based fuzzing of every RPC of ingestion, search and alerting against running servers with
authentication on: requests shaped by the contract (with hostile strings, numbers and enums) and
undecodable bytes. Only documented status codes come back (never UNKNOWN or INTERNAL), the servers
stay SERVING, and tenant A's credential never gets tenant B's data back.

Examples per RPC are few so that the suite stays fast; FUZZ_EXAMPLES=200 runs a deeper search."""

from __future__ import annotations

import os
import uuid
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from civic.listening.v1 import alerting_pb2, ingestion_pb2, search_pb2
from services.common.auth import METHOD_ROLES
from services.common.tenancy import tenants_of
from services.devstack.launch import is_healthy
from tests.fixtures.security import SecuredStack
from tests.security.helpers import enriched

pytestmark = pytest.mark.slow

SERVICES = {"ingestion": ingestion_pb2, "search": search_pb2, "alerting": alerting_pb2}
METHODS = [
    (name, method)
    for name, module in SERVICES.items()
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
]
# What a caller may be told: the contract's codes for bad input, missing objects, other tenants and load.
DOCUMENTED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
              grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE}
SECRET_WORD = "quokkaleak"
HOSTILE = ["", " ", "*", "city-b", "../../etc/passwd", '"unclosed', "(((", "a AND OR NOT", "text:*",
           "/.*/", "*x*", "?", "\\", "\x00", "ünïcödé 🚌", "${jndi:ldap://x}", "'; DROP TABLE rules;--",
           '{"script": "1"}', "x" * 1100, "y" * 21_000]
INT_EDGES = {FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1), FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
             FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1), FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1)}
MAX_DEPTH = 3
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))


def scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return st.one_of(st.sampled_from(HOSTILE), st.text(max_size=30))
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=30)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        return st.one_of(st.sampled_from([v.number for v in field.enum_type.values]), st.integers(-3, 40))
    if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return st.floats(width=32 if kind == FieldDescriptor.TYPE_FLOAT else 64)
    low, high = INT_EDGES.get(kind, (-(2**31), 2**31 - 1))
    return st.one_of(st.sampled_from([0, 1, -1, low, high]), st.integers(low, high))


def message(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Messages of the descriptor's type with any subset of fields set to hostile or random values."""
    cls = message_factory.GetMessageClass(descriptor)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        sub = field.message_type
        if sub is not None and sub.GetOptions().map_entry:
            key, value = sub.fields_by_name["key"], sub.fields_by_name["value"]
            fields[field.name] = st.dictionaries(scalar(key), scalar(value), max_size=3)
            continue
        if sub is not None:
            if depth >= MAX_DEPTH:
                continue
            one: st.SearchStrategy[Any] = message(sub, depth + 1)
        else:
            one = scalar(field)
        fields[field.name] = st.lists(one, max_size=3) if field.is_repeated else one
    return st.fixed_dictionaries({}, optional=fields).map(lambda values: cls(**values))


def pin_tenants(request: Message, tenant: str) -> None:
    """Sets every tenant field to tenant (service calls: no index is made for a random name)."""
    if "tenant" in request.DESCRIPTOR.fields_by_name:
        request.tenant = tenant  # type: ignore[attr-defined]
    for field, value in request.ListFields():
        kind = field.message_type
        if kind is None or kind.GetOptions().map_entry:
            continue
        for item in value if field.is_repeated else [value]:
            pin_tenants(item, tenant)


class Fuzzed:
    """Calls one RPC by path with raw bytes, as an outside client would."""

    def __init__(self, stack: SecuredStack, service: str, method: MethodDescriptor) -> None:
        self.path = f"/{method.containing_service.full_name}/{method.name}"
        self.streaming = method.server_streaming
        self.response = message_factory.GetMessageClass(method.output_type)
        self.channel = grpc.insecure_channel(stack.targets[service])
        self.service_role = METHOD_ROLES[self.path] == "service"

    def call(self, payload: bytes, token: str) -> tuple[grpc.StatusCode, list[Message]]:
        metadata = [("authorization", f"Bearer {token}")]
        try:
            if self.streaming:
                stream = self.channel.unary_stream(self.path, response_deserializer=self.response.FromString)(
                    payload, metadata=metadata, timeout=0.5)
                replies: list[Message] = []
                try:
                    for reply in stream:
                        replies.append(reply)
                        if len(replies) >= 20:
                            break
                except grpc.RpcError as exc:
                    if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:  # type: ignore[attr-defined]
                        raise
                stream.cancel()
                return grpc.StatusCode.OK, replies
            reply = self.channel.unary_unary(self.path, response_deserializer=self.response.FromString)(
                payload, metadata=metadata, timeout=20)
            return grpc.StatusCode.OK, [reply]
        except grpc.RpcError as exc:
            return exc.code(), []  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def tenants(secured_stack: SecuredStack) -> tuple[str, str]:
    """Tenant A (the fuzzer) and tenant B, whose posts carry a word A must never get back."""
    a, b = f"fuzz-a-{uuid.uuid4().hex[:6]}", f"fuzz-b-{uuid.uuid4().hex[:6]}"
    service = secured_stack.stubs(secured_stack.token("", "service"))
    posts = [enriched(b, f"b-{i}", f"The {SECRET_WORD} bus depot flooded again {i}") for i in range(3)]
    posts.append(enriched(a, "a-0", "The bus is late"))
    assert service.search.IndexPosts(search_pb2.IndexPostsRequest(posts=posts), timeout=30).indexed == 4
    return a, b


def check(stack: SecuredStack, tenants: tuple[str, str], fuzzed: Fuzzed, payload: bytes, token: str) -> None:
    code, replies = fuzzed.call(payload, token)
    assert code in DOCUMENTED, f"{fuzzed.path} answered {code} to {payload[:200]!r}"
    a, b = tenants
    for reply in replies:
        assert tenants_of(reply) <= {a}, f"{fuzzed.path} returned another tenant's data"
        assert SECRET_WORD not in str(reply) and b not in str(reply), f"{fuzzed.path} leaked tenant B's data"


@pytest.mark.parametrize(("service", "method"), METHODS, ids=[m.name for _, m in METHODS])
@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_contract_shaped_requests_get_documented_codes_and_no_other_tenant_data(
    secured_stack: SecuredStack, tenants: tuple[str, str], service: str, method: MethodDescriptor, data: st.DataObject
) -> None:
    fuzzed = Fuzzed(secured_stack, service, method)
    request = data.draw(message(method.input_type), label="request")
    a, _ = tenants
    if fuzzed.service_role:
        pin_tenants(request, a)
        token = secured_stack.token("", "service")
    else:
        if data.draw(st.booleans(), label="leave tenants to the credential"):
            pin_tenants(request, "")
        token = secured_stack.token(a, "admin")
    try:
        check(secured_stack, tenants, fuzzed, request.SerializeToString(), token)
    finally:
        fuzzed.channel.close()


@pytest.mark.parametrize(("service", "method"), METHODS, ids=[m.name for _, m in METHODS])
@settings(max_examples=max(1, EXAMPLES // 2), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.binary(min_size=1, max_size=64))
def test_undecodable_bytes_get_documented_codes(
    secured_stack: SecuredStack, tenants: tuple[str, str], service: str, method: MethodDescriptor, payload: bytes
) -> None:
    fuzzed = Fuzzed(secured_stack, service, method)
    a, _ = tenants
    token = secured_stack.token("", "service") if fuzzed.service_role else secured_stack.token(a, "reader")
    try:
        check(secured_stack, tenants, fuzzed, payload, token)
    finally:
        fuzzed.channel.close()


def test_servers_are_still_serving_after_the_fuzzing(secured_stack: SecuredStack) -> None:
    for target in secured_stack.targets.values():
        assert is_healthy(target)
