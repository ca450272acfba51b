"""PII redaction: each kind of PII is replaced, ordinary numbers are not."""

from __future__ import annotations

import pytest

from services.ingestion.pii import CARD, EMAIL, PHONE, SSN, luhn_valid, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe+permits@city.example.gov please", f"write to {EMAIL} please"),
        ("Mail: J_Smith@Example.CO.UK.", f"Mail: {EMAIL}."),
        ("call (555) 123-4567 today", f"call {PHONE} today"),
        ("call 555-123-4567 or 555.123.4567", f"call {PHONE} or {PHONE}"),
        ("toll free 1-800-555-0199", f"toll free {PHONE}"),
        ("London +44 20 7946 0958", f"London {PHONE}"),
        ("Paris +33 6 12 34 56 78!", f"Paris {PHONE}!"),
        ("Berlin +4915112345678", f"Berlin {PHONE}"),
        ("US +1 (555) 123-4567", f"US {PHONE}"),
        ("portable 06 12 34 56 78", f"portable {PHONE}"),
        ("office 020 7946 0958", f"office {PHONE}"),
        ("my SSN is 123-45-6789", f"my SSN is {SSN}"),
        ("ssn 123 45 6789", f"ssn {SSN}"),
        ("card 4111 1111 1111 1111 expired", f"card {CARD} expired"),
        ("card 4111-1111-1111-1111", f"card {CARD}"),
        ("amex 378282246310005", f"amex {CARD}"),
        ("visa 4111111111111111.", f"visa {CARD}."),
    ],
)
def test_each_kind_is_replaced_by_its_placeholder(text: str, expected: str) -> None:
    placeholders = sum(expected.count(p) for p in (EMAIL, PHONE, SSN, CARD))
    assert redact(text) == (expected, placeholders)


@pytest.mark.parametrize(
    "text",
    [
        "The meeting is on 2024-01-15 at 10:30.",
        "Deadline 15.01.2024, or 12/05/2024 at the latest.",
        "The city paid $1,200,000 in 2023 for 3 000 000 people.",
        "zip 12345-6789 and case ref 1234567890",
        "version 1.2.3.4 on server 192.168.10.200.",
        "card 4111 1111 1111 1112 fails the Luhn check",
        "000-12-3456 and 666-12-3456 are never issued as SSNs",
        "Route 66, 42 km, bus 7 at 18h, 20 % off",
    ],
)
def test_numbers_that_are_not_pii_are_left_alone(text: str) -> None:
    assert redact(text) == (text, 0)


def test_counts_every_span_across_kinds() -> None:
    text, count = redact("a@b.io, 555-123-4567, 123-45-6789 and 5500 0000 0000 0004, also c@d.org")
    assert text == f"{EMAIL}, {PHONE}, {SSN} and {CARD}, also {EMAIL}"
    assert count == 5


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("4111111111111111", True),
        ("5500000000000004", True),
        ("378282246310005", True),
        ("79927398713", True),
        ("4111111111111112", False),
        ("79927398710", False),
        ("12a4", False),
    ],
)
def test_luhn(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid
