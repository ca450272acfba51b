"""The public boolean query language, parsed here rather than by Elasticsearch.

Parsing it ourselves gives two things query_string cannot: errors that say where the query is wrong
("unbalanced parenthesis at position 17"), and a translation into plain bool/match/term/prefix
clauses, so nothing a user types can reach a regex, a script, a field outside the allow-list, or an
unbounded wildcard expansion.

Grammar (words are implicitly ANDed, as before):

    query   := or EOF
    or      := and ("OR" and)*
    and     := unary (["AND"] unary)*
    unary   := "NOT" unary | "-" unary | primary
    primary := "(" or ")" | FIELD ":" (value | "(" or ")") | value
    value   := WORD | WORD"*" | "PHRASE"

Positions in error messages count characters from 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from services.common.errors import InvalidArgument

MAX_QUERY_CHARS = 1000
MAX_TERMS = 100
MAX_PREFIXES = 10
MAX_DEPTH = 20
MIN_PREFIX_CHARS = 2
PREFIX_EXPANSIONS = 50


@dataclass(frozen=True)
class Token:
    kind: str  # "(", ")", "AND", "OR", "NOT", "-", "WORD", "PHRASE", "FIELD"
    text: str
    position: int  # 1-based


_SPACE = re.compile(r"\s+")
_WORD = re.compile(r'(?:\\.|[^\s()"\\])+')
_FIELD = re.compile(r"([A-Za-z_][\w.]*):")
_OPERATORS = {"AND", "OR", "NOT", "&&", "||"}


def _error(reason: str) -> InvalidArgument:
    return InvalidArgument("query", reason)


def tokenize(query: str) -> list[Token]:
    tokens: list[Token] = []
    at = 0
    while at < len(query):
        space = _SPACE.match(query, at)
        if space:
            at = space.end()
            continue
        char = query[at]
        if char in "()":
            tokens.append(Token(char, char, at + 1))
            at += 1
        elif char == '"':
            end = at + 1
            while end < len(query) and query[end] != '"':
                end += 2 if query[end] == "\\" else 1
            if end >= len(query):
                raise _error(f"unterminated phrase: the quote at position {at + 1} is never closed")
            tokens.append(Token("PHRASE", _unescape(query[at + 1:end]), at + 1))
            at = end + 1
        elif char == "-" and (at + 1 < len(query) and query[at + 1] not in " \t\n)"):
            tokens.append(Token("-", char, at + 1))
            at += 1
        else:
            field = _FIELD.match(query, at)
            if field:
                tokens.append(Token("FIELD", field.group(1), at + 1))
                at = field.end()
                continue
            word = _WORD.match(query, at)
            assert word is not None  # any other character starts a word
            text = word.group(0)
            kind = {"&&": "AND", "||": "OR"}.get(text, text) if text in _OPERATORS else "WORD"
            tokens.append(Token(kind, text if kind == "WORD" else kind, at + 1))
            at = word.end()
    return tokens


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


@dataclass
class Term:
    """A leaf: a word, a trailing-wildcard prefix or a phrase, on the default fields or one field."""

    field: str | None
    value: str
    kind: str  # "word", "prefix", "phrase"
    position: int


@dataclass
class Node:
    operator: str  # "and", "or", "not"
    children: list[Node | Term]


class _Parser:
    def __init__(self, query: str, fields: dict[str, str]) -> None:
        self.tokens = tokenize(query)
        self.fields = fields
        self.at = 0
        self.end_position = len(query) + 1
        self.terms = 0
        self.prefixes = 0

    def peek(self) -> Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def parse(self) -> Node | Term:
        tree = self.or_(depth=0, field=None)
        token = self.peek()
        if token is not None:
            if token.kind == ")":
                raise _error(f"unbalanced parenthesis at position {token.position}: ')' closes nothing")
            raise _error(f"unexpected '{token.text}' at position {token.position}")
        return tree

    def or_(self, depth: int, field: str | None) -> Node | Term:
        children = [self.and_(depth, field)]
        while (token := self.peek()) is not None and token.kind == "OR":
            self.take()
            children.append(self.and_(depth, field, after=token))
        return children[0] if len(children) == 1 else Node("or", children)

    def and_(self, depth: int, field: str | None, after: Token | None = None) -> Node | Term:
        children = [self.unary(depth, field, after)]
        while (token := self.peek()) is not None and token.kind not in {")", "OR"}:
            operator = None
            if token.kind == "AND":
                operator = self.take()
            children.append(self.unary(depth, field, operator))
        return children[0] if len(children) == 1 else Node("and", children)

    def unary(self, depth: int, field: str | None, after: Token | None) -> Node | Term:
        token = self.peek()
        if token is not None and token.kind in {"NOT", "-"}:
            self.take()
            return Node("not", [self.unary(depth, field, token)])
        return self.primary(depth, field, after)

    def primary(self, depth: int, field: str | None, after: Token | None) -> Node | Term:
        token = self.peek()
        if token is None or token.kind in {")", "AND", "OR"}:
            where = token.position if token else self.end_position
            found = f"'{token.text}'" if token else "the end of the query"
            if after is not None:
                raise _error(f"'{after.text}' at position {after.position} needs a term after it, "
                             f"found {found} at position {where}")
            raise _error(f"expected a term at position {where}, found {found}")
        self.take()
        if token.kind == "(":
            if depth >= MAX_DEPTH:
                raise _error(f"groups nested deeper than {MAX_DEPTH} at position {token.position}")
            inner = self.or_(depth + 1, field)
            close = self.peek()
            if close is None or close.kind != ")":
                raise _error(f"unbalanced parenthesis at position {token.position}: '(' is never closed")
            self.take()
            return inner
        if token.kind == "FIELD":
            if field is not None:
                raise _error(f"field '{token.text}' at position {token.position} is inside another field's group")
            if token.text not in self.fields:
                allowed = ", ".join(sorted(self.fields))
                raise _error(f"unknown field '{token.text}' at position {token.position}; fields allowed: {allowed}")
            following = self.peek()
            if following is None or following.kind not in {"WORD", "PHRASE", "("}:
                raise _error(f"field '{token.text}' at position {token.position} needs a value after ':'")
            return self.primary(depth, self.fields[token.text], None)
        return self.term(token, field)

    def term(self, token: Token, field: str | None) -> Term:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise _error(f"more than {MAX_TERMS} terms (at position {token.position})")
        if token.kind == "PHRASE":
            if not token.text.strip():
                raise _error(f"empty phrase at position {token.position}")
            return Term(field, token.text, "phrase", token.position)
        value = _unescape(token.text)
        if token.text[0] in "*?":
            raise _error(f"leading wildcards are not allowed ('{token.text}' at position {token.position})")
        if "?" in token.text.replace("\\?", "") or "*" in token.text[:-1].replace("\\*", ""):
            raise _error(f"wildcards are allowed at the end of a word only ('{token.text}' at position "
                         f"{token.position})")
        if token.text.endswith("*") and not token.text.endswith("\\*"):
            stem = value[:-1]
            if len(stem) < MIN_PREFIX_CHARS:
                raise _error(f"a wildcard needs at least {MIN_PREFIX_CHARS} characters before it "
                             f"('{token.text}' at position {token.position})")
            self.prefixes += 1
            if self.prefixes > MAX_PREFIXES:
                raise _error(f"more than {MAX_PREFIXES} wildcards (at position {token.position})")
            return Term(field, stem, "prefix", token.position)
        return Term(field, value, "word", token.position)


def parse(query: str, fields: dict[str, str]) -> Node | Term | None:
    """The query's syntax tree, None for an empty query; `fields` maps allowed names to indexed fields."""
    if len(query) > MAX_QUERY_CHARS:
        raise _error(f"at most {MAX_QUERY_CHARS} characters, got {len(query)}")
    if not query.strip():
        return None
    return _Parser(query, fields).parse()


def to_elasticsearch(tree: Node | Term, text_fields: list[str], boolean_fields: set[str]) -> dict[str, Any]:
    """Query DSL for a tree: words go to every text field, field:value to that field only."""
    if isinstance(tree, Node):
        clauses = [to_elasticsearch(child, text_fields, boolean_fields) for child in tree.children]
        if tree.operator == "and":
            return {"bool": {"must": clauses}}
        if tree.operator == "or":
            return {"bool": {"should": clauses, "minimum_should_match": 1}}
        return {"bool": {"must_not": clauses}}
    if tree.field is None or tree.field in text_fields:
        fields = text_fields if tree.field is None else [tree.field]
        if tree.kind == "phrase":
            return {"multi_match": {"query": tree.value, "fields": fields, "type": "phrase"}}
        if tree.kind == "prefix":
            return {"multi_match": {"query": tree.value, "fields": fields, "type": "phrase_prefix",
                                    "max_expansions": PREFIX_EXPANSIONS}}
        return {"multi_match": {"query": tree.value, "fields": fields, "operator": "and"}}
    if tree.field in boolean_fields:
        if tree.kind != "word" or tree.value.lower() not in {"true", "false"}:
            raise _error(f"'{tree.field}' takes true or false (position {tree.position})")
        return {"term": {tree.field: tree.value.lower() == "true"}}
    if tree.kind == "prefix":
        return {"prefix": {tree.field: {"value": tree.value}}}
    return {"term": {tree.field: tree.value}}
