"""Generates the synthetic example posts: examples/posts.jsonl and examples/posts.csv.

Everything is invented: Port Alder, its places, authors and posts. The week has quiet nights and
busy commutes, and it hides three planted facts that the demo's alert rules find (a Line 3 outage
spike, the #ReliefFee false rumour, posts with fake PII); see examples/README.md. The output depends
only on --seed and the counts, byte for byte, so that the committed files can be checked against it.

    python examples/generate.py [--seed 7] [--out examples] [--count 3000] [--csv-count 50]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from phrasebook import LANGUAGES, SENTIMENTS, PhraseGroup, compose, fill
from phrasebook.asides import ASIDES
from phrasebook.common import COMMON
from phrasebook.emergency import EMERGENCY
from phrasebook.passport import PASSPORT
from phrasebook.planted import (
    CAMPAIGN,
    CAMPAIGN_PREFIXES,
    CAMPAIGN_SUFFIXES,
    OUTAGE,
    PII_POSTS,
    REBUTTALS,
    RUMOUR,
    RUMOUR_HASHTAG,
)
from phrasebook.topics import RUMOUR_TOPICS, SERVICES, pii_topics, topics_of
from phrasebook.transit import TRANSIT

from civic.listening.v1 import post_pb2

WEEK_START = datetime(2026, 11, 9, tzinfo=UTC)
DAYS = 7
SPIKE_START = datetime(2026, 11, 13, 14, tzinfo=UTC)
SPIKE_HOURS = 4
# Negative outage posts that open with an insult aimed at the agency, or with an angry outburst.
ABUSIVE_SHARE = 0.15
OUTBURST_SHARE = 0.6
RUMOUR_START = datetime(2026, 11, 11, tzinfo=UTC)
RUMOUR_DAYS = 2
DEFAULT_COUNT = 3000
SYNTHETIC = "https://example.org/synthetic"

# Relative activity per hour of day (UTC is Port Alder's local time): quiet nights, two commute peaks.
HOURLY = (0.15, 0.1, 0.07, 0.07, 0.1, 0.3, 0.7, 1.4, 1.8, 1.3, 1.0, 1.0,
          1.1, 1.0, 1.0, 1.1, 1.3, 1.7, 1.6, 1.2, 0.9, 0.7, 0.5, 0.3)
LANGUAGE_WEIGHTS = (60, 20, 20)
LABELLED_LANGUAGE_SHARE = 0.05
CITY_CENTRE = (46.80, -29.90)  # open ocean, so that no point can be mistaken for a real address


@dataclass(frozen=True)
class Tenant:
    share: float
    sentiment_weights: tuple[int, int, int]
    channel_weights: dict[str, int]
    phrases: dict[str, PhraseGroup]
    hashtag_source: str
    official: str


TENANTS = {
    "city-transit": Tenant(0.45, (40, 38, 22), {"mastodon": 35, "reddit": 25, "open311": 20, "rss": 8,
                                                 "webhook": 12}, TRANSIT, "PortAlderTransit",
                           "Port Alder Transit (synthetic official account)"),
    "passport-office": Tenant(0.30, (40, 35, 25), {"mastodon": 30, "reddit": 35, "rss": 10, "webhook": 25},
                              PASSPORT, "passport", "Port Alder Passport Office (synthetic official account)"),
    "emergency-mgmt": Tenant(0.25, (30, 45, 25), {"mastodon": 40, "reddit": 20, "rss": 15, "open311": 15,
                                                  "webhook": 10}, EMERGENCY, "PortAlderAlert",
                             "Port Alder Emergency Management (synthetic official account)"),
}
FEEDS = {"en": ("port-alder-gazette", "Port Alder Gazette (synthetic)"),
         "es": ("el-diario-de-alder", "El Diario de Alder (sintético)"),
         "fr": ("le-courrier-d-alder", "Le Courrier d'Alder (synthétique)")}
HANDLE_WORDS = {
    "en": (("quiet", "rainy", "sleepy", "brave", "tiny", "lucky", "grumpy", "sunny", "misty", "curious"),
           ("heron", "otter", "badger", "puffin", "walrus", "fox", "marmot", "gecko", "lynx", "beaver")),
    "es": (("tranquila", "lluvioso", "valiente", "pequeña", "curioso", "soleada", "dormilón", "feliz"),
           ("garza", "nutria", "tejón", "lince", "zorro", "gaviota", "erizo", "búho")),
    "fr": (("calme", "pluvieux", "brave", "petite", "curieux", "ensoleillée", "grognon", "rêveuse"),
           ("héron", "loutre", "blaireau", "lynx", "renard", "mouette", "hérisson", "chouette")),
}
AUTHORS_PER_LANGUAGE = {"en": 700, "es": 260, "fr": 260}


@dataclass(frozen=True)
class Author:
    id: str
    name: str
    follower_count: int


@dataclass(frozen=True)
class Draft:
    """A post before it gets its id: ids follow time order, which is known only at the end."""

    created_at: datetime
    tenant: str
    channel: str
    language: str
    text: str
    author: Author
    sentiment: str = "neutral"
    labelled: bool = False
    shares_boost: float = 1.0
    # The agency topics the post is about (examples/phrasebook/topics.py): the ground truth.
    topics: tuple[str, ...] = ()


class Week:
    """Shared draws (times, authors, channels) so that each kind of post reads the same way."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.authors = {language: self._authors(language) for language in LANGUAGES}
        self.author_weights = {
            language: _cumulative([1 / (rank + 1) ** 0.8 for rank in range(len(pool))])
            for language, pool in self.authors.items()
        }

    def _authors(self, language: str) -> list[Author]:
        adjectives, animals = HANDLE_WORDS[language]
        pool = []
        for number in range(AUTHORS_PER_LANGUAGE[language]):
            name = f"{self.rng.choice(adjectives)}_{self.rng.choice(animals)}_{number}"
            followers = int(min(2_000_000, 20 * self.rng.paretovariate(1.15)))
            pool.append(Author(f"syn-{language}-{number:04d}", name, followers))
        return pool

    def author(self, language: str) -> Author:
        pool = self.authors[language]
        return self.rng.choices(pool, cum_weights=self.author_weights[language])[0]

    def distinct_authors(self, language: str, count: int) -> list[Author]:
        return self.rng.sample(self.authors[language], count)

    def language(self) -> str:
        return self.rng.choices(LANGUAGES, weights=LANGUAGE_WEIGHTS)[0]

    def time_in(self, start: datetime, days: int, late_weight: float = 1.0) -> datetime:
        """A time on one of `days` days from `start`, following the daily cycle; weekends are calmer."""
        while True:
            day = self.rng.choices(range(days), weights=[late_weight**index for index in range(days)])[0]
            hour = self.rng.choices(range(24), weights=HOURLY)[0]
            moment = start + timedelta(days=day, hours=hour, seconds=self.rng.randrange(3600))
            if moment.weekday() < 5 or self.rng.random() < 0.7:
                return moment

    def channel(self, weights: dict[str, int]) -> str:
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]


def background(week: Week, tenant_name: str, count: int) -> list[Draft]:
    tenant = TENANTS[tenant_name]
    rng = week.rng
    drafts = []
    for _ in range(count):
        language = week.language()
        sentiment = rng.choices(SENTIMENTS, weights=tenant.sentiment_weights)[0]
        pieces: list[str] = []
        text = compose(tenant.phrases[language], COMMON[language], ASIDES[language], sentiment, rng, pieces)
        drafts.append(Draft(week.time_in(WEEK_START, DAYS), tenant_name, week.channel(tenant.channel_weights),
                            language, text, week.author(language), sentiment,
                            rng.random() < LABELLED_LANGUAGE_SHARE, topics=topics_of(tenant_name, pieces)))
    return drafts


def outage_spike(week: Week, count: int, tone: random.Random) -> list[Draft]:
    """The Line 3 outage: a burst that ramps up fast after 14:00 and fades by 18:00.

    Its complaints are angry: most open with an outburst, some with an insult aimed at the transit
    agency, so that the tone model sees the anger surge and the abuse. Those draws come from `tone`,
    not the week's generator, so every other post stays as it was.
    """
    rng = week.rng
    drafts = []
    for _ in range(count):
        language = week.language()
        sentiment = rng.choices(SENTIMENTS, weights=(85, 12, 3))[0]
        offset = min(rng.triangular(0, SPIKE_HOURS * 3600, 3600), SPIKE_HOURS * 3600 - 1)
        pieces: list[str] = []
        text = compose(OUTAGE[language], COMMON[language], ASIDES[language], sentiment, rng, pieces)
        if sentiment == "negative":
            roll = tone.random()
            if roll < ABUSIVE_SHARE:
                text = f"{tone.choice(OUTAGE[language]['abuse'])} {text}"
            elif roll < ABUSIVE_SHARE + OUTBURST_SHARE:
                text = f"{tone.choice(OUTAGE[language]['outburst'])} {text}"
        channel = week.channel({"mastodon": 55, "reddit": 30, "open311": 10, "webhook": 5})
        drafts.append(Draft(SPIKE_START + timedelta(seconds=int(offset)), "city-transit", channel, language,
                            text, week.author(language), sentiment, shares_boost=2.0,
                            topics=topics_of("city-transit", pieces)))
    return drafts


def relief_rumour(week: Week, claims: int, copies_per_language: dict[str, int]) -> list[Draft]:
    """The #ReliefFee rumour: varied claims, a copy-paste campaign, and a few official rebuttals."""
    rng = week.rng
    drafts = []

    def rumour_draft(language: str, text: str, author: Author, sentiment: str, boost: float) -> Draft:
        channel = week.channel({"mastodon": 60, "reddit": 30, "webhook": 10})
        moment = week.time_in(RUMOUR_START, RUMOUR_DAYS, late_weight=1.5)
        return Draft(moment, "emergency-mgmt", channel, language, f"{text} {RUMOUR_HASHTAG}", author, sentiment,
                     shares_boost=boost, topics=RUMOUR_TOPICS)

    for _ in range(claims):
        language = week.language()
        text = fill(rng.choice(RUMOUR[language]["claim"]), RUMOUR[language], rng)
        drafts.append(rumour_draft(language, text, week.author(language), "negative", 3.0))
    for language, copies in copies_per_language.items():
        for author in week.distinct_authors(language, copies):
            text = f"{rng.choice(CAMPAIGN_PREFIXES)}{CAMPAIGN[language]}{rng.choice(CAMPAIGN_SUFFIXES)}"
            drafts.append(rumour_draft(language, text, author, "negative", 4.0))
    official = official_author("emergency-mgmt")
    for language, texts in REBUTTALS.items():
        for text in texts:
            moment = RUMOUR_START + timedelta(hours=rng.randrange(14, 44), seconds=rng.randrange(3600))
            if moment.hour < 8:
                moment += timedelta(hours=8)
            drafts.append(Draft(moment, "emergency-mgmt", "mastodon", language, f"{text} {RUMOUR_HASHTAG}",
                                official, "neutral", labelled=True, shares_boost=5.0, topics=RUMOUR_TOPICS))
    return drafts


def pii_posts(week: Week) -> list[Draft]:
    return [
        Draft(week.time_in(WEEK_START, DAYS), tenant, channel, language, text, week.author(language), "negative",
              topics=pii_topics(text))
        for tenant, language, channel, text in PII_POSTS
    ]


def official_author(tenant: str) -> Author:
    return Author(f"syn-official-{tenant}", TENANTS[tenant].official, 48_000)


def assign(week: Week, drafts: list[Draft], id_prefix: str) -> list[tuple[dict[str, Any], Draft]]:
    """Orders drafts by time and turns them into records shaped like the Post message's JSON, each
    with the draft it came from."""
    ordered = sorted(drafts, key=lambda d: (d.created_at, d.tenant, d.channel, d.text, d.author.id))
    return [(record(week, draft, f"{id_prefix}{number:06d}"), draft) for number, draft in enumerate(ordered, 1)]


def truth(post: dict[str, Any], draft: Draft) -> dict[str, Any]:
    """What a post is about: its agency's public service and the agency topics it concerns."""
    return {"id": post["id"], "tenant": post["tenant"], "service": SERVICES[post["tenant"]],
            "topics": list(draft.topics)}


def record(week: Week, draft: Draft, post_id: str) -> dict[str, Any]:
    rng = week.rng
    social = draft.channel in ("mastodon", "reddit")
    author = draft.author
    if draft.channel == "rss":
        slug, title = FEEDS[draft.language]
        author = Author(f"syn-feed-{slug}", title, 0)
    post: dict[str, Any] = {
        "id": post_id,
        "tenant": draft.tenant,
        "channel": draft.channel,
        "source": source(draft),
        "author": {"id": author.id, "name": author.name,
                   "follower_count": author.follower_count if social else 0},
        "text": draft.text,
        "language": draft.language if draft.labelled else "",
        "created_at": draft.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "url": url(draft, author, post_id),
        "engagement": engagement(rng, author.follower_count, draft) if social else
        {"likes": 0, "shares": 0, "replies": 0},
    }
    if draft.channel == "open311":
        lat, lon = PLACE_POINTS[rng.randrange(len(PLACE_POINTS))]
        post["geo"] = {"lat": round(rng.gauss(lat, 0.002), 5), "lon": round(rng.gauss(lon, 0.003), 5)}
    json_format.ParseDict(post, post_pb2.Post())  # the contract is the judge of the shape
    return post


def source(draft: Draft) -> str:
    if draft.channel == "mastodon":
        return f"{SYNTHETIC}/mastodon/tags/{TENANTS[draft.tenant].hashtag_source}"
    if draft.channel == "reddit":
        return "r/PortAlder"
    if draft.channel == "rss":
        return f"{SYNTHETIC}/feeds/{FEEDS[draft.language][0]}.xml"
    if draft.channel == "open311":
        return f"{SYNTHETIC}/open311/v2/requests.json"
    return "feedback-form"


def url(draft: Draft, author: Author, post_id: str) -> str:
    paths = {
        "mastodon": f"mastodon/@{author.name}/{post_id}",
        "reddit": f"reddit/r/PortAlder/comments/{post_id}",
        "rss": f"news/{post_id}",
        "open311": f"open311/requests/{post_id}",
        "webhook": f"feedback/{post_id}",
    }
    return f"{SYNTHETIC}/{paths[draft.channel]}"


def engagement(rng: random.Random, followers: int, draft: Draft) -> dict[str, int]:
    """Engagement grows with reach; angry posts get more replies, alarming ones more shares."""
    scale = rng.lognormvariate(0, 1) * (1 + followers**0.5 / 4)
    replies_factor = 0.6 if draft.sentiment == "negative" else 0.25
    return {
        "likes": int(scale * 1.5),
        "shares": int(scale * 0.3 * draft.shares_boost),
        "replies": int(scale * replies_factor),
    }


def _place_points() -> list[tuple[float, float]]:
    layout = random.Random("port-alder-places")
    return [(CITY_CENTRE[0] + layout.uniform(-0.035, 0.035), CITY_CENTRE[1] + layout.uniform(-0.05, 0.05))
            for _ in COMMON["en"]["place"]]


PLACE_POINTS = _place_points()


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


def generate_posts(seed: int, count: int) -> list[tuple[dict[str, Any], Draft]]:
    """`count` posts; the planted facts keep their shape at any count and scale with it."""
    week = Week(random.Random(seed))
    scale = count / DEFAULT_COUNT
    copies = {"en": max(2, round(18 * scale)), "es": max(1, round(6 * scale)), "fr": max(1, round(6 * scale))}
    drafts = outage_spike(week, max(8, round(340 * scale)), random.Random(f"{seed}-tone"))
    drafts += relief_rumour(week, max(6, round(58 * scale)), copies)
    drafts += pii_posts(week)
    remaining = count - len(drafts)
    tenant_names = list(TENANTS)
    for index, name in enumerate(tenant_names):
        share = round(remaining * TENANTS[name].share)
        drafts += background(week, name, share if index < len(tenant_names) - 1 else count - len(drafts))
    return assign(week, drafts, "syn-")


def generate_csv_rows(seed: int, count: int) -> list[dict[str, str]]:
    """A small flat sample with its own ids, so that importing both files adds posts, not duplicates."""
    week = Week(random.Random(f"{seed}-csv"))
    per_tenant = [count // 3 + (1 if index < count % 3 else 0) for index in range(3)]
    drafts = [draft for name, n in zip(TENANTS, per_tenant, strict=True) for draft in background(week, name, n)]
    rows = []
    for post, _ in assign(week, [replace(d, labelled=d.labelled or d.channel == "rss") for d in drafts], "syn-csv-"):
        geo = post.get("geo", {})
        social = post["channel"] in ("mastodon", "reddit")
        rows.append({
            "id": post["id"], "tenant": post["tenant"], "channel": post["channel"], "source": post["source"],
            "author_id": post["author"]["id"], "author_name": post["author"]["name"],
            "author_followers": str(post["author"]["follower_count"]) if social else "",
            "text": post["text"], "language": post["language"], "created_at": post["created_at"],
            "url": post["url"],
            **{key: str(value) if social else "" for key, value in post["engagement"].items()},
            "lat": str(geo.get("lat", "")), "lon": str(geo.get("lon", "")),
        })
    return rows


def write(out: Path, seed: int, count: int, csv_count: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    posts = generate_posts(seed, count)
    with (out / "posts.jsonl").open("w", encoding="utf-8", newline="\n") as handle:
        for post, _ in posts:
            handle.write(json.dumps(post, ensure_ascii=False) + "\n")
    with (out / "posts.topics.jsonl").open("w", encoding="utf-8", newline="\n") as handle:
        for post, draft in posts:
            handle.write(json.dumps(truth(post, draft), ensure_ascii=False) + "\n")
    rows = generate_csv_rows(seed, csv_count)
    with (out / "posts.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                        help="folder for posts.jsonl, posts.topics.jsonl (what each post is about) and "
                             "posts.csv (default: this script's folder)")
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help="posts in posts.jsonl (>= 200)")
    parser.add_argument("--csv-count", type=int, default=50, help="rows in posts.csv (>= 3)")
    args = parser.parse_args()
    if args.count < 200 or args.csv_count < 3:
        parser.error("--count must be at least 200 and --csv-count at least 3")
    write(args.out, args.seed, args.count, args.csv_count)


if __name__ == "__main__":
    main()
