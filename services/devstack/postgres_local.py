"""A local PostgreSQL on 127.0.0.1 for alerting's shared store in tests and on a laptop.

The server binaries come with the `pgserver` package (PostgreSQL 16, nothing downloaded at run time);
this module runs them itself, bound to one loopback TCP port, with trust authentication: it is for a
developer's machine, never a deployment (there, the chart points alerting at a managed PostgreSQL).
PostgreSQL refuses to run as root, so as root the server runs as pgserver's own system user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
import time
import warnings
from pathlib import Path

import psycopg

USER = "postgres"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
SYSTEM_USER = "pgserver"


def _binaries() -> Path:
    with warnings.catch_warnings():  # the package's import warns about a runtime dir it does not need here
        warnings.simplefilter("ignore")
        from pgserver import _commands  # the bundled install: bin/initdb, bin/postgres

    return Path(_commands.POSTGRES_BIN_PATH)


class LocalPostgres:
    """`start()` initialises `data_dir` once and serves it on `port`; `stop()` shuts it down fast."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir, self.port = data_dir, port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{name}"

    def start(self) -> str:
        bin_dir = _binaries()
        user = self._system_user(bin_dir)
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                [str(bin_dir / "initdb"), "-D", str(self.data_dir), "--auth=trust", "--encoding=UTF8", "-U", USER],
                check=True, capture_output=True, user=user,
            )
        log = (self.data_dir.parent / f"{self.data_dir.name}.log").open("ab")
        with log:
            self.process = subprocess.Popen(
                [
                    str(bin_dir / "postgres"), "-D", str(self.data_dir), "-h", "127.0.0.1", "-p", str(self.port),
                    "-c", "unix_socket_directories=", "-c", "max_connections=200",
                ],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, user=user,
            )
        self._wait_ready()
        return self.url

    def create_database(self, name: str) -> str:
        """A new, empty database (a test's own); its URL."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def stop(self) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)  # fast shutdown: open sessions are ended
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _system_user(self, bin_dir: Path) -> str | None:
        """None unless root, else pgserver's user, owning the data directory."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            return None
        from pgserver import utils

        utils.ensure_user_exists(SYSTEM_USER)
        utils.ensure_prefix_permissions(self.data_dir)
        utils.ensure_prefix_permissions(bin_dir)
        entry = pwd.getpwnam(SYSTEM_USER)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        self.data_dir.chmod(0o700)
        return SYSTEM_USER

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"postgres exited with code {self.process.returncode}; see {self.data_dir.name}.log "
                    f"beside {self.data_dir}"
                )
            try:
                with psycopg.connect(self.url, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"postgres on port {self.port} not ready after {START_TIMEOUT_S:.0f}s") from None
                time.sleep(0.2)
