"""Reads posts from JSONL and CSV files for bulk import (`civic ingest FILE`).

Files are streamed record by record so that an import of millions of posts runs in constant memory,
and a bad record becomes an error for that record only: one typo must not sink a night's import.
JSONL goes through protobuf's own JSON mapping so that its field names are exactly the contract's;
CSV rows are mapped onto the same nested shape and share that path, so both formats accept and
reject the same things.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message_factory import GetMessageClass

from civic.listening.v1 import post_pb2

CSV_COLUMNS = (
    "id",
    "tenant",
    "channel",
    "source",
    "author_id",
    "author_name",
    "author_followers",
    "text",
    "language",
    "created_at",
    "url",
    "likes",
    "shares",
    "replies",
    "lat",
    "lon",
)
"""The flat CSV header; every column but `text` may be left out."""

_CSV_PATHS: dict[str, tuple[str, ...]] = {
    "author_id": ("author", "id"),
    "author_name": ("author", "name"),
    "author_followers": ("author", "follower_count"),
    "likes": ("engagement", "likes"),
    "shares": ("engagement", "shares"),
    "replies": ("engagement", "replies"),
    "lat": ("geo", "lat"),
    "lon": ("geo", "lon"),
}
_CSV_INTEGER_COLUMNS = frozenset({"author_followers", "likes", "shares", "replies"})
_CSV_REQUIRED_COLUMNS = ("text",)
_TIMESTAMP = "google.protobuf.Timestamp"


@dataclass(frozen=True)
class PostRecord:
    """One record of an import file: either a parsed post or why it could not be parsed.

    `line` is the 1-based line where the record starts, so that errors point into the file.
    """

    line: int
    post: post_pb2.Post | None
    error: str | None


class _RecordError(Exception):
    """A record is unusable; the message names the field and why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")


def count_records(path: Path) -> int:
    """Counts the records `iter_posts` will yield, for a progress bar's total."""
    reader = _reader_for(path)
    with path.open("rb") as handle:
        if reader is _iter_jsonl:
            return sum(1 for raw in handle if raw.strip())
        rows = csv.reader(_decoded_lines(handle, bad_lines=set()))
        non_empty = sum(1 for row in rows if _has_cells(row))
        return max(non_empty - 1, 0)  # the first non-empty row is the header


def iter_posts(path: Path, default_tenant: str | None = None) -> Iterator[PostRecord]:
    """Yields one PostRecord per record of a `.jsonl` or `.csv` file, in file order.

    Raises ValueError right away for an unknown extension, and on first iteration for a CSV header
    that names unknown columns or lacks `text` (every row would fail the same way). `default_tenant`
    fills in records that carry no tenant of their own.
    """
    return _with_default_tenant(_reader_for(path)(path), default_tenant)


def _reader_for(path: Path) -> Callable[[Path], Iterator[PostRecord]]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _iter_jsonl
    if suffix == ".csv":
        return _iter_csv
    raise ValueError(f"{path}: unsupported file type {suffix or '(none)'!r}; expected .jsonl or .csv")


def _with_default_tenant(records: Iterable[PostRecord], default_tenant: str | None) -> Iterator[PostRecord]:
    for record in records:
        if default_tenant and record.post is not None and not record.post.tenant:
            record.post.tenant = default_tenant
        yield record


def _iter_jsonl(path: Path) -> Iterator[PostRecord]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                yield PostRecord(number, _parse_json_line(raw, first=number == 1), None)
            except _RecordError as error:
                yield PostRecord(number, None, f"line {number}: {error}")


def _parse_json_line(raw: bytes, first: bool) -> post_pb2.Post:
    try:
        text = raw.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError as error:
        raise _RecordError("record", f"not valid UTF-8 at byte {error.start}") from error
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise _RecordError("record", f"not valid JSON ({error.msg} at column {error.colno})") from error
    return _parse_post(value)


def _iter_csv(path: Path) -> Iterator[PostRecord]:
    bad_lines: set[int] = set()
    with path.open("rb") as handle:
        rows = csv.reader(_decoded_lines(handle, bad_lines))
        header = _read_header(path, rows)
        if header is None:
            return
        start = rows.line_num + 1
        for row in rows:
            end = rows.line_num
            if _has_cells(row):
                yield _csv_record(start, end, header, row, bad_lines)
            start = end + 1


def _read_header(path: Path, rows: Iterator[list[str]]) -> list[str] | None:
    for row in rows:
        if not _has_cells(row):
            continue
        header = [cell.strip() for cell in row]
        unknown = [name for name in header if name not in CSV_COLUMNS]
        if unknown:
            raise ValueError(
                f"{path}: unknown CSV column(s) {', '.join(unknown)}; known: {', '.join(CSV_COLUMNS)}"
            )
        missing = [name for name in _CSV_REQUIRED_COLUMNS if name not in header]
        if missing:
            raise ValueError(f"{path}: the CSV header lacks the required column(s) {', '.join(missing)}")
        return header
    return None


def _csv_record(start: int, end: int, header: list[str], row: list[str], bad_lines: set[int]) -> PostRecord:
    try:
        if any(start <= number <= end for number in bad_lines):
            raise _RecordError("record", "not valid UTF-8")
        if len(row) != len(header):
            raise _RecordError("record", f"has {len(row)} cells but the header has {len(header)} columns")
        return PostRecord(start, _parse_post(_csv_row_to_dict(dict(zip(header, row, strict=True)))), None)
    except _RecordError as error:
        return PostRecord(start, None, f"line {start}: {error}")


def _csv_row_to_dict(cells: dict[str, str]) -> dict[str, Any]:
    """Maps flat CSV cells onto the nested JSON shape; empty cells mean "not given"."""
    nested: dict[str, Any] = {}
    for column, cell in cells.items():
        if cell == "":
            continue
        value: Any = cell
        if column in _CSV_INTEGER_COLUMNS:
            value = _csv_integer(column, cell)
        elif column in ("lat", "lon"):
            value = _csv_number(column, cell)
        *parents, leaf = _CSV_PATHS.get(column, (column,))
        target = nested
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    geo = nested.get("geo", {})
    if len(geo) == 1:
        given, absent = ("lat", "lon") if "lat" in geo else ("lon", "lat")
        raise _RecordError(absent, f"must be given together with {given}")
    return nested


def _csv_integer(column: str, cell: str) -> int:
    try:
        return int(cell.strip())
    except ValueError:
        raise _RecordError(column, f"not a whole number: {cell!r}") from None


def _csv_number(column: str, cell: str) -> float:
    try:
        return float(cell.strip())
    except ValueError:
        raise _RecordError(column, f"not a number: {cell!r}") from None


def _parse_post(value: object) -> post_pb2.Post:
    if not isinstance(value, dict):
        raise _RecordError("record", "not a JSON object")
    try:
        return json_format.ParseDict(value, post_pb2.Post())
    except json_format.ParseError:
        _locate_error(value, cast(Descriptor, post_pb2.Post.DESCRIPTOR), "")
        raise _RecordError("record", "does not match the Post message") from None


def _locate_error(value: dict[str, Any], descriptor: Descriptor, prefix: str) -> None:
    """Raises a _RecordError naming the first field that ParseDict rejects.

    ParseDict's own messages are long and name the proto's internals; analysts need the field path.
    """
    fields = {field.name: field for field in descriptor.fields}
    fields.update({field.json_name: field for field in descriptor.fields})
    message_class = GetMessageClass(descriptor)
    for key, item in value.items():
        path = f"{prefix}{key}"
        field = fields.get(key)
        if field is None:
            raise _RecordError(path, "unknown field")
        nested = field.message_type
        if nested is not None and nested.full_name != _TIMESTAMP and item is not None:
            if not isinstance(item, dict):
                raise _RecordError(path, "must be a JSON object")
            _locate_error(item, nested, f"{path}.")
            continue
        try:
            json_format.ParseDict({key: item}, message_class())
        except json_format.ParseError:
            raise _RecordError(path, _expected(field)) from None


def _expected(field: FieldDescriptor) -> str:
    if field.message_type is not None and field.message_type.full_name == _TIMESTAMP:
        return "not an RFC 3339 timestamp (e.g. 2026-11-13T14:05:00Z)"
    if field.cpp_type in (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64):
        return "not a whole number"
    if field.cpp_type in (FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE):
        return "not a number"
    if field.cpp_type == FieldDescriptor.CPPTYPE_BOOL:
        return "not true or false"
    if field.cpp_type == FieldDescriptor.CPPTYPE_STRING:
        return "not a string"
    return "has the wrong type"


def _decoded_lines(handle: BinaryIO, bad_lines: set[int]) -> Iterator[str]:
    """Decodes line by line so that one badly encoded line spoils only its own record."""
    for number, raw in enumerate(handle, start=1):
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            bad_lines.add(number)
            yield raw.decode("utf-8", errors="replace")


def _has_cells(row: list[str]) -> bool:
    return any(cell.strip() for cell in row)
