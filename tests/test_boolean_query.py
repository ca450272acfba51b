"""The shared boolean query language on single posts: operators, phrases, fields, wildcards, errors."""

from __future__ import annotations

import pytest

from services.common.boolean_query import Document, parse
from services.common.errors import InvalidArgument

POST = Document.of(
    "Line 3 outage again: the metro is stopped at Central. #MetroFail Línea 3 cancelada",
    {"channel": ["mastodon"], "language": ["en"], "sentiment": ["negative"], "topic": ["transit"]},
)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", True),
        ("outage metro", True),
        ("OUTAGE AND Metro", True),
        ("outage bus", False),
        ("outage OR bus", True),
        ("bus OR tram", False),
        ("outage AND NOT bus", True),
        ("outage -metro", False),
        ("outage !metro", False),
        ("NOT bus", True),
        ('"line 3" AND (outage OR delay)', True),
        ('"3 line"', False),
        ('"metro is stopped"', True),
        ("out*", True),
        ("outa* AND stop*", True),
        ("xyz*", False),
        ("#metrofail", True),
        ("metrofail", True),  # a plain word matches the hashtag
        ("#outage", False),  # a hashtag query needs the hashtag
        ("línea cancelada", True),
        ("channel:mastodon", True),
        ("channel:reddit", False),
        ("channel:(reddit OR mastodon)", True),
        ("language:en AND sentiment:negative AND topic:transit", True),
        ("sentiment:positive OR topic:trans*", True),
        ("text:metro", True),
        ("a OR b OR outage AND metro", True),
        ("(bus OR tram) OR (metro AND NOT central)", False),
        ("line-3", True),  # two analyzer tokens, in order
        ("+outage +metro", True),
    ],
)
def test_matches(query: str, expected: bool) -> None:
    assert parse(query).matches(POST) is expected


def test_not_binds_tighter_than_and_tighter_than_or() -> None:
    doc = Document.of("apples and pears")
    assert parse("apples OR bananas AND cherries").matches(doc)  # apples OR (bananas AND cherries)
    assert not parse("NOT apples AND pears").matches(doc)  # (NOT apples) AND pears
    assert parse("NOT (apples AND bananas)").matches(doc)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ('"unterminated', "unterminated"),
        ("colour:red", "unknown field 'colour'"),
        ("*outage", "leading wildcards"),
        ("ou*age", "end of a word"),
        ("/out.*/", "regular expressions"),
        ("(outage OR delay", "unclosed"),
        ("outage)", "unexpected"),
        ("outage AND", "ends where"),
        ("x" * 1001, "at most 1000"),
    ],
)
def test_invalid_queries_name_the_field_and_why(query: str, reason: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse(query, name="rule.query")
    assert caught.value.field == "rule.query"
    assert reason in caught.value.reason
