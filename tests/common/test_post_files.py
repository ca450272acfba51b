"""Reading import files: both formats, exact error positions, and that one bad record spoils nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.devstack.post_files import CSV_COLUMNS, count_records, iter_posts

GOOD = {
    "id": "p1",
    "tenant": "city-transit",
    "channel": "mastodon",
    "source": "https://example.org/synthetic/mastodon/tags/x",
    "author": {"id": "a1", "name": "quiet_heron_1", "follower_count": 12},
    "text": "Line 1 is late again.",
    "language": "",
    "created_at": "2026-11-13T14:05:00Z",
    "url": "https://example.org/synthetic/mastodon/@quiet_heron_1/p1",
    "engagement": {"likes": 3, "shares": 1, "replies": 2},
    "geo": {"lat": 46.8, "lon": -29.9},
}


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_record_maps_every_field(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "posts.jsonl", [json.dumps(GOOD)])
    (record,) = list(iter_posts(path))
    assert record.error is None and record.line == 1
    post = record.post
    assert post is not None
    assert (post.id, post.tenant, post.channel, post.text) == ("p1", "city-transit", "mastodon", GOOD["text"])
    assert (post.author.name, post.author.follower_count) == ("quiet_heron_1", 12)
    assert post.created_at.ToJsonString() == "2026-11-13T14:05:00Z"
    assert (post.engagement.likes, post.engagement.shares, post.engagement.replies) == (3, 1, 2)
    assert (post.geo.lat, post.geo.lon) == (46.8, -29.9)
    assert post.HasField("geo")


def test_jsonl_bad_records_name_line_and_field_and_do_not_stop_the_import(tmp_path: Path) -> None:
    lines = [
        json.dumps(GOOD),
        "",
        json.dumps({**GOOD, "id": "p3", "created_at": "13/11/2026 14:05"}),
        "{not json",
        json.dumps({**GOOD, "id": "p5", "author": {"id": "a", "karma": 5}}),
        json.dumps({**GOOD, "id": "p6", "engagement": {"likes": "many"}}),
        "[1, 2]",
        json.dumps({**GOOD, "id": "p8", "mood": "angry"}),
        json.dumps({**GOOD, "id": "p9", "geo": "downtown"}),
        json.dumps({**GOOD, "id": "p10"}),
    ]
    path = write_lines(tmp_path / "mixed.jsonl", lines)
    records = list(iter_posts(path))
    assert count_records(path) == len(records) == 9
    errors = {record.line: record.error for record in records if record.error}
    assert errors == {
        3: "line 3: created_at: not an RFC 3339 timestamp (e.g. 2026-11-13T14:05:00Z)",
        4: "line 4: record: not valid JSON (Expecting property name enclosed in double quotes at column 2)",
        5: "line 5: author.karma: unknown field",
        6: "line 6: engagement.likes: not a whole number",
        7: "line 7: record: not a JSON object",
        8: "line 8: mood: unknown field",
        9: "line 9: geo: must be a JSON object",
    }
    assert [record.post.id for record in records if record.post] == ["p1", "p10"]
    assert all((record.post is None) != (record.error is None) for record in records)


def test_jsonl_accepts_the_protos_json_names_and_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    line = json.dumps({"id": "p1", "text": "hola", "author": {"followerCount": 7}, "createdAt": GOOD["created_at"]})
    path.write_bytes(b"\xef\xbb\xbf" + line.encode() + b"\n" + b'{"text": "caf\xe9"}\n')
    first, second = list(iter_posts(path))
    assert first.post is not None and first.post.author.follower_count == 7
    assert first.post.created_at.seconds > 0
    assert second.error == "line 2: record: not valid UTF-8 at byte 13"


def test_default_tenant_fills_only_records_without_one(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "t.jsonl", [json.dumps({"id": "a", "text": "x"}), json.dumps(GOOD)])
    tenants = [record.post.tenant for record in iter_posts(path, default_tenant="passport-office") if record.post]
    assert tenants == ["passport-office", "city-transit"]


def test_csv_with_quoting_multiline_text_and_missing_optional_columns(tmp_path: Path) -> None:
    path = tmp_path / "posts.csv"
    path.write_text(
        "id,tenant,channel,text,created_at,author_followers,likes,lat,lon\n"
        'c1,city-transit,open311,"Broken ramp, ""urgent""\nat Millbrook",2026-11-10T08:00:00Z,,4,46.81,-29.88\n'
        "c2,,webhook,Merci pour l'aide,,150,,,\n",
        encoding="utf-8",
    )
    assert count_records(path) == 2
    first, second = list(iter_posts(path, default_tenant="emergency-mgmt"))
    assert first.line == 2 and second.line == 4
    assert first.post is not None and second.post is not None
    assert first.post.text == 'Broken ramp, "urgent"\nat Millbrook'
    assert first.post.engagement.likes == 4 and first.post.HasField("geo")
    assert (first.post.geo.lat, first.post.geo.lon) == (46.81, -29.88)
    assert first.post.created_at.ToJsonString() == "2026-11-10T08:00:00Z"
    assert second.post.tenant == "emergency-mgmt" and second.post.author.follower_count == 150
    assert not second.post.HasField("geo") and not second.post.HasField("created_at")


def test_csv_bad_rows_name_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(
        b"id,text,created_at,likes,lat,lon\n"
        b"r1,fine,2026-11-10T08:00:00Z,1,,\n"
        b"r2,bad time,yesterday,,,\n"
        b"\n"
        b"r3,bad likes,,lots,,\n"
        b"r4,half a point,,,46.8,\n"
        b"r5,bad lat,,,north,-29.9\n"
        b"r6,caf\xe9,,,,\n"
        b"r7,too few cells\n"
        b"r8,last,,,,\n"
    )
    records = list(iter_posts(path))
    assert count_records(path) == len(records) == 8
    assert {record.line: record.error for record in records if record.error} == {
        3: "line 3: created_at: not an RFC 3339 timestamp (e.g. 2026-11-13T14:05:00Z)",
        5: "line 5: likes: not a whole number: 'lots'",
        6: "line 6: lon: must be given together with lat",
        7: "line 7: lat: not a number: 'north'",
        8: "line 8: record: not valid UTF-8",
        9: "line 9: record: has 2 cells but the header has 6 columns",
    }
    assert [record.post.id for record in records if record.post] == ["r1", "r8"]


def test_csv_header_problems_are_file_errors(tmp_path: Path) -> None:
    unknown = write_lines(tmp_path / "unknown.csv", ["id,text,sentiment", "1,x,neg"])
    with pytest.raises(ValueError, match=r"unknown CSV column.*sentiment"):
        list(iter_posts(unknown))
    no_text = write_lines(tmp_path / "no_text.csv", ["id,tenant", "1,x"])
    with pytest.raises(ValueError, match=r"lacks the required column.*text"):
        list(iter_posts(no_text))
    assert "text" in CSV_COLUMNS


def test_unknown_extension_is_refused_before_reading(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unsupported file type '\.xlsx'; expected \.jsonl or \.csv"):
        iter_posts(tmp_path / "posts.xlsx")
    with pytest.raises(ValueError, match=r"expected \.jsonl or \.csv"):
        count_records(tmp_path / "posts")


def test_reading_is_lazy(tmp_path: Path) -> None:
    """The first record is available before the rest of the file is even written."""
    path = write_lines(tmp_path / "stream.jsonl", [json.dumps(GOOD)])
    records = iter_posts(path)
    first = next(records)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({**GOOD, "id": "later"}) + "\n")
    assert first.post is not None and [record.post.id for record in records if record.post] == ["later"]
