"""The committed example data: reproducible from its seed, readable by the importer, and carrying the
planted facts that the demo's alert rules rely on."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest
import yaml

from civic.listening.v1 import post_pb2
from services.common.language import detect_language
from services.devstack.post_files import count_records, iter_posts

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TENANTS = {"city-transit", "passport-office", "emergency-mgmt"}
CHANNELS = {"mastodon", "reddit", "rss", "open311", "webhook"}
WEEK = (datetime(2026, 11, 9, tzinfo=UTC), datetime(2026, 11, 16, tzinfo=UTC))
SPIKE = (datetime(2026, 11, 13, 14, tzinfo=UTC), datetime(2026, 11, 13, 18, tzinfo=UTC))
RUMOUR = (datetime(2026, 11, 11, tzinfo=UTC), datetime(2026, 11, 13, tzinfo=UTC))
LINE_3 = re.compile(r"\b(line|línea|ligne) 3\b", re.IGNORECASE)


def generate(out: Path, *args: str) -> None:
    subprocess.run([sys.executable, str(EXAMPLES / "generate.py"), "--out", str(out), *args], check=True)


def created(post: post_pb2.Post) -> datetime:
    return post.created_at.ToDatetime(tzinfo=UTC)


@pytest.fixture(scope="module")
def posts() -> list[post_pb2.Post]:
    path = EXAMPLES / "posts.jsonl"
    records = list(iter_posts(path))
    assert [record.error for record in records if record.error] == []
    assert len(records) == count_records(path)
    return [record.post for record in records if record.post is not None]


@pytest.fixture(scope="module")
def languages(posts: list[post_pb2.Post]) -> list[str]:
    return [detect_language(post.text)[0] for post in posts]


def test_generator_is_deterministic_and_seeded(tmp_path: Path) -> None:
    generate(tmp_path / "a", "--count", "400", "--csv-count", "10")
    generate(tmp_path / "b", "--count", "400", "--csv-count", "10")
    generate(tmp_path / "c", "--count", "400", "--csv-count", "10", "--seed", "8")
    for name in ("posts.jsonl", "posts.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes()
    assert count_records(tmp_path / "a" / "posts.jsonl") == 400
    assert count_records(tmp_path / "a" / "posts.csv") == 10


def test_committed_files_are_the_generators_default_output(tmp_path: Path) -> None:
    generate(tmp_path)
    for name in ("posts.jsonl", "posts.topics.jsonl", "posts.csv"):
        assert (tmp_path / name).read_bytes() == (EXAMPLES / name).read_bytes(), f"regenerate examples/{name}"


def test_every_post_is_complete_synthetic_and_in_the_week(posts: list[post_pb2.Post]) -> None:
    assert 2500 <= len(posts) <= 3500
    assert len({(post.tenant, post.channel, post.id) for post in posts}) == len(posts)
    assert {post.tenant for post in posts} == TENANTS
    assert {post.channel for post in posts} == CHANNELS
    times = [created(post) for post in posts]
    assert times == sorted(times) and WEEK[0] <= times[0] and times[-1] < WEEK[1]
    for post in posts:
        assert post.id and post.text and post.source and post.author.id and post.author.name
        assert post.url.startswith("https://example.org/synthetic/")
        assert post.HasField("geo") == (post.channel == "open311")
        if post.HasField("geo"):
            assert 46.7 < post.geo.lat < 46.9 and -30.0 < post.geo.lon < -29.8


def test_languages_are_mixed_and_mostly_left_for_detection(
    posts: list[post_pb2.Post], languages: list[str]
) -> None:
    labelled = [post for post in posts if post.language]
    assert 0 < len(labelled) < 0.1 * len(posts)
    share = {code: count / len(posts) for code, count in Counter(languages).items()}
    assert 0.5 < share["en"] < 0.7 and 0.13 < share["es"] < 0.27 and 0.13 < share["fr"] < 0.27
    mislabelled = [post.text for post, code in zip(posts, languages, strict=True) if post.language not in ("", code)]
    assert len(mislabelled) <= 0.05 * len(labelled)


def test_texts_are_diverse(posts: list[post_pb2.Post]) -> None:
    ordinary = [post.text for post in posts if "#ReliefFee" not in post.text]
    assert len(set(ordinary)) > 0.97 * len(ordinary)
    assert max(Counter(ordinary).values()) <= 3


def test_ordinary_posts_rarely_look_like_copies(posts: list[post_pb2.Post]) -> None:
    """Template-built posts must not look like a copy-paste campaign to near-duplicate detection."""
    for tenant in sorted(TENANTS):
        shingles = [
            set(pairwise(words))
            for post in posts
            if post.tenant == tenant and "#ReliefFee" not in post.text and not LINE_3.search(post.text)
            for words in [re.findall(r"\w+", post.text.lower())]
        ][:500]
        with_twin = sum(
            1
            for i, mine in enumerate(shingles)
            if any(len(mine & other) >= 0.6 * len(mine | other) for j, other in enumerate(shingles) if i != j)
        )
        assert with_twin < 0.15 * len(shingles), tenant


def test_nights_are_quiet(posts: list[post_pb2.Post]) -> None:
    by_hour = Counter(created(post).hour for post in posts)
    assert sum(by_hour[hour] for hour in range(1, 5)) * 5 < sum(by_hour[hour] for hour in range(8, 12))


def test_follower_counts_are_heavy_tailed(posts: list[post_pb2.Post]) -> None:
    followers = [post.author.follower_count for post in posts if post.channel in ("mastodon", "reddit")]
    assert max(followers) > 50 * statistics.median(followers)


def test_line_3_outage_is_a_volume_spike_of_city_transit(posts: list[post_pb2.Post]) -> None:
    transit = [post for post in posts if post.tenant == "city-transit"]
    per_hour = Counter(created(post).replace(minute=0, second=0) for post in transit)
    hours = [per_hour.get(WEEK[0].replace(day=9 + day, hour=hour), 0) for day in range(7) for hour in range(24)]
    median_hour = statistics.median(hours)
    in_spike = [post for post in transit if SPIKE[0] <= created(post) < SPIKE[1]]
    outage = [post for post in in_spike if LINE_3.search(post.text)]
    assert 300 <= len(outage) <= 400
    assert len(in_spike) / 4 > 8 * median_hour
    assert not [post for post in transit if LINE_3.search(post.text) and post not in in_spike]


def test_line_3_complaints_are_angry_and_some_abusive(posts: list[post_pb2.Post]) -> None:
    outage = [post.text for post in posts if LINE_3.search(post.text)]
    angry = re.compile(r"FURIOUS|FURIOSA|FURIEUX|livid|outrageous|indignante|scandaleux|fuming|inaceptable|"
                       r"inadmissible|unacceptable|garbage|angry|hors de moi|hierve|ras le bol|vergüenza", re.I)
    abusive = re.compile(r"idiot|moron|clowns|inútiles|imbécil|incapables|abrutis|crétin", re.I)
    assert 0.4 * len(outage) < sum(1 for text in outage if angry.search(text)) < 0.8 * len(outage)
    assert 0.08 * len(outage) < sum(1 for text in outage if abusive.search(text)) < 0.25 * len(outage)
    assert not [post for post in posts if abusive.search(post.text) and not LINE_3.search(post.text)]


def test_relief_fee_rumour_is_a_multilingual_copy_paste_campaign(
    posts: list[post_pb2.Post], languages: list[str]
) -> None:
    rumour = [(post, code) for post, code in zip(posts, languages, strict=True) if "#ReliefFee" in post.text]
    assert 60 <= len(rumour) <= 120
    assert {post.tenant for post, _ in rumour} == {"emergency-mgmt"}
    assert all(RUMOUR[0] <= created(post) < RUMOUR[1] for post, _ in rumour)
    assert {code for _, code in rumour} == {"en", "es", "fr"}
    authors_per_body: dict[str, set[str]] = {}
    for post, _ in rumour:
        body = re.sub(r"^(RT |Copied: |>> )|[!\s🙏⚠️]+|#ReliefFee", "", post.text)
        authors_per_body.setdefault(body, set()).add(post.author.id)
    assert sum(1 for authors in authors_per_body.values() if len(authors) >= 5) >= 3
    rebuttals = [post for post, _ in rumour if "official account" in post.author.name]
    assert 3 <= len(rebuttals) < 10


def test_a_handful_of_posts_carry_fake_pii(posts: list[post_pb2.Post]) -> None:
    email = re.compile(r"[\w.]+@example\.com")
    phone = re.compile(r"\+1[ -]555[ -]01\d\d")
    card = re.compile(r"4111[ -]?1111[ -]?1111[ -]?1111")
    with_pii = [post for post in posts if email.search(post.text) or phone.search(post.text) or card.search(post.text)]
    assert 5 <= len(with_pii) <= 15
    assert {post.tenant for post in with_pii} == TENANTS
    assert any(card.search(post.text) for post in with_pii)
    assert not [post for post in posts if re.search(r"\b\d{3}-\d{2}-\d{4}\b", post.text)]


def test_csv_sample_imports_cleanly() -> None:
    records = list(iter_posts(EXAMPLES / "posts.csv"))
    assert 40 <= len(records) == count_records(EXAMPLES / "posts.csv")
    assert [record.error for record in records if record.error] == []
    csv_posts = [record.post for record in records if record.post]
    assert {post.tenant for post in csv_posts} == TENANTS
    assert all(post.id.startswith("syn-csv-") for post in csv_posts)
    assert any(post.HasField("geo") for post in csv_posts)


def test_every_post_has_its_ground_truth_topics(posts: list[post_pb2.Post]) -> None:
    """What each post is about (examples/posts.topics.jsonl): one line per post, in the same order, its
    agency's service, and at least one of its agency's topics (examples/topics/<tenant>.yaml)."""
    truth = [json.loads(line) for line in (EXAMPLES / "posts.topics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [row["id"] for row in truth] == [post.id for post in posts]
    names = {tenant: set(yaml.safe_load((EXAMPLES / "topics" / f"{tenant}.yaml").read_text(encoding="utf-8")))
             for tenant in TENANTS}
    services = {"city-transit": "public_transit", "passport-office": "passports", "emergency-mgmt": "emergencies"}
    for post, row in zip(posts, truth, strict=True):
        assert row["tenant"] == post.tenant and row["service"] == services[post.tenant]
        assert row["topics"] and set(row["topics"]) <= names[post.tenant], (post.id, post.text, row)
    per_tenant = Counter((row["tenant"], topic) for row in truth for topic in row["topics"])
    assert all(per_tenant[(tenant, name)] >= 30 for tenant in TENANTS for name in names[tenant]), per_tenant
    assert sum(len(row["topics"]) > 1 for row in truth) > 300  # posts about two services exist


def test_every_template_is_labelled_with_its_topics() -> None:
    """A template without a label would make posts built from it look about nothing."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        from phrasebook.emergency import EMERGENCY
        from phrasebook.passport import PASSPORT
        from phrasebook.planted import OUTAGE
        from phrasebook.topics import PIECE_TOPICS
        from phrasebook.transit import TRANSIT
    finally:
        sys.path.remove(str(EXAMPLES))
    for tenant, groups in (("city-transit", (TRANSIT, OUTAGE)), ("passport-office", (PASSPORT,)),
                           ("emergency-mgmt", (EMERGENCY,))):
        for group in groups:
            for phrases in group.values():
                for sentiment in ("negative", "neutral", "positive"):
                    for template in phrases.get(sentiment, ()):
                        assert template in PIECE_TOPICS[tenant], (tenant, template)
