"""`civic keys ...`: create, list and revoke the API keys the services accept (SECURITY.md).

The keys file keeps only a SHA-256 digest of each key; `create` prints the key once, and it cannot be
shown again. The services re-read the file when it changes, so no restart is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from services.cli.common import console, fail, friendly_errors
from services.common.auth import ROLES, Unauthenticated, create_key, list_keys, revoke_key
from services.common.settings import get_settings

app = typer.Typer(help="API keys: bearer tokens with a tenant and roles.", no_args_is_help=True)

KeysFile = Annotated[
    Path | None, typer.Option("--file", "-f", help="The keys file; default CIVIC_AUTH_KEYS_FILE.")
]


def _keys_file(path: Path | None) -> Path:
    chosen = path or get_settings().auth_keys_file
    if chosen is None:
        raise fail("no keys file: pass --file or set CIVIC_AUTH_KEYS_FILE")
    return chosen


@app.command()
@friendly_errors
def create(
    roles: Annotated[str, typer.Option("--roles", "-r", help=f"Comma-separated, of: {', '.join(ROLES)}.")],
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="The agency; empty only for role service.")] = "",
    description: Annotated[str, typer.Option("--description", "-d", help="Who or what uses the key.")] = "",
    file: KeysFile = None,
) -> None:
    """Create a key and print it once (store it in a secret manager: it cannot be shown again)."""
    role_list = [role.strip() for role in roles.split(",") if role.strip()]
    try:
        token, record = create_key(_keys_file(file), tenant, role_list, description)
    except Unauthenticated as exc:  # the record would never authenticate: refuse to write it
        raise fail(str(exc).removeprefix("key: ")) from None
    console.print(f"key id {record.id} for tenant {record.tenant or '(any: service)'} with roles "
                  f"{', '.join(record.roles)}", highlight=False)
    print(token)


@app.command("list")
@friendly_errors
def list_(file: KeysFile = None) -> None:
    """The keys in the file (ids, tenants and roles; never the keys themselves)."""
    table = Table("id", "tenant", "roles", "created", "description")
    for record in list_keys(_keys_file(file)):
        table.add_row(record.id, record.tenant or "*", ",".join(record.roles), record.created_at, record.description)
    console.print(table)


@app.command()
@friendly_errors
def revoke(key_id: Annotated[str, typer.Argument(help="The key id, as `civic keys list` shows it.")],
           file: KeysFile = None) -> None:
    """Remove a key: calls with it fail from the next call on."""
    if not revoke_key(_keys_file(file), key_id):
        raise fail(f"no key with id {key_id}")
    console.print(f"revoked {key_id}")
