"""The boolean query language parser: what it accepts, how it translates, and where it says errors are."""

from __future__ import annotations

import pytest

from services.common.errors import InvalidArgument
from services.search.queries import QUERY_FIELDS, text_query


def error_of(query: str) -> str:
    with pytest.raises(InvalidArgument) as caught:
        text_query(query)
    assert caught.value.field == "query"
    return caught.value.reason


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("(bus AND late", "unbalanced parenthesis at position 1: '(' is never closed"),
        ("bus AND (late OR delay", "unbalanced parenthesis at position 9: '(' is never closed"),
        ("bus AND late) OR x", "unbalanced parenthesis at position 13: ')' closes nothing"),
        ("bus AND", "'AND' at position 5 needs a term after it, found the end of the query at position 8"),
        ("bus OR OR late", "'OR' at position 5 needs a term after it, found 'OR' at position 8"),
        ("OR bus", "expected a term at position 1, found 'OR'"),
        ('bus "late again', "unterminated phrase: the quote at position 5 is never closed"),
        ("bus *late", "leading wildcards are not allowed ('*late' at position 5)"),
        ("b*s", "wildcards are allowed at the end of a word only ('b*s' at position 1)"),
        ("b?s", "wildcards are allowed at the end of a word only ('b?s' at position 1)"),
        ("a*", "a wildcard needs at least 2 characters before it ('a*' at position 1)"),
        ("/bu.*/", "wildcards are allowed at the end of a word only ('/bu.*/' at position 1)"),
        ("channel:", "field 'channel' at position 1 needs a value after ':'"),
        ("near_duplicate:maybe", "'near_duplicate' takes true or false (position 16)"),
        ("topic:(channel:x)", "field 'channel' at position 8 is inside another field's group"),
        ('""', "empty phrase at position 1"),
    ],
)
def test_errors_say_where(query: str, reason: str) -> None:
    assert error_of(query) == reason


def test_unknown_fields_are_named_with_the_allowed_ones() -> None:
    reason = error_of("bus AND secret_field:1")
    assert reason.startswith("unknown field 'secret_field' at position 9; fields allowed: author, ")
    assert all(name in reason for name in QUERY_FIELDS)


def test_expensive_queries_are_bounded() -> None:
    assert error_of("x" * 1001) == "at most 1000 characters, got 1001"
    assert error_of(" ".join(f"w{n}*" for n in range(11))).startswith("more than 10 wildcards")
    assert error_of(" ".join(f"w{n}" for n in range(101))).startswith("more than 100 terms")
    assert error_of("(" * 21 + "x" + ")" * 21).startswith("groups nested deeper than 20")


def test_empty_query_matches_everything() -> None:
    assert text_query("") is None and text_query("   ") is None


def test_translation_uses_only_plain_clauses() -> None:
    tree = text_query('-late (bus OR "route 12") AND channel:reddit stre* near_duplicate:TRUE topic:(a OR b)')
    assert tree is not None
    must = tree["bool"]["must"]
    assert must[0] == {"bool": {"must_not": [{"multi_match": {
        "query": "late", "fields": must[0]["bool"]["must_not"][0]["multi_match"]["fields"], "operator": "and"}}]}}
    either = must[1]["bool"]
    assert either["minimum_should_match"] == 1
    assert either["should"][1]["multi_match"]["type"] == "phrase"
    assert either["should"][1]["multi_match"]["query"] == "route 12"
    assert must[2] == {"term": {"channel": "reddit"}}
    prefix = must[3]["multi_match"]
    assert (prefix["type"], prefix["query"], prefix["max_expansions"]) == ("phrase_prefix", "stre", 50)
    assert must[4] == {"term": {"near_duplicate": True}}
    assert must[5] == {"bool": {"should": [{"term": {"topic": "a"}}, {"term": {"topic": "b"}}],
                                "minimum_should_match": 1}}
    text = repr(tree)
    assert "query_string" not in text and "regexp" not in text and "script" not in text


def test_author_means_the_author_name_and_escapes_are_literal() -> None:
    assert text_query("author:ana") == {"term": {"author.name": "ana"}}
    assert text_query(r"author:ana\*") == {"term": {"author.name": "ana*"}}
    assert text_query("NOT bus") == {"bool": {"must_not": [text_query("bus")]}}
    assert text_query("bus && late") == text_query("bus AND late") == text_query("bus late")
