"""The public boolean query language: its one parser, and the matcher that runs it on a single post.

Search translates the tree into Elasticsearch clauses (services/search/query_language.py); alerting
matches it against each post as it streams by (`Node.matches`), so an alert rule and a saved search
mean the same posts. Parsing it ourselves, rather than handing it to query_string, gives errors that
say where the query is wrong ("unbalanced parenthesis at position 17") and keeps regexes, scripts,
fields outside the allow-list and unbounded wildcard expansion out of reach.

Grammar (adjacent terms are ANDed; NOT binds tightest, then AND, then OR):

    query   := or EOF
    or      := and (("OR" | "||") and)*
    and     := unary ([("AND" | "&&")] unary)*
    unary   := ("NOT" | "-" | "!" | "+") unary | primary
    primary := "(" or ")" | FIELD ":" (value | "(" or ")") | value
    value   := WORD | WORD"*" | "PHRASE"

Words match lower-cased Unicode word tokens, as the standard analyzer makes them; a query word
written with '#' asks for the hashtag itself, while a plain word also matches a hashtag of the same
spelling. Positions in errors count characters from 1. Domain-neutral (no protobuf, no
Elasticsearch): the caller builds a `Document` from whatever a post looks like.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from services.common.errors import InvalidArgument

MAX_QUERY_CHARS = 1000
MAX_TERMS = 100
MAX_PREFIXES = 10
MAX_DEPTH = 20
MIN_PREFIX_CHARS = 2

TEXT_FIELD = "text"
# Field names a query may use -> the field they mean; "text" is the post text, the others compare
# whole values. A term without a field searches the text (field None).
FIELDS: Mapping[str, str] = {
    "text": TEXT_FIELD,
    "channel": "channel",
    "source": "source",
    "language": "language",
    "sentiment": "sentiment",
    "topic": "topics",  # any topic the post is tagged with, not only its top one
    "topics": "topics",
    "author": "author.name",
    "author.name": "author.name",
    "author.id": "author.id",
    "near_duplicate": "near_duplicate",
    "emotion": "emotion",
    "offensive": "offensive",
    # What channels say beyond the text.
    "hashtag": "hashtags",  # lower case, '#' optional
    "mention": "mentions",
    "category": "categories",
    "conversation": "conversation_id",
    "sensitive": "sensitive",
    "status": "service_request.status",
    "service_code": "service_request.service_code",
    "agency": "service_request.agency",
    "severity": "official_alert.severity",
}
BOOLEAN_FIELDS = frozenset({"near_duplicate", "offensive", "sensitive"})
# Stored lower case without '#': a query value is compared the same way.
HASHTAG_FIELD = "hashtags"
WORD = re.compile(r"#?\w+")

_SPACE = re.compile(r"\s+")
_WORD = re.compile(r'(?:\\.|[^\s()"\\])+')
_FIELD = re.compile(r"([A-Za-z_][\w.]*):")
_OPERATORS = {"AND": "AND", "OR": "OR", "NOT": "NOT", "&&": "AND", "||": "OR"}
_PREFIX_OPERATORS = {"-": "NOT", "!": "NOT", "+": "+"}  # only right before a term: "-late", "+(a OR b)"


@dataclass(frozen=True)
class Document:
    """One post as the matcher sees it: its text tokens and the values of its keyword fields."""

    tokens: tuple[str, ...]  # lower-cased words in order, '#' removed
    hashtags: frozenset[str]  # lower-cased, with their '#'
    fields: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, text: str, fields: Mapping[str, Iterable[str]] | None = None) -> Document:
        words = [word.lower() for word in WORD.findall(text)]
        return cls(
            tokens=tuple(word.lstrip("#") for word in words),
            hashtags=frozenset(word for word in words if word.startswith("#")),
            fields={name: frozenset(v.lower() for v in values if v) for name, values in (fields or {}).items()},
        )

    @cached_property
    def words(self) -> frozenset[str]:
        return frozenset(self.tokens)


class Node:
    def matches(self, doc: Document) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class MatchAll(Node):
    """The empty query."""

    def matches(self, doc: Document) -> bool:
        return True


def _in_order(tokens: tuple[str, ...], words: tuple[str, ...]) -> bool:
    size = len(words)
    return size == 0 or any(tokens[i : i + size] == words for i in range(len(tokens) - size + 1))


@dataclass(frozen=True)
class Term(Node):
    """A word or word prefix in the text (field None or "text"), or a value or prefix of a keyword field.

    `value` is as written, escapes removed (and the trailing '*' of a prefix), so that each backend
    analyses it its own way.
    """

    field: str | None
    value: str
    prefix: bool = False

    @cached_property
    def _words(self) -> tuple[str, ...]:
        return tuple(WORD.findall(self.value.lower()))

    def matches(self, doc: Document) -> bool:
        if self.field not in (None, TEXT_FIELD):
            values = doc.fields.get(self.field, frozenset())
            value = self.value.lower()
            return any(v.startswith(value) for v in values) if self.prefix else value in values
        words = self._words
        if len(words) != 1:  # "line-3" is two tokens to the analyzer: both must follow each other
            return _in_order(doc.tokens, tuple(word.lstrip("#") for word in words))
        pool = doc.hashtags if words[0].startswith("#") else doc.words
        return any(word.startswith(words[0]) for word in pool) if self.prefix else words[0] in pool


@dataclass(frozen=True)
class Phrase(Node):
    """Words in this order, next to each other (a keyword field compares the whole value)."""

    field: str | None
    text: str

    @cached_property
    def _words(self) -> tuple[str, ...]:
        return tuple(word.lstrip("#") for word in WORD.findall(self.text.lower()))

    def matches(self, doc: Document) -> bool:
        if self.field not in (None, TEXT_FIELD):
            return self.text.lower() in doc.fields.get(self.field, frozenset())
        return _in_order(doc.tokens, self._words)


@dataclass(frozen=True)
class Not(Node):
    inner: Node

    def matches(self, doc: Document) -> bool:
        return not self.inner.matches(doc)


@dataclass(frozen=True)
class And(Node):
    parts: tuple[Node, ...]

    def matches(self, doc: Document) -> bool:
        return all(part.matches(doc) for part in self.parts)


@dataclass(frozen=True)
class Or(Node):
    parts: tuple[Node, ...]

    def matches(self, doc: Document) -> bool:
        return any(part.matches(doc) for part in self.parts)


@dataclass(frozen=True)
class Token:
    kind: str  # "(", ")", "AND", "OR", "NOT", "+", "WORD", "PHRASE", "FIELD"
    text: str
    position: int  # 1-based


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def tokenize(query: str, name: str = "query") -> list[Token]:
    """The query's tokens with their positions; InvalidArgument naming `name` for an unclosed quote."""
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
                raise InvalidArgument(name, f"unterminated phrase: the quote at position {at + 1} is never closed")
            tokens.append(Token("PHRASE", _unescape(query[at + 1 : end]), at + 1))
            at = end + 1
        elif char in _PREFIX_OPERATORS and at + 1 < len(query) and query[at + 1] not in " \t\n)":
            tokens.append(Token(_PREFIX_OPERATORS[char], char, at + 1))
            at += 1
        elif found := _FIELD.match(query, at):
            tokens.append(Token("FIELD", found.group(1), at + 1))
            at = found.end()
        else:
            word = _WORD.match(query, at)
            if word is None:  # only a backslash with nothing after it to escape starts no word
                raise InvalidArgument(name, f"the backslash at position {at + 1} escapes nothing")
            text = word.group(0)
            kind = _OPERATORS.get(text, "WORD")
            tokens.append(Token(kind, text if kind == "WORD" else kind, at + 1))
            at = word.end()
    return tokens


class _Parser:
    def __init__(self, query: str, name: str) -> None:
        self.tokens = tokenize(query, name)
        self.name = name
        self.at = 0
        self.end_position = len(query) + 1
        self.terms = 0
        self.prefixes = 0

    def fail(self, reason: str) -> InvalidArgument:
        return InvalidArgument(self.name, reason)

    def peek(self) -> Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def parse(self) -> Node:
        if not self.tokens:
            return MatchAll()
        tree = self.or_(depth=0, field=None)
        token = self.peek()
        if token is not None:
            if token.kind == ")":
                raise self.fail(f"unbalanced parenthesis at position {token.position}: ')' closes nothing")
            raise self.fail(f"unexpected '{token.text}' at position {token.position}")
        return tree

    def or_(self, depth: int, field: str | None) -> Node:
        parts = [self.and_(depth, field)]
        while (token := self.peek()) is not None and token.kind == "OR":
            self.take()
            parts.append(self.and_(depth, field, after=token))
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_(self, depth: int, field: str | None, after: Token | None = None) -> Node:
        parts = [self.unary(depth, field, after)]
        while (token := self.peek()) is not None and token.kind not in {")", "OR"}:
            operator = self.take() if token.kind == "AND" else None
            parts.append(self.unary(depth, field, operator))
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def unary(self, depth: int, field: str | None, after: Token | None) -> Node:
        """A loop, not recursion, so that a thousand '-' cannot exhaust the stack; NOT NOT x is x."""
        negated = False
        while (token := self.peek()) is not None and token.kind in {"NOT", "+"}:
            after = self.take()
            negated ^= token.kind == "NOT"
        node = self.primary(depth, field, after)
        return Not(node) if negated else node

    def primary(self, depth: int, field: str | None, after: Token | None) -> Node:
        token = self.peek()
        if token is None or token.kind in {")", "AND", "OR"}:
            where = token.position if token else self.end_position
            found = f"'{token.text}'" if token else "the end of the query"
            if after is not None:
                raise self.fail(f"'{after.text}' at position {after.position} needs a term after it, "
                                f"found {found} at position {where}")
            raise self.fail(f"expected a term at position {where}, found {found}")
        self.take()
        if token.kind == "(":
            if depth >= MAX_DEPTH:
                raise self.fail(f"groups nested deeper than {MAX_DEPTH} at position {token.position}")
            inner = self.or_(depth + 1, field)
            close = self.peek()
            if close is None or close.kind != ")":
                raise self.fail(f"unbalanced parenthesis at position {token.position}: '(' is never closed")
            self.take()
            return inner
        if token.kind == "FIELD":
            return self.field(depth, field, token)
        return self.term(token, field)

    def field(self, depth: int, outer: str | None, token: Token) -> Node:
        """`channel:x`, or `channel:(a OR b)`, where the group's terms all apply to the field."""
        if outer is not None:
            raise self.fail(f"field '{token.text}' at position {token.position} is inside another field's group")
        if token.text not in FIELDS:
            allowed = ", ".join(sorted(FIELDS))
            raise self.fail(f"unknown field '{token.text}' at position {token.position}; fields allowed: {allowed}")
        following = self.peek()
        if following is None or following.kind not in {"WORD", "PHRASE", "("}:
            raise self.fail(f"field '{token.text}' at position {token.position} needs a value after ':'")
        return self.primary(depth, FIELDS[token.text], None)

    def term(self, token: Token, field: str | None) -> Node:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise self.fail(f"more than {MAX_TERMS} terms (at position {token.position})")
        where = f"'{token.text}' at position {token.position}"
        if token.kind == "PHRASE":
            if not token.text.strip():
                raise self.fail(f"empty phrase at position {token.position}")
            node: Node = Phrase(field, _as_stored(field, token.text))
        elif token.text.startswith("/"):
            raise self.fail(f"regular expressions are not allowed ({where}); quote a word that starts with '/'")
        elif token.text[0] in "*?":
            raise self.fail(f"leading wildcards are not allowed ({where})")
        elif "?" in token.text.replace("\\?", "") or "*" in token.text[:-1].replace("\\*", ""):
            raise self.fail(f"wildcards are allowed at the end of a word only ({where})")
        elif token.text.endswith("*") and not token.text.endswith("\\*"):
            node = self.prefix(token, field, where)
        else:
            node = Term(field, _as_stored(field, _unescape(token.text)))
        boolean = isinstance(node, Term) and not node.prefix and node.value.lower() in {"true", "false"}
        if field in BOOLEAN_FIELDS and not boolean:
            raise self.fail(f"'{field}' takes true or false (position {token.position})")
        return node

    def prefix(self, token: Token, field: str | None, where: str) -> Term:
        stem = _unescape(token.text)[:-1]
        if len(stem) < MIN_PREFIX_CHARS:
            raise self.fail(f"a wildcard needs at least {MIN_PREFIX_CHARS} characters before it ({where})")
        self.prefixes += 1
        if self.prefixes > MAX_PREFIXES:
            raise self.fail(f"more than {MAX_PREFIXES} wildcards (at position {token.position})")
        return Term(field, _as_stored(field, stem), prefix=True)


def _as_stored(field: str | None, value: str) -> str:
    """Hashtags are stored lower case without '#': `hashtag:#MainSt` means the stored "mainst"."""
    return value.lstrip("#").lower() if field == HASHTAG_FIELD else value


def parse(query: str, name: str = "query", max_chars: int = MAX_QUERY_CHARS) -> Node:
    """The query's tree (MatchAll when empty); InvalidArgument naming `name` and the position when invalid."""
    if len(query) > max_chars:
        raise InvalidArgument(name, f"at most {max_chars} characters, got {len(query)}")
    return _Parser(query, name).parse()


def matches(query: str, doc: Document) -> bool:
    return parse(query).matches(doc)
