"""Which posts of a failing batch to give up on, so that one bad post does not stop everyone's.

A batch that a downstream refuses as invalid, or that keeps failing, is tried one post at a time.
A post that keeps failing alone while other posts go through is what holds the queue up (a post that
makes a downstream crash, fail or time out): after `attempts` such failures it becomes a dead letter
with its last reason. A post that fails only while nothing goes through is waiting for a downstream
that is down, overloaded or refusing everyone; it stays pending however long that lasts, so an
outage dead-letters nothing. A post refused as invalid is a dead letter at once.

When none of the batch goes through in a round, one post from behind the batch is tried (the probe):
if it goes through, the downstreams work and the batch's failures count; otherwise a batch made only
of bad posts would hold the queue for ever.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)


class Tried(Enum):
    DONE = "done"
    REFUSED = "refused"
    FAILED = "failed"


@dataclass
class Isolated(Generic[T]):
    """What became of a batch's posts: went through, given up on (with the reason), still pending."""

    done: list[T] = field(default_factory=list)
    dead: dict[T, str] = field(default_factory=dict)
    waiting: list[T] = field(default_factory=list)


def isolate(
    items: Sequence[T],
    try_one: Callable[[T], tuple[Tried, str]],
    probe: Callable[[], bool],
    attempts: int,
    pause: Callable[[int], None],
) -> Isolated[T]:
    """Rounds of single tries, `pause(round)` between them, until every post is settled or 2 x
    attempts rounds have passed (a post's failures count only once another post went through, so it
    may need more rounds than attempts)."""
    result: Isolated[T] = Isolated()
    counted: dict[T, int] = {item: 0 for item in items}
    waiting = list(items)
    went_through = False
    for round_ in range(2 * attempts):
        if round_:
            pause(round_ - 1)
        still: list[T] = []
        for item in waiting:
            tried, reason = try_one(item)
            if tried is Tried.DONE:
                result.done.append(item)
                went_through = True
            elif tried is Tried.REFUSED:
                result.dead[item] = reason
            else:
                counted[item] += int(went_through)
                if counted[item] >= attempts:
                    result.dead[item] = f"{reason} (failed {attempts} times alone while other posts went through)"
                else:
                    still.append(item)
        waiting = still
        if not waiting:
            break
        went_through = went_through or probe()
    result.waiting = waiting
    return result
