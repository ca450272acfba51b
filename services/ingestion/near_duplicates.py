"""Near-duplicate marking for copy-paste campaigns: many authors posting (almost) the same text.

Texts are compared by the Jaccard similarity of their word-pair shingles, estimated with MinHash and
looked up with locality-sensitive hashing (banding), within a tenant. MinHash rather than SimHash
because posts are short: one changed word in a twenty-word post moves a 64-bit SimHash by 7-9 bits,
as far as unrelated-but-similar texts, while its shingle overlap stays near 0.8. Memory is bounded by
forgetting the oldest signatures first: campaigns are bursts, so recent history is what matters.
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

PERMUTATIONS = 64
BANDS = 16
ROWS = PERMUTATIONS // BANDS
# Estimated Jaccard similarity from which two texts count as the same text, lightly edited.
SIMILARITY = 0.6
SHINGLE_WORDS = 2
# Below this many words texts like "thank you so much" collide by chance rather than by copying.
MIN_WORDS = 6
DEFAULT_CAPACITY = 20_000

# One random mask per permutation, mixed by the splitmix64 finalizer: independent 64-bit hashes.
_MASKS = np.random.default_rng(20240601).integers(0, 2**63, PERMUTATIONS, dtype=np.uint64)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_WORD = re.compile(r"\w+", re.UNICODE)
_PLACEHOLDER = re.compile(r"\[(?:EMAIL|PHONE|SSN|CARD)\]")


def _shingle_hash(shingle: str) -> int:
    return int.from_bytes(hashlib.blake2b(shingle.encode("utf-8"), digest_size=8).digest(), "big")


def _mix(values: np.ndarray) -> np.ndarray:
    values = (values ^ (values >> np.uint64(30))) * _MIX1
    values = (values ^ (values >> np.uint64(27))) * _MIX2
    return values ^ (values >> np.uint64(31))


def signature(text: str) -> bytes | None:
    """The text's MinHash signature (PERMUTATIONS uint64 values), or None when it is too short."""
    words = _WORD.findall(_PLACEHOLDER.sub(" ", text).casefold())
    if len(words) < MIN_WORDS:
        return None
    shingles = {" ".join(words[i : i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)}
    values = np.fromiter((_shingle_hash(s) for s in shingles), dtype=np.uint64, count=len(shingles))
    hashed = _mix(values[:, None] ^ _MASKS[None, :])
    return bytes(hashed.min(axis=0).astype("<u8").tobytes())


def similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity of the texts behind two signatures."""
    left = np.frombuffer(a, dtype="<u8")
    right = np.frombuffer(b, dtype="<u8")
    return float(np.count_nonzero(left == right)) / PERMUTATIONS


@dataclass(frozen=True)
class Seen:
    """A remembered post: its tenant, author key ("" when unknown) and MinHash signature."""

    tenant: str
    author: str
    signature: bytes


def _band_keys(seen: Seen) -> list[int]:
    width = ROWS * 8
    return [
        hash((seen.tenant, band, seen.signature[band * width : (band + 1) * width]))
        for band in range(BANDS)
    ]


class NearDuplicateIndex:
    """The most recent `capacity` signatures of all tenants, queryable by similarity."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._order: deque[Seen] = deque()
        self._buckets: dict[int, list[Seen]] = {}

    def __len__(self) -> int:
        return len(self._order)

    def matches_other_author(self, candidate: Seen) -> bool:
        """True when a remembered post of the same tenant by another (or unknown) author is similar."""
        for key in _band_keys(candidate):
            for seen in self._buckets.get(key, ()):
                same_author = bool(candidate.author) and seen.author == candidate.author
                if (
                    not same_author
                    and seen.tenant == candidate.tenant
                    and similarity(seen.signature, candidate.signature) >= SIMILARITY
                ):
                    return True
        return False

    def add(self, seen: Seen) -> None:
        self._order.append(seen)
        for key in _band_keys(seen):
            self._buckets.setdefault(key, []).append(seen)
        while len(self._order) > self.capacity:
            self._forget(self._order.popleft())

    def add_all(self, seen: Iterable[Seen]) -> None:
        for item in seen:
            self.add(item)

    def _forget(self, oldest: Seen) -> None:
        for key in _band_keys(oldest):
            bucket = self._buckets[key]
            # The oldest entry is first in its buckets, so this is cheap.
            bucket.pop(next(i for i, seen in enumerate(bucket) if seen is oldest))
            if not bucket:
                del self._buckets[key]


def mark_batch(index: NearDuplicateIndex, batch: list[Seen | None]) -> list[bool]:
    """Near-duplicate flags for a batch, against the index and earlier posts of the same batch.

    The index itself is left unchanged: the caller adds the posts only once they are stored.
    """
    within_batch = NearDuplicateIndex(capacity=max(1, len(batch)))
    flags = []
    for seen in batch:
        if seen is None:
            flags.append(False)
            continue
        flags.append(index.matches_other_author(seen) or within_batch.matches_other_author(seen))
        within_batch.add(seen)
    return flags
