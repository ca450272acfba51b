"""The one boolean query language parser (shared by search and alerting) and its matcher on single posts:
operators, phrases, fields, wildcards, limits, and errors that say where the query is wrong."""

from __future__ import annotations

import pytest

from services.common.boolean_query import (
    FIELDS,
    And,
    Document,
    MatchAll,
    Not,
    Or,
    Phrase,
    Term,
    matches,
    parse,
)
from services.common.errors import InvalidArgument

POST = Document.of(
    "Line 3 outage again: the metro is stopped at Central. #MetroFail Línea 3 cancelada",
    {"channel": ["mastodon"], "language": ["en"], "sentiment": ["negative"], "topics": ["transit"],
     "author.name": ["Ana"], "near_duplicate": ["false"]},
)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", True),
        ("   ", True),
        ("outage metro", True),
        ("OUTAGE AND Metro", True),
        ("outage && metro", True),
        ("outage bus", False),
        ("outage OR bus", True),
        ("bus || outage", True),
        ("bus OR tram", False),
        ("outage AND NOT bus", True),
        ("outage -metro", False),
        ("outage !metro", False),
        ("outage -(bus OR tram)", True),
        ("NOT bus", True),
        ("NOT NOT outage", True),
        ('"line 3" AND (outage OR delay)', True),
        ('"3 line"', False),
        ('"metro is stopped"', True),
        ('-"metro is stopped"', False),
        ("out*", True),
        ("outa* AND stop*", True),
        ("xyz*", False),
        ("#metrofail", True),
        ("metrofail", True),  # a plain word matches the hashtag
        ("#outage", False),  # a hashtag query needs the hashtag
        ("#metro*", True),
        ("línea cancelada", True),
        ("channel:mastodon", True),
        ("channel:MASTODON", True),
        ("channel:reddit", False),
        ("channel:(reddit OR mastodon)", True),
        ("channel:(NOT reddit)", True),
        ("channel:mast*", True),
        ('channel:"mastodon"', True),
        ("language:en AND sentiment:negative AND topic:transit", True),
        ("sentiment:positive OR topic:trans*", True),
        ("author:ana", True),
        ("author.name:ana", True),
        ("near_duplicate:false", True),
        ("near_duplicate:true", False),
        ("text:metro", True),
        ("text:(bus OR metro)", True),
        ("a OR b OR outage AND metro", True),
        ("(bus OR tram) OR (metro AND NOT central)", False),
        ("line-3", True),  # two analyzer tokens, in order
        ("3-line", False),
        ("+outage +metro", True),
        ("+(bus OR metro)", True),
        ("24/7", False),  # a '/' inside a word is text, not a regex
    ],
)
def test_matches(query: str, expected: bool) -> None:
    assert parse(query).matches(POST) is expected
    assert matches(query, POST) is expected


def test_not_binds_tighter_than_and_tighter_than_or() -> None:
    doc = Document.of("apples and pears")
    assert parse("apples OR bananas AND cherries").matches(doc)  # apples OR (bananas AND cherries)
    assert not parse("NOT apples AND pears").matches(doc)  # (NOT apples) AND pears
    assert parse("NOT (apples AND bananas)").matches(doc)


def test_one_tree_for_both_backends() -> None:
    tree = parse('-late (bus OR "route 12") AND channel:reddit stre* near_duplicate:TRUE topic:(a OR b)')
    assert tree == And((
        Not(Term(None, "late")),
        Or((Term(None, "bus"), Phrase(None, "route 12"))),
        Term("channel", "reddit"),
        Term(None, "stre", prefix=True),
        Term("near_duplicate", "TRUE"),
        Or((Term("topics", "a"), Term("topics", "b"))),
    ))
    assert parse("") == parse("  \n ") == MatchAll()
    assert parse("text:bus") == Term("text", "bus")


def test_operator_spellings_and_escapes() -> None:
    both = And((Term(None, "bus"), Term(None, "late")))
    assert parse("bus && late") == parse("bus AND late") == parse("bus late") == both
    assert parse("bus || late") == parse("bus OR late")
    assert parse("NOT bus") == parse("-bus") == parse("!bus") == Not(Term(None, "bus"))
    assert parse("+bus") == parse("NOT NOT bus") == parse("--bus") == Term(None, "bus")
    assert parse("bus - late") == And((Term(None, "bus"), Term(None, "-"), Term(None, "late")))  # a lone '-' is a word
    assert parse(r"author:ana\*") == Term("author.name", "ana*")
    assert parse(r'"say \"hi\""') == Phrase(None, 'say "hi"')
    assert parse("a/b") == Term(None, "a/b")


def test_a_long_chain_of_negations_does_not_exhaust_the_stack() -> None:
    assert parse("-" * 999 + "x") == Not(Term(None, "x"))


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("(bus AND late", "unbalanced parenthesis at position 1: '(' is never closed"),
        ("bus AND (late OR delay", "unbalanced parenthesis at position 9: '(' is never closed"),
        ("bus AND late) OR x", "unbalanced parenthesis at position 13: ')' closes nothing"),
        ("(outage OR delay", "unbalanced parenthesis at position 1: '(' is never closed"),
        ("outage)", "unbalanced parenthesis at position 7: ')' closes nothing"),
        ("bus AND", "'AND' at position 5 needs a term after it, found the end of the query at position 8"),
        ("outage AND", "'AND' at position 8 needs a term after it, found the end of the query at position 11"),
        ("bus &&", "'AND' at position 5 needs a term after it, found the end of the query at position 7"),
        ("bus OR OR late", "'OR' at position 5 needs a term after it, found 'OR' at position 8"),
        ("bus NOT", "'NOT' at position 5 needs a term after it, found the end of the query at position 8"),
        ("bus -OR x", "'-' at position 5 needs a term after it, found 'OR' at position 6"),
        ("bus -)", "unbalanced parenthesis at position 6: ')' closes nothing"),  # a lone '-' is a word
        ("OR bus", "expected a term at position 1, found 'OR'"),
        ('bus "late again', "unterminated phrase: the quote at position 5 is never closed"),
        ('"unterminated', "unterminated phrase: the quote at position 1 is never closed"),
        ("bus *late", "leading wildcards are not allowed ('*late' at position 5)"),
        ("*outage", "leading wildcards are not allowed ('*outage' at position 1)"),
        ("b*s", "wildcards are allowed at the end of a word only ('b*s' at position 1)"),
        ("b?s", "wildcards are allowed at the end of a word only ('b?s' at position 1)"),
        ("ou*age", "wildcards are allowed at the end of a word only ('ou*age' at position 1)"),
        ("a*", "a wildcard needs at least 2 characters before it ('a*' at position 1)"),
        ("/bu.*/", "regular expressions are not allowed ('/bu.*/' at position 1); quote a word that starts with '/'"),
        ("x /o.*/", "regular expressions are not allowed ('/o.*/' at position 3); quote a word that starts with '/'"),
        ("channel:", "field 'channel' at position 1 needs a value after ':'"),
        ("near_duplicate:maybe", "'near_duplicate' takes true or false (position 16)"),
        ("near_duplicate:tr*", "'near_duplicate' takes true or false (position 16)"),
        ('near_duplicate:"true"', "'near_duplicate' takes true or false (position 16)"),
        ("topic:(channel:x)", "field 'channel' at position 8 is inside another field's group"),
        ('""', "empty phrase at position 1"),
        ('bus "  "', "empty phrase at position 5"),
        ("x" * 1001, "at most 1000 characters, got 1001"),
    ],
)
def test_errors_name_the_field_and_say_where(query: str, reason: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse(query, name="rule.query")
    assert caught.value.field == "rule.query"
    assert caught.value.reason == reason


def error_of(query: str, max_chars: int = 1000) -> str:
    with pytest.raises(InvalidArgument) as caught:
        parse(query, max_chars=max_chars)
    assert caught.value.field == "query"
    return caught.value.reason


def test_unknown_fields_are_named_with_the_allowed_ones() -> None:
    reason = error_of("bus AND secret_field:1")
    assert reason.startswith("unknown field 'secret_field' at position 9; fields allowed: agency, author, ")
    assert all(name in reason for name in FIELDS)
    assert error_of("colour:red").startswith("unknown field 'colour' at position 1; ")


def test_expensive_queries_are_bounded() -> None:
    assert error_of("x" * 1001) == "at most 1000 characters, got 1001"
    assert error_of("x" * 501, max_chars=500) == "at most 500 characters, got 501"
    assert error_of(" ".join(f"w{n}*" for n in range(11))) == "more than 10 wildcards (at position 41)"
    assert error_of(" ".join(f"w{n}" for n in range(101))).startswith("more than 100 terms (at position ")
    assert error_of("(" * 21 + "x" + ")" * 21) == "groups nested deeper than 20 at position 21"
    assert parse(" ".join(f"w{n}" for n in range(100))) == And(tuple(Term(None, f"w{n}") for n in range(100)))
    assert parse("(" * 20 + "x" + ")" * 20) == Term(None, "x")
