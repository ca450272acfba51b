"""Relevance figures per agency: zero-shot defaults, the agency's own topics from their descriptions,
with 8 examples per topic, and with the per-topic classifier fitted on analysts' marks.

Measured on the validation week (seed 23) of each demo agency with ordinary UMSAB val tweets mixed
in as posts about nothing (bench/relevance_data.py); examples and marks are drawn from the training
week (seed 11). The last table is the demo's own week (seed 7) with the demo's topics files
(examples/topics/), as `make demo` tags it.

    python -m bench.relevance_accuracy
"""

from __future__ import annotations

import random

import numpy as np

from bench.relevance_data import (
    DEMO_SEED,
    REPO,
    TENANTS,
    TRAIN_SEED,
    VALIDATION_SEED,
    Embeddings,
    Labelled,
    figures,
    joined,
    off_topic,
    synthetic,
)
from services.common.relevance.background import Background
from services.common.relevance.definitions import TopicDefinition, load_topics
from services.common.relevance.scoring import Calibration, CompiledTopic, TopicSetScorer, compile_topics
from services.common.relevance.teaching import Marks, taught_scorer, teach

OFF_TOPIC_PER_LANGUAGE = 200
SHOTS = 8
MARKS_PER_CLASS = (10, 30, 100)


def tagged(scorer: TopicSetScorer, vectors: np.ndarray) -> list[set[str]]:
    return [set(tagging.topics) for tagging in scorer.tag(vectors)]


def drawn_examples(definitions: list[TopicDefinition], train: Labelled, rng: random.Random) -> list[TopicDefinition]:
    out = []
    for definition in definitions:
        about = [i for i, topics in enumerate(train.topics) if definition.name in topics]
        chosen = rng.sample(about, SHOTS)
        out.append(TopicDefinition(definition.name, definition.description, tuple(train.texts[i] for i in chosen)))
    return out


def marked(topics: list[CompiledTopic], train: Labelled, vectors: np.ndarray, per_class: int | None,
           rng: random.Random) -> dict[str, Marks]:
    """per_class marks of each kind per topic (every post of the week when None), drawn from the
    training week: what analysts marking that week would have taught each topic."""
    marks = {}
    for topic in topics:
        relevant = [i for i, about in enumerate(train.topics) if topic.name in about]
        other = [i for i, about in enumerate(train.topics) if topic.name not in about]
        if per_class is not None:
            relevant, other = rng.sample(relevant, min(per_class, len(relevant))), rng.sample(other, per_class)
        marks[topic.name] = Marks(vectors[relevant], vectors[other])
    return marks


def taught(topics: list[CompiledTopic], background: Background, marks: dict[str, Marks] | None = None
           ) -> list[CompiledTopic]:
    return [topic for topic, _ in teach(topics, background, marks)]


def main() -> None:
    embed = Embeddings()
    background, calibration = Background.load(), Calibration.load()
    rng = random.Random(VALIDATION_SEED)
    defaults = load_topics()
    print(f"validation: week seed {VALIDATION_SEED} + {OFF_TOPIC_PER_LANGUAGE} UMSAB val tweets per language "
          f"(en, es, fr); examples and marks from week seed {TRAIN_SEED}\n")
    for tenant in TENANTS:
        agency = load_topics(REPO / "examples" / "topics" / f"{tenant}.yaml")
        names = [d.name for d in agency]
        descriptions = [TopicDefinition(d.name, d.description) for d in agency]
        train = joined(synthetic(TRAIN_SEED, tenant), off_topic("train", OFF_TOPIC_PER_LANGUAGE))
        val = joined(synthetic(VALIDATION_SEED, tenant), off_topic("val", OFF_TOPIC_PER_LANGUAGE))
        train_vectors, val_vectors = embed(train.texts), embed(val.texts)
        rows = [("shipped defaults, zero-shot (service level)",
                 figures(tagged(TopicSetScorer(compile_topics(defaults, embed), background, calibration), val_vectors),
                         val.services, [d.name for d in defaults]))]
        zero = compile_topics(descriptions, embed)
        rows.append(("agency topics, description only", figures(
            tagged(TopicSetScorer(zero, background, calibration), val_vectors), val.topics, names)))
        few = taught(compile_topics(drawn_examples(descriptions, synthetic(TRAIN_SEED, tenant), rng), embed),
                     background)
        rows.append((f"agency topics, {SHOTS} examples each", figures(
            tagged(TopicSetScorer(few, background, calibration), val_vectors), val.topics, names)))
        for per_class in (*MARKS_PER_CLASS, None):
            marks = marked(zero, train, train_vectors, per_class, rng)
            label = f"classifier, {per_class} marks per side" if per_class else "classifier, whole training week"
            rows.append((label, figures(tagged(TopicSetScorer(taught(zero, background, marks), background,
                                                              calibration), val_vectors), val.topics, names)))
        print(f"{tenant} ({len(names)} topics, {sum(1 for t in val.topics if t)} posts)")
        for label, figure in rows:
            print(f"  {label:<46} {figure.row()}")
        print()
    print(f"demo week (seed {DEMO_SEED}) with examples/topics/ as shipped (descriptions + {SHOTS} examples):")
    for tenant in TENANTS:
        week = synthetic(DEMO_SEED, tenant)
        agency = load_topics(REPO / "examples" / "topics" / f"{tenant}.yaml")
        scorer = taught_scorer(agency, embed, background, calibration)
        print(f"  {tenant:<16} {figures(tagged(scorer, embed(week.texts)), week.topics, scorer.names).row()}")


if __name__ == "__main__":
    main()
