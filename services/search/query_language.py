"""The public boolean query language, translated into Elasticsearch query DSL.

The language is parsed by services/common/boolean_query.py, the same parser alerting uses, so a saved
search and an alert rule mean the same posts. The tree becomes plain bool/multi_match/term/prefix
clauses only: nothing a user types can reach query_string, a regex, a script, a field outside the
allow-list or an unbounded wildcard expansion.
"""

from __future__ import annotations

from typing import Any

from services.common.boolean_query import BOOLEAN_FIELDS, TEXT_FIELD, And, Node, Not, Or, Phrase, Term

PREFIX_EXPANSIONS = 50


def to_elasticsearch(tree: Node, text_fields: list[str]) -> dict[str, Any]:
    """Query DSL for a tree: words go to every text field, `text:` to the text field only, field:value
    to that field only (exact keyword, or true/false on a boolean field)."""
    if isinstance(tree, And):
        return {"bool": {"must": [to_elasticsearch(part, text_fields) for part in tree.parts]}}
    if isinstance(tree, Or):
        return {"bool": {"should": [to_elasticsearch(part, text_fields) for part in tree.parts],
                         "minimum_should_match": 1}}
    if isinstance(tree, Not):
        return {"bool": {"must_not": [to_elasticsearch(tree.inner, text_fields)]}}
    if isinstance(tree, Phrase):
        if tree.field is None or tree.field == TEXT_FIELD:
            fields = text_fields if tree.field is None else [TEXT_FIELD]
            return {"multi_match": {"query": tree.text, "fields": fields, "type": "phrase"}}
        return {"term": {tree.field: tree.text}}
    if isinstance(tree, Term):
        return _term(tree, text_fields)
    return {"match_all": {}}


def _term(term: Term, text_fields: list[str]) -> dict[str, Any]:
    if term.field is None or term.field == TEXT_FIELD:
        fields = text_fields if term.field is None else [TEXT_FIELD]
        if term.prefix:
            return {"multi_match": {"query": term.value, "fields": fields, "type": "phrase_prefix",
                                    "max_expansions": PREFIX_EXPANSIONS}}
        return {"multi_match": {"query": term.value, "fields": fields, "operator": "and"}}
    if term.field in BOOLEAN_FIELDS:  # the parser lets only true/false through
        return {"term": {term.field: term.value.lower() == "true"}}
    if term.prefix:
        return {"prefix": {term.field: {"value": term.value}}}
    return {"term": {term.field: term.value}}
