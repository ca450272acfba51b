"""What an agency teaches its topics becomes one classifier per topic: examples first, then marks.

A topic with examples (or marks saying "relevant") gets a logistic regression on the post
embeddings: its examples, relevant marks and its own description against its counter-examples,
"not relevant" marks, the other topics' examples (a post about fares is not about stations) and
ordinary posts drawn from the background distribution (so that a stream's chatter scores low without
anyone marking it). Until both sides have MIN_MARKS_PER_CLASS taught posts the classifier cannot be
measured honestly and keeps the lighter regularization chosen for eight examples; once they have,
its precision and recall are cross-validated over the taught posts and shown with the topic. A topic
with only a description stays zero-shot (scoring.py). Fitted on every change of a tenant's topics:
the other topics' examples are part of each fit, so one topic's change refits all of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from services.common.relevance.background import Background
from services.common.relevance.classifier import REGULARIZATION_C, Quality, fit_classifier, marks_needed
from services.common.relevance.definitions import TopicDefinition
from services.common.relevance.scoring import Calibration, CompiledTopic, Embed, TopicSetScorer, compile_topics

# Ordinary posts drawn from the background per fit, and the regularization of a classifier taught by
# examples only: both chosen on the synthetic training week (8 examples per topic drawn from it,
# scored on its other posts and UMSAB train tweets): 200 samples and C 64 gave the best mean F1 of
# the three agencies (0.689, against 0.675 at C 16 and at C 256, 0.596 at C 4; 0.683 with 1,000
# samples); without samples, a third to three quarters of ordinary tweets reached a topic.
BACKGROUND_SAMPLES = 200
EXAMPLES_C = 64.0


@dataclass(frozen=True)
class Marks:
    """Embeddings of the posts analysts marked relevant and not relevant to one topic."""

    relevant: np.ndarray
    not_relevant: np.ndarray


def teach(topics: Sequence[CompiledTopic], background: Background,
          marks: Mapping[str, Marks] | None = None) -> list[tuple[CompiledTopic, Quality]]:
    """Every topic with the classifier its examples and marks support (or none), and its quality."""
    marks = marks or {}
    dims = topics[0].description_vector.shape[0] if topics else 0
    ordinary = background.sample(BACKGROUND_SAMPLES, seed=0)
    taught = []
    for topic in topics:
        marked = marks.get(topic.name, Marks(np.zeros((0, dims), np.float32), np.zeros((0, dims), np.float32)))
        relevant = np.vstack([marked.relevant, topic.example_vectors])
        not_relevant = np.vstack([marked.not_relevant, topic.counter_vectors])
        needed = marks_needed(len(relevant), len(not_relevant))
        if not len(relevant):
            scorer = "description"
            taught.append((topic.with_classifier(None), Quality(scorer, 0, len(not_relevant), needed)))
            continue
        others = [other.example_vectors for other in topics if other.name != topic.name]
        classifier = fit_classifier(
            relevant, not_relevant, topic.definition.threshold,
            extra_relevant=topic.description_vector[None, :], extra_not_relevant=np.vstack([*others, ordinary]),
            regularization=EXAMPLES_C if needed else REGULARIZATION_C,
        )
        assert classifier is not None
        taught.append((topic.with_classifier(classifier), classifier.quality))
    return taught


def same_scorers(before: Sequence[CompiledTopic], after: Sequence[CompiledTopic]) -> bool:
    """Whether re-teaching changed nothing that decides a score (then history needs no re-tagging)."""
    def key(topic: CompiledTopic) -> tuple[str, bytes, float]:
        found = topic.classifier
        return (topic.name, found.weights.tobytes() if found else b"", found.bias if found else 0.0)

    return sorted(map(key, before)) == sorted(map(key, after))


def taught_scorer(definitions: Sequence[TopicDefinition], embed: Embed, background: Background,
                  calibration: Calibration) -> TopicSetScorer:
    """The scorer of a topics file as it is defined, examples taught: what `civic classify --topics`
    and the benchmarks score with."""
    compiled = compile_topics(definitions, embed)
    return TopicSetScorer([topic for topic, _ in teach(compiled, background)], background, calibration)
