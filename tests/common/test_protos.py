"""The .proto files are the public contract: the importable code must match them, and they must lint."""

from __future__ import annotations

import importlib
import importlib.util
import re
import subprocess
from pathlib import Path

import pytest

from civic.listening.v1 import post_pb2
from services.alerting import rules, silences, webhooks
from services.alerting import service as alerting_service
from services.common import boolean_query
from services.common.post_validation import (
    DEFAULT_MAX_CHARS,
    EARLIEST_FILTER,
    EARLIEST_POST,
    LATEST_TIME,
    MAX_CHARS,
    MAX_COUNT,
    MAX_ITEMS,
    MAX_TEXT_CHARS,
    TEXT_FIELDS,
    day,
)
from services.common.settings import Settings
from services.ingestion import dead_letters, post_fields, sources
from services.search import aggregations, indexing, queries, removal, replay, semantic

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("protos_generate", REPO / "protos" / "generate.py")
assert _spec is not None and _spec.loader is not None
protos_generate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(protos_generate)
generate, proto_files = protos_generate.generate, protos_generate.proto_files


def installed_package_dir() -> Path:
    module = importlib.import_module("civic.listening.v1.post_pb2")
    return Path(module.__file__).parent  # type: ignore[arg-type]


def test_generated_code_is_not_stale(tmp_path: Path) -> None:
    generate(tmp_path)
    fresh_dir = tmp_path / "civic" / "listening" / "v1"
    fresh = {p.name: p.read_bytes() for p in fresh_dir.iterdir() if p.is_file()}
    installed_dir = installed_package_dir()
    installed = {p.name: p.read_bytes() for p in installed_dir.iterdir() if p.is_file()}
    assert sorted(fresh) == sorted(installed), "run `make proto`: generated files differ in name"
    stale = [name for name in fresh if fresh[name] != installed[name]]
    assert not stale, f"generated code is stale, run `make proto`: {stale}"


def test_every_proto_is_generated() -> None:
    names = {p.stem for p in proto_files()}
    assert {"post", "ingestion", "inference", "search", "alerting"} <= names
    for name in names:
        importlib.import_module(f"civic.listening.v1.{name}_pb2_grpc")


def test_buf_lint_passes() -> None:
    buf = REPO / ".tools" / "node_modules" / ".bin" / "buf"
    if not buf.exists():
        pytest.fail("buf is not installed: `make test` installs it into .tools/")
    result = subprocess.run([str(buf), "lint"], cwd=REPO / "protos", capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_lint_catches_an_uncommented_field(tmp_path: Path) -> None:
    """Guards the lint configuration itself: a missing comment must be an error."""
    buf = REPO / ".tools" / "node_modules" / ".bin" / "buf"
    if not buf.exists():
        pytest.fail("buf is not installed: `make test` installs it into .tools/")
    (tmp_path / "buf.yaml").write_text((REPO / "protos" / "buf.yaml").read_text())
    target = tmp_path / "civic" / "listening" / "v1"
    target.mkdir(parents=True)
    (target / "x.proto").write_text(
        'syntax = "proto3";\n\n// Package comment.\npackage civic.listening.v1;\n\n'
        "// A message.\nmessage Thing {\n  string name = 1;\n}\n"
    )
    result = subprocess.run([str(buf), "lint"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode != 0
    assert "name" in result.stdout + result.stderr


# --- the limits the code enforces are the ones the comments document ------------------------------

PROTOS = REPO / "protos" / "civic" / "listening" / "v1"
_FIELD = re.compile(r"(?:repeated [\w.]+|map<[^>]+>|[\w.]+) (\w+) = \d+;")


def comments(proto: str, message: str) -> dict[str, str]:
    """The comment above the message (key "") and above each of its fields, each joined on one line."""
    text = (PROTOS / proto).read_text()
    start = text.index(f"\nmessage {message} {{")
    found = {"": " ".join(reversed(_comment_run(text[:start])))}
    lines: list[str] = []
    for line in text[start:].splitlines()[2:]:
        line = line.strip()
        if line == "}":
            break
        if line.startswith("//"):
            lines.append(line[2:].strip())
        elif matched := _FIELD.fullmatch(line):
            found[matched.group(1)] = " ".join(lines)
            lines = []
    return found


def _comment_run(before: str) -> list[str]:
    """The comment lines just above a declaration, last first."""
    run = []
    for line in reversed(before.rstrip("\n").splitlines()):
        if not line.strip().startswith("//"):
            break
        run.append(line.strip()[2:].strip())
    return run


def documented(proto: str, message: str, field: str, *expected: str) -> None:
    comment = comments(proto, message)[field]
    for words in expected:
        assert words in comment, f"{proto} {message}.{field or '(message)'} should say {words!r}: {comment!r}"


def test_every_string_field_of_a_post_documents_its_length() -> None:
    for message, prefix in ((post_pb2.Post, ""), (post_pb2.Author, "author.")):
        for field in message.DESCRIPTOR.fields:
            if field.type != field.TYPE_STRING:
                continue
            path = prefix + field.name
            limit = MAX_TEXT_CHARS if path in TEXT_FIELDS else MAX_CHARS.get(path)
            if path in ("tenant", "channel"):
                words = "1 to 63" if path == "tenant" else "1 to 32"
            else:
                assert limit is not None, f"Post.{path} has no length limit of its own in post_validation.MAX_CHARS"
                words = f"{limit:,} characters"
            documented("post.proto", message.DESCRIPTOR.name, field.name, words)


def test_the_limits_of_each_rpc_are_documented() -> None:
    count, earliest, latest = f"{MAX_COUNT:,}", day(EARLIEST_POST), day(LATEST_TIME)
    documented("post.proto", "Post", "", count, earliest, latest, f"{DEFAULT_MAX_CHARS:,} characters",
               f"at most {MAX_ITEMS} values", "999,999,999")
    documented("post.proto", "Author", "follower_count", count)
    documented("post.proto", "Engagement", "", count)
    documented("post.proto", "Post", "created_at", earliest, "one day ahead")
    documented("ingestion.proto", "IngestPostsRequest", "posts", f"{Settings().max_batch_posts:,}")
    documented("ingestion.proto", "ListFailedPostsRequest", "post_ids", f"{dead_letters.MAX_POST_IDS:,}")
    documented("ingestion.proto", "ListFailedPostsRequest", "page_size", f"1 to {dead_letters.MAX_PAGE_SIZE}")
    documented("ingestion.proto", "ReplayFailedPostsRequest", "post_ids", f"{dead_letters.MAX_POST_IDS:,}",
               f"{dead_letters.MAX_REPLAY:,}")
    documented("ingestion.proto", "SourceSpec", "name", f"1-{sources.MAX_NAME_CHARS}")
    documented("ingestion.proto", "SourceSpec", "url", f"{sources.MAX_URL_CHARS:,} characters")
    documented("ingestion.proto", "SourceSpec", "params", f"At most {sources.MAX_PARAMS}",
               f"{sources.MAX_PARAM_NAME_CHARS} characters", f"{sources.MAX_PARAM_CHARS:,}")
    documented("ingestion.proto", "SourceSpec", "secret", f"{sources.MAX_SECRET_CHARS:,} characters")
    documented("search.proto", "IndexPostsRequest", "posts", f"{indexing.MAX_POSTS_PER_CALL:,}")
    documented("search.proto", "RemovePostsRequest", "posts", f"1 to {removal.MAX_POSTS:,}")
    documented("ingestion.proto", "DeletePostsRequest", "posts", f"1 to {Settings().max_batch_posts:,}")
    documented("post.proto", "Post", "hashtags", f"At most {post_fields.MAX_HASHTAGS}")
    documented("post.proto", "Post", "mentions", f"At most {post_fields.MAX_MENTIONS}")
    documented("post.proto", "Post", "media", f"At most {post_fields.MAX_MEDIA}")
    documented("post.proto", "Post", "links", f"At most {post_fields.MAX_LINKS}")
    documented("post.proto", "Post", "sender_languages", f"At most {post_fields.MAX_SENDER_LANGUAGES}")
    documented("post.proto", "Post", "categories", f"At most {post_fields.MAX_CATEGORIES}")
    documented("post.proto", "OfficialAlert", "area_polygon", f"At most {post_fields.MAX_AREA_POINTS} points")
    documented("search.proto", "SearchFilters", "", f"{queries.MAX_FILTER_VALUES} values",
               f"{queries.MAX_FILTER_VALUE_CHARS} characters", day(EARLIEST_FILTER), latest)
    documented("search.proto", "SearchRequest", "query", f"{boolean_query.MAX_QUERY_CHARS:,} characters")
    documented("search.proto", "SearchRequest", "page_size", f"1 to {queries.MAX_PAGE_SIZE}")
    documented("search.proto", "AggregateRequest", "size", f"1 to {queries.MAX_BUCKETS}")
    documented("search.proto", "SemanticSearchRequest", "text", f"1 to {semantic.MAX_TEXT_CHARS:,} characters")
    documented("search.proto", "VolumeOverTimeRequest", "filters", f"{aggregations.MAX_HISTOGRAM_BUCKETS:,} intervals")
    documented("search.proto", "ReplayDeadLettersRequest", "post_ids", f"{replay.MAX_POST_IDS:,}")
    documented("search.proto", "ReplayDeadLettersRequest", "replay", f"{replay.MAX_REPLAY:,}")
    documented("alerting.proto", "EvaluatePostsRequest", "posts", f"{alerting_service.MAX_EVALUATE_POSTS:,}")
    documented("alerting.proto", "ListAlertsRequest", "limit", f"1 to {alerting_service.MAX_LIST_LIMIT}")
    documented("alerting.proto", "Rule", "id", "1 to 64")
    documented("alerting.proto", "Rule", "name", f"{rules.MAX_NAME_CHARS} characters")
    documented("alerting.proto", "Rule", "query", f"{rules.MAX_QUERY_CHARS} characters")
    documented("alerting.proto", "Rule", "window_seconds", f"{rules.MIN_WINDOW_S} to {rules.MAX_WINDOW_S:,}")
    documented("alerting.proto", "Rule", "labels", f"At most {rules.MAX_LABELS}", f"{rules.MAX_NAME_CHARS} characters")
    documented("alerting.proto", "Silence", "matchers", f"1 to {silences.MAX_MATCHERS}")
    documented("alerting.proto", "Silence", "comment", f"{silences.MAX_COMMENT_CHARS:,} characters")
    documented("alerting.proto", "Matcher", "value", f"{silences.MAX_VALUE_CHARS} characters")
    documented("alerting.proto", "Webhook", "url", f"{webhooks.MAX_URL_CHARS:,} characters")
    documented("alerting.proto", "Webhook", "secret", f"{webhooks.MIN_SECRET_CHARS} to {webhooks.MAX_SECRET_CHARS}")
    documented("alerting.proto", "Webhook", "group_by", f"at most {webhooks.MAX_GROUP_BY}")
    documented("inference.proto", "EnrichRequest", "posts", f"{Settings().inference_max_request_posts}",
               f"{Settings().max_text_chars:,} characters")
