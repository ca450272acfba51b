"""What an agency says a topic is, its limits, and the YAML form topics files use."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from services.common import boolean_query
from services.common.errors import InvalidArgument

DEFAULT_TOPICS_FILE = Path(__file__).parent / "default_topics.yaml"
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_DESCRIPTION_CHARS = 500
MAX_EXAMPLES = 50
MAX_EXAMPLE_CHARS = 2000
MAX_TOPICS_PER_TENANT = 100
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class TopicDefinition:
    name: str
    description: str
    examples: tuple[str, ...] = ()
    counter_examples: tuple[str, ...] = ()
    query: str = ""
    # 0 < threshold < 1; a post at or above it is tagged with the topic.
    threshold: float = DEFAULT_THRESHOLD

    def validated(self, where: str = "topic") -> TopicDefinition:
        """This definition with blank-trimmed texts, or InvalidArgument naming the field and why."""
        if not NAME_PATTERN.fullmatch(self.name):
            raise InvalidArgument(f"{where}.name", "must be 1-64 of a-z, 0-9 and '_', starting with a letter")
        description = self.description.strip()
        if not description:
            raise InvalidArgument(f"{where}.description", "must not be empty")
        if len(description) > MAX_DESCRIPTION_CHARS:
            raise InvalidArgument(f"{where}.description", f"at most {MAX_DESCRIPTION_CHARS} characters")
        examples = _texts(self.examples, f"{where}.examples")
        counter = _texts(self.counter_examples, f"{where}.counter_examples")
        query = self.query.strip()
        if query:
            boolean_query.parse(query, f"{where}.query")
        threshold = self.threshold or DEFAULT_THRESHOLD
        if not 0.0 < threshold < 1.0:
            raise InvalidArgument(f"{where}.threshold", f"must be between 0 and 1 (exclusive), got {threshold}")
        return TopicDefinition(self.name, description, examples, counter, query, float(threshold))

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "examples": list(self.examples),
                "counter_examples": list(self.counter_examples), "query": self.query,
                "threshold": self.threshold}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TopicDefinition:
        return cls(str(data["name"]), str(data["description"]), tuple(data.get("examples", ())),
                   tuple(data.get("counter_examples", ())), str(data.get("query", "")),
                   float(data.get("threshold", DEFAULT_THRESHOLD)))


def _texts(values: tuple[str, ...] | list[str], where: str) -> tuple[str, ...]:
    if len(values) > MAX_EXAMPLES:
        raise InvalidArgument(where, f"at most {MAX_EXAMPLES} texts, got {len(values)}")
    cleaned = []
    for position, value in enumerate(values):
        text = str(value).strip()
        if not text:
            raise InvalidArgument(f"{where}[{position}]", "must not be empty")
        if len(text) > MAX_EXAMPLE_CHARS:
            raise InvalidArgument(f"{where}[{position}]", f"at most {MAX_EXAMPLE_CHARS} characters")
        cleaned.append(text)
    return tuple(cleaned)


def parse_topics(data: object, source: str) -> list[TopicDefinition]:
    """Topics from a YAML document: name -> description, or name -> {description, examples,
    counter_examples, query, threshold}. Errors name the file and the topic."""
    if not isinstance(data, Mapping) or not data:
        raise InvalidArgument(source, "expected a non-empty mapping of topic name -> description or definition")
    if len(data) > MAX_TOPICS_PER_TENANT:
        raise InvalidArgument(source, f"at most {MAX_TOPICS_PER_TENANT} topics")
    topics = []
    for name, value in data.items():
        where = f"{source}: topic {name!r}"
        if isinstance(value, str):
            definition = TopicDefinition(str(name), value)
        elif isinstance(value, Mapping):
            unknown = set(value) - {"description", "examples", "counter_examples", "query", "threshold"}
            if unknown:
                raise InvalidArgument(where, f"unknown keys {sorted(unknown)}")
            definition = TopicDefinition(
                str(name), str(value.get("description") or ""), tuple(value.get("examples") or ()),
                tuple(value.get("counter_examples") or ()), str(value.get("query") or ""),
                float(value.get("threshold") or DEFAULT_THRESHOLD),
            )
        else:
            raise InvalidArgument(where, "must be a description or a mapping with a description")
        topics.append(definition.validated(where))
    return topics


def load_topics(path: Path | None = None) -> list[TopicDefinition]:
    """The topics of a YAML file; the shipped default set without one."""
    source = path or DEFAULT_TOPICS_FILE
    return parse_topics(yaml.safe_load(source.read_text(encoding="utf-8")), str(source))
