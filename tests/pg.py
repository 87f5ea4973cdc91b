"""A real PostgreSQL server for the tests: ``initdb`` into a temporary folder, ``postgres`` on a
free port of 127.0.0.1 (and a unix socket in that folder), stopped when the session ends.

PostgreSQL refuses to run as root, so as root the server runs as ``nobody`` in a folder that user
owns. Where the binaries are missing or the server cannot start, the tests that need it are
skipped with the reason; in CI (``CI=true``) that is a failure instead, since ``.ci/run`` installs
Debian's ``postgresql`` package.

Usage (the fixtures are loaded by ``tests/conftest.py``)::

    def test_x(database_url: str) -> None:      # a fresh, empty schema for this test
        store = Store.open(Settings(database_url=database_url))
"""

from __future__ import annotations

import glob
import itertools
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

USER = "ban_bot"
RUN_AS = "nobody"  # when the tests run as root
_schemas = itertools.count(1)


class PostgresUnavailable(Exception):
    """PostgreSQL cannot be started here; the message says why."""


def find_bin_dir() -> Path:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``: ``PG_BIN``, else ``PATH``, else
    Debian's ``/usr/lib/postgresql/<version>/bin`` (newest first), which is not on ``PATH``."""
    candidates = [os.environ.get("PG_BIN", "")]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).resolve().parent))
    debian = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(debian, key=lambda p: int(Path(p).parent.name), reverse=True)
    for folder in filter(None, candidates):
        if all((Path(folder) / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    raise PostgresUnavailable(
        "PostgreSQL's initdb was not found on PATH, in PG_BIN or in /usr/lib/postgresql/*/bin "
        "(install Debian's postgresql package: apt-get install postgresql)"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    """A throwaway server: superuser ``ban_bot`` with a random password, scram auth over TCP."""

    bin_dir: Path
    root: Path  # owned by the user the server runs as
    port: int
    password: str
    started_in: float = 0.0  # seconds from initdb to accepting connections
    options: list[str] = field(default_factory=list)  # postgres -c settings

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", RUN_AS, "--", *command]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=self.root
        )
        if done.returncode != 0:
            raise PostgresUnavailable(
                f"{args[0]} failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()}"
            )
        return done

    def start(self, *, durable: bool = False) -> None:
        """initdb and start; ``durable=False`` turns fsync off (a throwaway test server)."""
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        self._chown(pwfile)
        self._run(
            "initdb",
            "--pgdata",
            str(self.data_dir),
            "--username",
            USER,
            "--pwfile",
            str(pwfile),
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        pwfile.unlink()
        self.options = [
            "-c listen_addresses=127.0.0.1",
            f"-c port={self.port}",
            f"-c unix_socket_directories={self.root}",
            "-c max_connections=100",
        ]
        if not durable:
            self.options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self.resume()

    def resume(self) -> None:
        """Start the (initialised) server and wait until it accepts connections."""
        self._run(
            "pg_ctl",
            "start",
            "--pgdata",
            str(self.data_dir),
            "--wait",
            "--timeout=30",
            "--log",
            str(self.root / "server.log"),
            "-o",
            " ".join(self.options),
        )

    def pause(self) -> None:
        """Stop the server, keeping its data, as an outage or a restart would."""
        self._run("pg_ctl", "stop", "--pgdata", str(self.data_dir), "-m", "fast", "-w")

    def stop(self) -> None:
        """Stop the server and delete everything it had."""
        try:
            self._run("pg_ctl", "stop", "--pgdata", str(self.data_dir), "-m", "immediate", "-w")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def create_schema(self) -> str:
        """The URL of a fresh, empty place to keep tables: a new schema, first on the URL's
        search path (CREATE DATABASE takes a quarter of a second; a schema, a millisecond)."""
        import psycopg

        name = f"t{next(_schemas)}_{secrets.token_hex(3)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        return f"{self.url()}?options=-csearch_path%3D{name}"

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @staticmethod
    def _chown(path: Path) -> None:
        if os.geteuid() == 0:
            shutil.chown(path, user=RUN_AS)


def start_server(*, durable: bool = False) -> PostgresServer:
    """Start a throwaway server; raises ``PostgresUnavailable`` with the reason when it cannot."""
    bin_dir = find_bin_dir()
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        raise PostgresUnavailable("running as root and runuser is missing to drop to 'nobody'")
    # In /tmp itself (not pytest's root-only tmp folder) so that 'nobody' can reach it.
    root = Path(tempfile.mkdtemp(prefix="ban-bot-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, user=RUN_AS)
    server = PostgresServer(bin_dir, root, free_port(), secrets.token_urlsafe(16))
    started = time.monotonic()
    try:
        server.start(durable=durable)
    except (PostgresUnavailable, OSError, subprocess.SubprocessError) as e:
        log = server.log()[-2000:]
        shutil.rmtree(root, ignore_errors=True)
        raise PostgresUnavailable(f"{e}\n{log}".strip()) from None
    server.started_in = time.monotonic() - started
    return server


def started_or_skipped() -> PostgresServer:
    """``start_server()``, or skip the test with the reason; in CI, fail it instead."""
    try:
        return start_server()
    except PostgresUnavailable as e:
        reason = f"PostgreSQL cannot be started here: {e}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI must run the PostgreSQL tests; see .ci/run)")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session; skipped (failed in CI) where it cannot start."""
    server = started_or_skipped()
    yield server
    server.stop()


@pytest.fixture
def database_url(postgres: PostgresServer) -> str:
    """The URL (with its password) of a fresh, empty schema on the session's server."""
    return postgres.create_schema()
