"""`python -m services.alerting.migrate --to postgresql://...`: moves a single replica's SQLite state
into an empty PostgreSQL database, so that an agency going from one alerting replica to several keeps
its rules, silences, webhooks, open alerts, windows, history and pending notifications.

Stop alerting first: the file must not change while it is copied. Both sides get the schema the
service itself would create (the same constructors), every table is copied in one PostgreSQL
transaction (all or nothing), identity columns continue after the highest copied id, and the row
counts are compared before the commit. A database that already holds alerting state is refused:
merging two stores would mix alerts and sequences of unrelated histories.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path

from services.alerting.notifier import DeliveryPolicy, Notifier
from services.alerting.service import Alerting
from services.alerting.store import AlertStore
from services.common.settings import Settings

CHUNK = 1000


class MigrationError(Exception):
    """Why the state was not moved (nothing was written to the target)."""


def _prepared(store: AlertStore, settings: Settings) -> None:
    """Every table and column the service creates, created by the service's own constructors."""
    alerting = Alerting(store)
    policy = DeliveryPolicy(settings.webhook_timeout_s, settings.webhook_max_attempts,
                            settings.webhook_backoff_base_s, settings.alerting_external_url)
    Notifier(store, alerting.webhooks, alerting.silences, policy, time.time).close()


def _tables(file: sqlite3.Connection) -> dict[str, list[str]]:
    names = [name for (name,) in file.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    )]
    return {name: [column[1] for column in file.execute(f'PRAGMA table_info("{name}")')] for name in names}


def _count(store: AlertStore, table: str) -> int:
    ((count,),) = store.execute(f"SELECT COUNT(*) FROM {table}")
    return int(count)


def migrate(source: Path, database_url: str, settings: Settings,
            report: Callable[[str], None] = lambda line: None) -> dict[str, int]:
    """Copies the SQLite file at `source` into the PostgreSQL at `database_url`; rows copied per table."""
    if not database_url.startswith(("postgresql://", "postgres://")):
        raise MigrationError("--to must be a PostgreSQL URL (postgresql://user:password@host:5432/db)")
    if not source.is_file():
        raise MigrationError(f"no alerting state file at {source}")
    origin = AlertStore(source)
    _prepared(origin, settings)
    origin.close()
    file = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    target = AlertStore(source, database_url)
    try:
        _prepared(target, settings)
        tables = _tables(file)
        missing = {table: sorted(set(columns) - target.db.columns(table)) for table, columns in tables.items()}
        missing = {table: columns for table, columns in missing.items() if columns}
        if missing:
            raise MigrationError(f"the target lacks columns of the file: {missing}")
        held = {table: rows for table in tables if (rows := _count(target, table))}
        if held:
            raise MigrationError(
                "the target database already holds alerting state ("
                + ", ".join(f"{table}: {rows}" for table, rows in sorted(held.items()))
                + "); migrate into an empty database"
            )
        copied: dict[str, int] = {}
        with target.transaction():
            for table, columns in tables.items():
                copied[table] = _copy(file, target, table, columns)
                report(f"{table}: {copied[table]:,} rows")
            _continue_identities(target)
            counted = {table: _count(target, table) for table in tables}
            if counted != copied:
                raise MigrationError(f"row counts differ after the copy: copied {copied}, found {counted}")
        return copied
    finally:
        file.close()
        target.close()


def _copy(file: sqlite3.Connection, target: AlertStore, table: str, columns: list[str]) -> int:
    names = ", ".join(columns)
    insert = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})"
    rows = file.execute(f"SELECT {names} FROM {table}")
    copied = 0
    while chunk := rows.fetchmany(CHUNK):
        target.db.executemany(insert, chunk)
        copied += len(chunk)
    return copied


def _continue_identities(target: AlertStore) -> None:
    """Ids given by PostgreSQL (events' sequence, outbox ids) go on after the highest copied one."""
    identities = target.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND is_identity = 'YES'"
    )
    for table, column in identities:
        target.execute(
            f"SELECT setval(pg_get_serial_sequence(?, ?), COALESCE(MAX({column}), 0) + 1, false) FROM {table}",
            (table, column),
        )


def main(argv: list[str] | None = None) -> int:
    settings = Settings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("--from", dest="source", type=Path, default=settings.alerting_state_path,
                        help="the SQLite state file (default CIVIC_ALERTING_STATE_PATH: %(default)s)")
    parser.add_argument("--to", dest="target", default=settings.alerting_database_url,
                        help="the empty PostgreSQL database (default CIVIC_ALERTING_DATABASE_URL)")
    args = parser.parse_args(argv)
    try:
        copied = migrate(args.source, args.target, settings, report=print)
    except (MigrationError, RuntimeError) as exc:
        print(f"alerting migrate: {exc}", file=sys.stderr)
        return 1
    print(f"moved {sum(copied.values()):,} rows of {len(copied)} tables from {args.source} into PostgreSQL")
    return 0


if __name__ == "__main__":
    sys.exit(main())
