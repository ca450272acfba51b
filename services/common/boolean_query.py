"""The public boolean query language, parsed and matched in-process, without Elasticsearch.

It is the language that search accepts (words, "phrases", AND/OR/NOT, grouping, field:value on an
allow-list, trailing wildcards only), so that an alert rule and a saved search mean the same posts,
but evaluated on one post at a time as it streams by. Words are lower-cased Unicode word tokens, as
the standard analyzer makes them; a query word written with '#' asks for the hashtag itself, while a
plain word also matches a hashtag of the same spelling. Adjacent terms are ANDed (search uses
default_operator AND); NOT binds tightest, then AND, then OR.

Domain-neutral (no protobuf): the caller builds a `Document` from whatever a post looks like.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from services.common.errors import InvalidArgument

# Field names a query may use; "text" is the post text, the others compare whole values.
TEXT_FIELD = "text"
KEYWORD_FIELDS = frozenset(
    {"channel", "source", "language", "sentiment", "topic", "author", "author.name", "author.id", "near_duplicate"}
)
FIELDS = KEYWORD_FIELDS | {TEXT_FIELD}
WORD = re.compile(r"#?\w+")
_TOKEN = re.compile(
    r'\s+|(?P<open>\()|(?P<close>\))|(?P<phrase>"(?:\\.|[^"\\])*")|(?P<field>[A-Za-z_][\w.]*):'
    r"|(?P<and>&&)|(?P<or>\|\|)|(?P<word>[^\s()\"]+)"
)


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

    @property
    def words(self) -> frozenset[str]:
        return frozenset(self.tokens)


class Node:
    def matches(self, doc: Document) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class MatchAll(Node):
    def matches(self, doc: Document) -> bool:
        return True


@dataclass(frozen=True)
class Term(Node):
    """One word (or word prefix) in the text, or one value (or prefix) of a keyword field."""

    field: str
    value: str
    prefix: bool = False

    def matches(self, doc: Document) -> bool:
        if self.field != TEXT_FIELD:
            values = doc.fields.get(self.field, frozenset())
            return any(v.startswith(self.value) for v in values) if self.prefix else self.value in values
        if self.value.startswith("#"):
            pool: Iterable[str] = doc.hashtags
        else:
            pool = doc.words
        return any(word.startswith(self.value) for word in pool) if self.prefix else self.value in pool


@dataclass(frozen=True)
class Phrase(Node):
    """Words in this order, next to each other (a keyword field compares the whole value)."""

    field: str
    words: tuple[str, ...]
    raw: str

    def matches(self, doc: Document) -> bool:
        if self.field != TEXT_FIELD:
            return self.raw.lower() in doc.fields.get(self.field, frozenset())
        size = len(self.words)
        if size == 0:
            return True
        tokens = doc.tokens
        return any(tokens[i : i + size] == self.words for i in range(len(tokens) - size + 1))


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


def _tokens(query: str, name: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    while position < len(query):
        found = _TOKEN.match(query, position)
        if found is None:  # only an unterminated phrase gets here
            raise InvalidArgument(name, 'has an unterminated "phrase"')
        position = found.end()
        kind = found.lastgroup
        if kind is None:
            continue
        text = found.group(kind)
        if kind == "word" and text in {"AND", "OR", "NOT"}:
            kind = text.lower()
        out.append((kind, text))
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], name: str) -> None:
        self.tokens = tokens
        self.at = 0
        self.name = name

    def peek(self) -> str | None:
        return self.tokens[self.at][0] if self.at < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def fail(self, reason: str) -> InvalidArgument:
        return InvalidArgument(self.name, reason)

    def parse(self) -> Node:
        if not self.tokens:
            return MatchAll()
        node = self.disjunction()
        if self.peek() is not None:
            raise self.fail(f"unexpected {self.tokens[self.at][1]!r}")
        return node

    def disjunction(self) -> Node:
        parts = [self.conjunction()]
        while self.peek() == "or":
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def conjunction(self) -> Node:
        parts = [self.unary()]
        while self.peek() in {"and", "not", "open", "phrase", "field", "word"}:
            if self.peek() == "and":
                self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def unary(self) -> Node:
        kind = self.peek()
        if kind == "not":
            self.take()
            return Not(self.unary())
        if kind == "word" and self.tokens[self.at][1][:1] in {"-", "!"}:
            _, text = self.take()
            if len(text) > 1:
                self.tokens.insert(self.at, ("word", text[1:]))
            return Not(self.unary())
        return self.primary(TEXT_FIELD)

    def primary(self, field_name: str) -> Node:
        if self.peek() is None:
            raise self.fail("ends where a word, phrase or group was expected")
        kind, text = self.take()
        if kind == "open":
            inner = self.disjunction()
            if self.peek() != "close":
                raise self.fail("has an unclosed '('")
            self.take()
            return inner if field_name == TEXT_FIELD else _scope(inner, field_name)
        if kind == "field":
            if field_name != TEXT_FIELD:
                raise self.fail(f"field {text!r} inside field {field_name!r}")
            if text not in FIELDS:
                raise self.fail(f"unknown field '{text}'; fields allowed: {', '.join(sorted(FIELDS))}")
            return self.primary(text)
        if kind == "phrase":
            body = text[1:-1].replace('\\"', '"')
            return Phrase(field_name, tuple(w.lower().lstrip("#") for w in WORD.findall(body)), body)
        if kind == "word":
            return self.word(field_name, text.lstrip("+"))
        raise self.fail(f"unexpected {text!r}")

    def word(self, field_name: str, text: str) -> Node:
        if "/" in text:
            raise self.fail("regular expressions (/.../) are not allowed; quote text containing '/'")
        if text[:1] in {"*", "?"}:
            raise self.fail(f"leading wildcards are not allowed ('{text}')")
        stem = text.rstrip("*?")
        if "*" in stem or "?" in stem:
            raise self.fail(f"wildcards are allowed at the end of a word only ('{text}')")
        prefix = stem != text
        if field_name != TEXT_FIELD:
            return Term(field_name, stem.lower(), prefix)
        words = [w.lower() for w in WORD.findall(stem)]
        if not words:
            return MatchAll()
        if len(words) == 1:
            return Term(TEXT_FIELD, words[0], prefix)
        # "line-3" is two tokens to the analyzer: both must follow each other.
        return Phrase(TEXT_FIELD, tuple(w.lstrip("#") for w in words), stem)


def _scope(node: Node, field_name: str) -> Node:
    """`channel:(a OR b)`: the group's bare terms apply to the field."""
    if isinstance(node, Term) and node.field == TEXT_FIELD:
        return Term(field_name, node.value, node.prefix)
    if isinstance(node, Phrase) and node.field == TEXT_FIELD:
        return Phrase(field_name, node.words, node.raw)
    if isinstance(node, Not):
        return Not(_scope(node.inner, field_name))
    if isinstance(node, And | Or):
        return type(node)(tuple(_scope(part, field_name) for part in node.parts))
    return node


def parse(query: str, name: str = "query", max_chars: int = 1000) -> Node:
    """The query as a matcher; InvalidArgument naming `name` when it is not valid."""
    if len(query) > max_chars:
        raise InvalidArgument(name, f"at most {max_chars} characters, got {len(query)}")
    if query.count('"') - query.count('\\"') > 0 and (query.count('"') - query.count('\\"')) % 2:
        raise InvalidArgument(name, 'has an unterminated "phrase"')
    return _Parser(_tokens(query, name), name).parse()


def matches(query: str, doc: Document) -> bool:
    return parse(query).matches(doc)
