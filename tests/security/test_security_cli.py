"""`civic keys ...` and the `civic` commands against a server with authentication on, as a user runs
them: the key is printed once and only its digest is stored; CIVIC_AUTH_TOKEN (or a token file) and
the TLS variables reach every command through the one client helper."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.alerting.server import build_server
from services.alerting.service import open_alerting
from services.common.settings import Settings
from tests.fixtures.security import Credentials, Pki

pytestmark = pytest.mark.slow  # every test runs `civic` in its own process

CIVIC = str(Path(sys.executable).with_name("civic"))


def civic(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CIVIC, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "200", **env})


def test_keys_create_prints_the_key_once_list_and_revoke(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    made = civic("keys", "create", "--tenant", "city-a", "--roles", "reader,analyst", "-d", "dispatch desk",
                 "--file", str(keys))
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    assert token.startswith("civic_") and token not in keys.read_text()
    assert oct(keys.stat().st_mode & 0o777) == "0o600"
    listed = civic("keys", "list", "--file", str(keys))
    key_id, secret = token.split("_", 2)[1:]  # the secret is URL-safe base64: it may hold "_" itself
    assert key_id in listed.stdout and "dispatch desk" in listed.stdout and secret not in listed.stdout
    refused = civic("keys", "create", "--roles", "reader", "--file", str(keys))
    assert refused.returncode == 1 and "tenant is required" in refused.stderr
    bad_role = civic("keys", "create", "-t", "city-a", "--roles", "root", "--file", str(keys))
    assert bad_role.returncode == 1 and "roles must be" in bad_role.stderr
    assert civic("keys", "revoke", key_id, "--file", str(keys)).returncode == 0
    assert key_id not in civic("keys", "list", "--file", str(keys)).stdout
    assert civic("keys", "revoke", key_id, "--file", str(keys)).returncode == 1
    assert "CIVIC_AUTH_KEYS_FILE" not in os.environ
    no_file = civic("keys", "list")
    assert no_file.returncode == 1
    assert no_file.stderr.strip().splitlines() == ["civic: no keys file: pass --file or set CIVIC_AUTH_KEYS_FILE"]


@pytest.fixture
def secured_alerting(tmp_path: Path, credentials: Credentials, pki: Pki) -> Iterator[str]:
    cert, key = pki.issue("alerting", server=True)
    settings = Settings(alerting_state_path=tmp_path / "alerting.sqlite3", alerts_index_prefix="",
                        tls_cert_file=cert, tls_key_file=key, **credentials.settings())
    alerting = open_alerting(settings)
    server = build_server(settings, alerting, port=0).start()
    yield f"127.0.0.1:{server.port}"
    server.stop(0)
    alerting.close()


def test_civic_commands_send_the_token_and_use_tls(
    secured_alerting: str, credentials: Credentials, pki: Pki, tmp_path: Path
) -> None:
    env = {"CIVIC_ALERTING_TARGET": secured_alerting, "CIVIC_TLS_CA_FILE": str(pki.ca_cert)}
    missing = civic("alerts", "list", "-t", "city-a", **env)
    assert missing.returncode == 1 and "CIVIC_AUTH_TOKEN" in missing.stderr
    token = credentials.api_key("city-a", "reader")
    listed = civic("alerts", "list", "-t", "city-a", CIVIC_AUTH_TOKEN=token, **env)
    assert listed.returncode == 0, listed.stderr
    token_file = tmp_path / "token"
    token_file.write_text(token)
    other = civic("alerts", "list", "-t", "city-b", CIVIC_AUTH_TOKEN_FILE=str(token_file), **env)
    assert other.returncode == 1 and "PERMISSION_DENIED" in other.stderr
    plaintext = civic("alerts", "list", "-t", "city-a", CIVIC_ALERTING_TARGET=secured_alerting, CIVIC_AUTH_TOKEN=token)
    assert plaintext.returncode == 1 and "not reachable" in plaintext.stderr
