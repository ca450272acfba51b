"""The query language translated into Elasticsearch DSL: plain clauses only, and parser errors on `query`.

The parser itself (what it accepts, its limits and error positions) is tested in test_boolean_query.py.
"""

from __future__ import annotations

import pytest

from services.common.errors import InvalidArgument
from services.search.mapping import TEXT_FIELDS
from services.search.queries import text_query


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("bus AND (late OR delay", "unbalanced parenthesis at position 9: '(' is never closed"),
        ("near_duplicate:maybe", "'near_duplicate' takes true or false (position 16)"),
        ("x" * 1001, "at most 1000 characters, got 1001"),
    ],
)
def test_parser_errors_name_the_query_field(query: str, reason: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        text_query(query)
    assert caught.value.field == "query"
    assert caught.value.reason == reason


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
    assert must[5] == {"bool": {"should": [{"term": {"topics": "a"}}, {"term": {"topics": "b"}}],
                                "minimum_should_match": 1}}
    text = repr(tree)
    assert "query_string" not in text and "regexp" not in text and "script" not in text


def test_author_means_the_author_name_and_escapes_are_literal() -> None:
    assert text_query("author:ana") == {"term": {"author.name": "ana"}}
    assert text_query(r"author:ana\*") == {"term": {"author.name": "ana*"}}
    assert text_query("NOT bus") == {"bool": {"must_not": [text_query("bus")]}}
    assert text_query("bus && late") == text_query("bus AND late") == text_query("bus late")


def test_text_fields_and_keyword_fields() -> None:
    assert text_query("bus") == {"multi_match": {"query": "bus", "fields": TEXT_FIELDS, "operator": "and"}}
    assert text_query("text:bus") == {"multi_match": {"query": "bus", "fields": ["text"], "operator": "and"}}
    assert text_query('text:"bus late"') == {"multi_match": {"query": "bus late", "fields": ["text"], "type": "phrase"}}
    assert text_query("author.id:ab*") == {"prefix": {"author.id": {"value": "ab"}}}
    assert text_query('channel:"city hall"') == {"term": {"channel": "city hall"}}
    assert text_query("near_duplicate:false") == {"term": {"near_duplicate": False}}
    assert text_query("!bus") == text_query("-bus") == text_query("NOT bus")
    assert text_query("+bus") == text_query("NOT NOT bus") == text_query("bus")
