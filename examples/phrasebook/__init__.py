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


def fill(template: str, slots: PhraseGroup, rng: random.Random) -> str:
    """Fills every {slot} of a template; filler text may itself contain slots, one level deep."""
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
        values[name] = fill(chosen, slots, rng) if "{" in chosen else chosen
    return template.format(**values)


def compose(group: PhraseGroup, common: PhraseGroup, asides: PhraseGroup, sentiment: str,
            rng: random.Random) -> str:
    """An opener, one or two filled templates, often a personal aside, a closer: as people write."""
    slots = {**common, **asides, **group}
    templates = rng.sample(group[sentiment], 2 if rng.random() < 0.3 and len(group[sentiment]) > 1 else 1)
    sentences = [capitalize(fill(template, slots, rng)) for template in templates]
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
