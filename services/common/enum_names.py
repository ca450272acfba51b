"""The words the product writes for proto enum values: in Elasticsearch documents, the query language,
JSON, the CLI and the dashboard's parameters. A word is the value's name less the enum's prefix, lower
case (SENTIMENT_LABEL_NEGATIVE -> "negative"), so the words follow the contract wherever they appear
and a value added to a proto gets its word everywhere at once."""

from __future__ import annotations

from typing import Protocol, cast

from civic.listening.v1 import post_pb2

_UNSPECIFIED = "UNSPECIFIED"


class ProtoEnum(Protocol):
    """What generated enum wrappers (post_pb2.SentimentLabel, ...) offer."""

    def Name(self, number: int) -> str: ...

    def items(self) -> list[tuple[str, int]]: ...


def _prefix(enum: ProtoEnum) -> str:
    """The enum's value prefix, read off its zero value (SENTIMENT_LABEL_UNSPECIFIED)."""
    return enum.Name(0).removesuffix(_UNSPECIFIED)


def word(enum: ProtoEnum, value: int) -> str:
    """The value's word; "" for the unspecified value (or a number this build does not know)."""
    try:
        name = enum.Name(value)
    except ValueError:
        return ""
    spelled = name.removeprefix(_prefix(enum)).lower()
    return "" if spelled == _UNSPECIFIED.lower() else spelled


def words(enum: ProtoEnum) -> dict[str, int]:
    """Every specified value by its word, in the proto's order."""
    prefix = _prefix(enum)
    return {name.removeprefix(prefix).lower(): number for name, number in enum.items() if number != 0}


# Typed as the generated enum classes, which the messages' fields take (the values are their ints).
SENTIMENTS = cast("dict[str, post_pb2.SentimentLabel]", words(post_pb2.SentimentLabel))
EMOTIONS = cast("dict[str, post_pb2.Emotion]", words(post_pb2.Emotion))
SENTIMENT_WORDS = {number: spelled for spelled, number in SENTIMENTS.items()}
EMOTION_WORDS = {number: spelled for spelled, number in EMOTIONS.items()}
