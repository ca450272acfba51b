"""Sentence material for the synthetic example posts, and the one way it is turned into text.

A phrase group maps "negative" / "neutral" / "positive" to templates and every other key to slot
fillers. Templates name slots in braces; a slot with a trailing digit ("station2") draws from the
same fillers as its base ("station") but never repeats a value already used in that text. Many
small filler lists multiply into thousands of distinct sentences, so the demo's searches and
duplicate detection see text that varies the way real posts do.
"""

from __future__ import annotations

import random
import string

PhraseGroup = dict[str, tuple[str, ...]]

SENTIMENTS = ("negative", "neutral", "positive")
LANGUAGES = ("en", "es", "fr")
CITY = "Port Alder"

_FORMATTER = string.Formatter()


def fill(template: str, slots: PhraseGroup, rng: random.Random, pieces: list[str] | None = None) -> str:
    """Fills every {slot} of a template; filler text may itself contain slots, one level deep.

    pieces, when given, receives the template and every filler chosen: what the post is made of,
    from which examples/phrasebook/topics.py tells what it is about.
    """
    if pieces is not None:
        pieces.append(template)
    used: dict[str, set[str]] = {}
    values: dict[str, str] = {}
    for _, name, _, _ in _FORMATTER.parse(template):
        if not name or name in values:
            continue
        base = name.rstrip(string.digits)
        taken = used.setdefault(base, set())
        choices = [option for option in slots[base] if option not in taken] or list(slots[base])
        chosen = rng.choice(choices)
        taken.add(chosen)
        if pieces is not None and "{" not in chosen:
            pieces.append(chosen)
        values[name] = fill(chosen, slots, rng, pieces) if "{" in chosen else chosen
    return template.format(**values)


def compose(group: PhraseGroup, common: PhraseGroup, asides: PhraseGroup, sentiment: str,
            rng: random.Random, pieces: list[str] | None = None) -> str:
    """An opener, one or two filled templates, often a personal aside, a closer: as people write.

    pieces receives the templates and fillers of the post's point (not of its aside).
    """
    slots = {**common, **asides, **group}
    templates = rng.sample(group[sentiment], 2 if rng.random() < 0.3 and len(group[sentiment]) > 1 else 1)
    sentences = [capitalize(fill(template, slots, rng, pieces)) for template in templates]
    if rng.random() < 0.8:
        sentences.insert(rng.randrange(len(sentences) + 1), fill(rng.choice(asides[sentiment]), slots, rng))
    parts = [
        rng.choice(slots[f"{sentiment}_opener"]),
        *sentences,
        rng.choice(slots[f"{sentiment}_closer"]),
        rng.choice(slots["hashtag"]),
    ]
    return " ".join(part for part in parts if part)


def capitalize(sentence: str) -> str:
    """Upper-cases the first letter, also behind Spanish opening marks ("¿la línea..." -> "¿La...")."""
    for index, character in enumerate(sentence):
        if character.isalpha():
            return sentence[:index] + character.upper() + sentence[index + 1 :]
    return sentence
