"""Feedback, the question log, seen Slack event ids and the threads the bot answered in.

SQLite in ``BAN_BOT_DATA_DIR`` by default (embedded, nothing to set up); PostgreSQL when
``DATABASE_URL`` is set, so that several replicas share one store and de-duplicate Slack's
deliveries through it. One ``Store`` and one set of SQL serve both: the few differences between
the two databases live in ``_Dialect``. Slack user ids are never stored raw: only a salted
SHA-256 HMAC. Rows older than ``BAN_BOT_RETENTION_DAYS`` are deleted at open and once a day.

Usage::

    store = Store.open(settings)
    if store.mark_event_seen("Ev123"):          # True the first time only, across replicas
        store.log_question(surface="slack", user_id="U1", question="when?", entry_ids=["a"],
                           declined=False)
    store.record_feedback(user_id="U1", question="when?", entry_ids=["a"], vote="up")
    store.close()
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import unquote, urlsplit

from bot.config import ConfigError, Settings

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

logger = logging.getLogger("bot.store")

Vote = Literal["up", "down"]
DB_FILE = "ban-bot.sqlite3"
SALT_FILE = "user-hash.salt"
PRUNE_EVERY = 24 * 60 * 60.0  # seconds between two prunes of a running process
CONNECT_TIMEOUT = 10  # seconds to reach PostgreSQL before giving up with a clear error
# Seconds a thread waits for a pooled connection. Slack wants its ack within 3 s, so while
# PostgreSQL is away a request fails after this long rather than holding its thread.
POOL_TIMEOUT = 3.0
POSTGRES_SCHEMES = ("postgresql", "postgres")
# Any fixed number. Replicas take turns creating the tables (concurrent CREATE TABLE IF NOT
# EXISTS can fail in PostgreSQL on its catalog's unique index) and pruning: a prune locks several
# tables and CREATE INDEX IF NOT EXISTS locks each table, so one replica starting while another
# prunes could otherwise deadlock.
_MAINTENANCE_LOCK_KEY = 0x62616E626F74  # "banbot"
_SALT_NAME = "user_hash_salt"

# One schema for both databases. ``{id}`` is the auto-numbered key each spells its own way;
# DOUBLE PRECISION has REAL affinity in SQLite and is 8 bytes in PostgreSQL (where REAL is 4).
# Times are UTC ISO 8601 text, so they sort and compare the same in both.
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS feedback (
    id {id},
    created_at TEXT NOT NULL,
    user_hash TEXT NOT NULL,
    vote TEXT NOT NULL CHECK (vote IN ('up', 'down')),
    question TEXT NOT NULL,
    entry_ids TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS questions (
    id {id},
    created_at TEXT NOT NULL,
    surface TEXT NOT NULL,
    user_hash TEXT,
    question TEXT NOT NULL,
    entry_ids TEXT NOT NULL,
    declined INTEGER NOT NULL,
    score DOUBLE PRECISION
)""",
    """CREATE TABLE IF NOT EXISTS seen_events (
    event_id TEXT PRIMARY KEY,
    seen_at TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS bot_threads (
    channel TEXT NOT NULL,
    thread_ts TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (channel, thread_ts)
)""",
    # Only PostgreSQL keeps a value here (the shared salt); see _load_salt.
    """CREATE TABLE IF NOT EXISTS store_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
)""",
    # The daily prune deletes by time.
    "CREATE INDEX IF NOT EXISTS feedback_created_at ON feedback (created_at)",
    "CREATE INDEX IF NOT EXISTS questions_created_at ON questions (created_at)",
    "CREATE INDEX IF NOT EXISTS seen_events_seen_at ON seen_events (seen_at)",
    "CREATE INDEX IF NOT EXISTS bot_threads_created_at ON bot_threads (created_at)",
)

# (table, time column) pruned after the retention period.
_PRUNED = (
    ("questions", "created_at"),
    ("feedback", "created_at"),
    ("seen_events", "seen_at"),
    ("bot_threads", "created_at"),
)


@dataclass(frozen=True)
class Feedback:
    """One 👍/👎 click as stored."""

    created_at: str
    user_hash: str
    vote: Vote
    question: str
    entry_ids: tuple[str, ...]


@dataclass(frozen=True)
class LoggedQuestion:
    """One answered (or declined) question as stored."""

    created_at: str
    surface: str
    user_hash: str | None
    question: str
    entry_ids: tuple[str, ...]
    declined: bool
    score: float | None


# -- the two databases -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Dialect:
    """What differs between SQLite and PostgreSQL for this store's SQL, and nothing else."""

    name: str
    id_column: str
    placeholder: str
    # A statement that makes schema creation and pruning take turns across processes.
    maintenance_lock: str | None

    def sql(self, text: str) -> str:
        """The store's SQL is written with ``?`` placeholders (and never a literal ``?`` or
        ``%``); PostgreSQL's driver wants ``%s``."""
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)


SQLITE = _Dialect("sqlite", "INTEGER PRIMARY KEY", "?", maintenance_lock=None)
POSTGRESQL = _Dialect(
    "postgresql",
    "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    "%s",
    # Held until the transaction ends. (SQLite's BEGIN IMMEDIATE already serialises writers.)
    maintenance_lock=f"SELECT pg_advisory_xact_lock({_MAINTENANCE_LOCK_KEY})",
)


class _Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class _Tx:
    """A connection on either database, lent for one statement or one transaction;
    ``execute`` takes the store's ``?`` SQL."""

    def __init__(self, conn: Any, dialect: _Dialect) -> None:
        self._conn = conn
        self._dialect = dialect

    def execute(self, sql: str, params: Sequence[object] = ()) -> _Cursor:
        cursor: _Cursor = self._conn.execute(self._dialect.sql(sql), tuple(params))
        return cursor


class _Database(Protocol):
    dialect: _Dialect

    def statement(self) -> AbstractContextManager[_Tx]:
        """For one statement, which is its own transaction (one round trip on PostgreSQL,
        where BEGIN and COMMIT would add two)."""
        ...

    def transaction(self) -> AbstractContextManager[_Tx]:
        """For several statements, all or none."""
        ...

    def close(self) -> None: ...


class _Sqlite:
    """One connection shared by the worker threads, one transaction at a time: a sqlite3
    connection must not be used by two threads at once, and SQLite has a single writer anyway.
    Every operation is a sub-millisecond local write, so the lock costs nothing that matters."""

    dialect = SQLITE

    def __init__(self, path: Path) -> None:
        # timeout: another connection to the file (a CLI report while the bot runs) is
        # waited for, up to 5 s, rather than failing at once.
        self._conn = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, timeout=5.0
        )
        _use_wal(self._conn)
        # SQLite's advice for WAL: a crash can lose the last commits but never corrupts the
        # file, and a commit no longer waits for the disk (0.1 ms instead of a few ms here).
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._lock = threading.Lock()

    @contextmanager
    def statement(self) -> Iterator[_Tx]:
        with self._lock:
            yield _Tx(self._conn, self.dialect)  # isolation_level=None: autocommit

    @contextmanager
    def transaction(self) -> Iterator[_Tx]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield _Tx(self._conn, self.dialect)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _use_wal(conn: sqlite3.Connection, *, attempts: int = 50) -> None:
    """Readers and the writer do not block each other in WAL mode, which the file remembers.

    Switching a new file to it ignores the busy timeout, so two processes opening a new store
    at once retry here instead of failing with "database is locked".
    """
    for attempt in range(attempts):
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or attempt == attempts - 1:
                raise
            time.sleep(0.1)


class _Postgres:
    """A small connection pool: each worker thread borrows a connection for one statement or
    transaction. Connections are in autocommit mode; ``transaction`` opens one explicitly."""

    dialect = POSTGRESQL

    def __init__(self, url: str, *, max_size: int) -> None:
        from psycopg_pool import ConnectionPool

        self._pool: ConnectionPool = ConnectionPool(
            url,
            min_size=min(2, max_size),
            max_size=max_size,
            kwargs={"connect_timeout": CONNECT_TIMEOUT, "autocommit": True},
            # A connection the server dropped (a restart, a fail-over) is replaced, not handed out.
            check=ConnectionPool.check_connection,
            name="ban-bot-store",
            timeout=POOL_TIMEOUT,
            open=True,
        )

    @contextmanager
    def statement(self) -> Iterator[_Tx]:
        with self._pool.connection() as conn:
            yield _Tx(conn, self.dialect)

    @contextmanager
    def transaction(self) -> Iterator[_Tx]:
        # Commits when the block ends normally, rolls back on an exception.
        with self._pool.connection() as conn, conn.transaction():
            yield _Tx(conn, self.dialect)

    def close(self) -> None:
        self._pool.close()


# -- opening -----------------------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _stamp(when: dt.datetime | None) -> str:
    """UTC ISO 8601 with microseconds: one format, so text order is time order."""
    return (when or _now()).astimezone(dt.UTC).isoformat(timespec="microseconds")


def _load_salt(settings: Settings) -> bytes:
    """The configured salt, else one generated once and kept (owner-only) beside the database.

    Kept out of the database so that a copy of the database alone cannot be used to test
    guessed user ids against the hashes.
    """
    if settings.user_hash_salt:
        return settings.user_hash_salt.encode()
    path = settings.data_dir / SALT_FILE
    if not path.exists():
        # Written in full to a private temporary file, then linked into place: a process that
        # starts at the same moment finds either no salt or the whole of one, never an empty
        # file, and the first link wins.
        fd, tmp = tempfile.mkstemp(dir=settings.data_dir, prefix=".salt-")  # mode 0600
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
            with suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    return path.read_bytes().strip()


def _shared_salt(tx: _Tx) -> bytes:
    """The salt every replica on one PostgreSQL database uses, created by the first to start.

    Replicas each have their own data folder, so a salt file there would give one user a
    different hash on each replica; ``BAN_BOT_USER_HASH_SALT`` keeps it out of the database.
    """
    tx.execute(
        "INSERT INTO store_meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        (_SALT_NAME, secrets.token_hex(32)),
    )
    row = tx.execute("SELECT value FROM store_meta WHERE name = ?", (_SALT_NAME,)).fetchone()
    return str(row[0]).encode()


def _postgres_url(url: str) -> str:
    """``url`` if it is a PostgreSQL URL; a ``ConfigError`` that never shows it otherwise."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in POSTGRES_SCHEMES:
        shown = f"a {scheme}: URL" if scheme else "something that is not a URL"
        raise ConfigError(
            f"DATABASE_URL must be a postgresql:// URL, got {shown}; "
            "leave it unset to keep the store in SQLite in BAN_BOT_DATA_DIR."
        )
    return url


def _reason(error: Exception, url: str) -> str:
    """The first line of a driver error (libpq adds hints on further lines), with the URL and
    its password (raw and decoded) taken out."""
    text = next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
    password = urlsplit(url).password if "://" in url else None
    for secret in (url, password, unquote(password) if password else None):
        if secret:
            text = text.replace(secret, "[redacted]")
    text = re.sub(r"\s+", " ", text).strip().rstrip(".")
    return text.removeprefix("connection failed: ")


def _describe_postgres(url: str) -> str:
    """Where the store is, for the log: database, host and port, never the user or password."""
    parts = urlsplit(url)
    where = parts.hostname or "the local socket"
    if parts.port:
        where += f":{parts.port}"
    database = parts.path.lstrip("/") or "(the default database)"
    return f"PostgreSQL database {database!r} on {where}"


def _open_postgres(settings: Settings, url: str) -> tuple[_Postgres, bytes]:
    """Create the schema (one replica at a time) and open the pool; the shared salt."""
    import psycopg

    try:
        # A direct connection first: its failure says why (refused, unknown host, password),
        # where a pool would only time out.
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT) as conn:
            tx = _Tx(conn, POSTGRESQL)
            salt = _create_schema(tx, POSTGRESQL, shared_salt=not settings.user_hash_salt)
    except psycopg.Error as e:
        raise ConfigError(
            f"The store at DATABASE_URL could not be opened: {_reason(e, url)}."
        ) from None
    if salt is None:
        salt = _load_salt(settings)
    else:
        logger.warning(
            "BAN_BOT_USER_HASH_SALT is not set: the salt for hashing user ids is kept in the "
            "database, so set it to keep the hashes safe from a copy of the database alone."
        )
    # The answering threads and the HTTP threads checking event ids each borrow one briefly.
    return _Postgres(url, max_size=settings.workers + 4), salt


def _create_schema(tx: _Tx, dialect: _Dialect, *, shared_salt: bool) -> bytes | None:
    """Create what is missing (idempotent); with ``shared_salt``, return the database's salt."""
    if dialect.maintenance_lock:
        tx.execute(dialect.maintenance_lock)
    for statement in _SCHEMA:
        tx.execute(statement.format(id=dialect.id_column))
    return _shared_salt(tx) if shared_salt else None


# -- the store ---------------------------------------------------------------------------------


class Store:
    """Feedback, question log, seen event ids and bot threads; safe to share between threads.

    Usage: ``Store.open(settings)``; see the module docstring.
    """

    def __init__(
        self,
        database: _Database,
        *,
        salt: bytes,
        question_log: bool,
        retention_days: int,
    ) -> None:
        self._db = database
        self._salt = salt
        self._question_log = question_log
        self._retention = dt.timedelta(days=retention_days)
        self._stop = threading.Event()
        self._pruner: threading.Thread | None = None

    @classmethod
    def open(cls, settings: Settings, *, prune_every: float | None = PRUNE_EVERY) -> Store:
        """Open the store (PostgreSQL when ``DATABASE_URL`` is set, else SQLite in
        ``settings.data_dir``), creating its tables when needed, and prune old rows now and
        every ``prune_every`` seconds (``None``: only now).

        Raises ``ConfigError`` (one sentence naming the variable) for a bad
        ``BAN_BOT_RETENTION_DAYS`` or a ``DATABASE_URL`` that is not PostgreSQL or cannot be
        reached.
        """
        if settings.retention_days < 1:
            raise ConfigError(
                "BAN_BOT_RETENTION_DAYS must be at least 1 (days to keep questions and "
                f"feedback), got {settings.retention_days}."
            )
        database: _Database
        if settings.database_url:
            url = _postgres_url(settings.database_url)
            database, salt = _open_postgres(settings, url)
            where = _describe_postgres(url)
        else:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            path = Path(settings.data_dir) / DB_FILE
            database = _Sqlite(path)
            with database.transaction() as tx:
                _create_schema(tx, SQLITE, shared_salt=False)
            salt = _load_salt(settings)
            where = f"SQLite at {path}"
        store = cls(
            database,
            salt=salt,
            question_log=settings.question_log,
            retention_days=settings.retention_days,
        )
        # DEBUG: the CLI logs at INFO, and a report must print nothing but the report.
        logger.debug("Store: %s", where)
        store.prune()
        if prune_every is not None:
            store._start_pruning(prune_every)
        return store

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._db.dialect.name

    def close(self) -> None:
        """Stop the daily prune and close the database (the pool, on PostgreSQL)."""
        self._stop.set()
        if self._pruner is not None and self._pruner is not threading.current_thread():
            self._pruner.join(10)
        self._db.close()

    def _start_pruning(self, every: float) -> None:
        def loop() -> None:
            while not self._stop.wait(every):
                try:
                    self.prune()
                except Exception:
                    # Logged and tried again at the next interval: a database that is briefly
                    # away must not stop the bot.
                    logger.warning("Pruning the store failed; trying again later", exc_info=True)

        self._pruner = threading.Thread(target=loop, name="ban-bot-store-prune", daemon=True)
        self._pruner.start()

    def hash_user(self, user_id: str) -> str:
        """The salted SHA-256 HMAC of a Slack user id: stable per install, not reversible."""
        return hmac.new(self._salt, user_id.encode(), hashlib.sha256).hexdigest()

    def record_feedback(
        self,
        *,
        user_id: str,
        question: str,
        entry_ids: Sequence[str],
        vote: Vote,
        now: dt.datetime | None = None,
    ) -> None:
        """Store one 👍/👎 click: the question, the answering entry ids, the vote, the time."""
        if vote not in ("up", "down"):
            raise ValueError(f"vote must be 'up' or 'down', got {vote!r}")
        with self._db.statement() as tx:
            tx.execute(
                "INSERT INTO feedback (created_at, user_hash, vote, question, entry_ids)"
                " VALUES (?, ?, ?, ?, ?)",
                (_stamp(now), self.hash_user(user_id), vote, question, json.dumps(list(entry_ids))),
            )

    def log_question(
        self,
        *,
        surface: str,
        question: str,
        entry_ids: Sequence[str],
        declined: bool,
        score: float | None = None,
        user_id: str | None = None,
        now: dt.datetime | None = None,
    ) -> None:
        """Log a question and how it was answered; a no-op when the question log is off
        (``BAN_BOT_QUESTION_LOG=false``)."""
        if not self._question_log:
            return
        with self._db.statement() as tx:
            tx.execute(
                "INSERT INTO questions"
                " (created_at, surface, user_hash, question, entry_ids, declined, score)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    _stamp(now),
                    surface,
                    self.hash_user(user_id) if user_id else None,
                    question,
                    json.dumps(list(entry_ids)),
                    int(declined),
                    score,
                ),
            )

    def mark_event_seen(self, event_id: str, *, now: dt.datetime | None = None) -> bool:
        """Remember an event id; True when it is new, False when it was seen before (by this
        process or, on PostgreSQL, by any replica). The unique key decides: of two replicas
        inserting the same id at once, the database lets exactly one row in."""
        with self._db.statement() as tx:
            cursor = tx.execute(
                "INSERT INTO seen_events (event_id, seen_at) VALUES (?, ?)"
                " ON CONFLICT (event_id) DO NOTHING",
                (event_id, _stamp(now)),
            )
            return cursor.rowcount == 1

    def mark_bot_thread(self, channel: str, thread_ts: str) -> None:
        """Remember that the bot answered in this thread, so follow-ups need no mention."""
        with self._db.statement() as tx:
            tx.execute(
                "INSERT INTO bot_threads (channel, thread_ts, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (channel, thread_ts) DO NOTHING",
                (channel, thread_ts, _stamp(None)),
            )

    def is_bot_thread(self, channel: str, thread_ts: str) -> bool:
        """Did the bot answer in this thread (within the retention period)?"""
        with self._db.statement() as tx:
            row = tx.execute(
                "SELECT 1 FROM bot_threads WHERE channel = ? AND thread_ts = ?",
                (channel, thread_ts),
            ).fetchone()
        return row is not None

    def feedback(self) -> list[Feedback]:
        """Every stored click, oldest first."""
        with self._db.statement() as tx:
            rows = tx.execute(
                "SELECT created_at, user_hash, vote, question, entry_ids FROM feedback ORDER BY id"
            ).fetchall()
        return [Feedback(r[0], r[1], r[2], r[3], tuple(json.loads(r[4]))) for r in rows]

    def questions(self) -> list[LoggedQuestion]:
        """Every logged question, oldest first."""
        with self._db.statement() as tx:
            rows = tx.execute(
                "SELECT created_at, surface, user_hash, question, entry_ids, declined, score"
                " FROM questions ORDER BY id"
            ).fetchall()
        return [
            LoggedQuestion(r[0], r[1], r[2], r[3], tuple(json.loads(r[4])), bool(r[5]), r[6])
            for r in rows
        ]

    def prune(self, *, now: dt.datetime | None = None) -> int:
        """Delete rows older than the retention period (``BAN_BOT_RETENTION_DAYS``); how many."""
        cutoff = _stamp((now or _now()) - self._retention)
        deleted = 0
        with self._db.transaction() as tx:
            if self._db.dialect.maintenance_lock:
                tx.execute(self._db.dialect.maintenance_lock)
            for table, column in _PRUNED:
                # Table and column names come from _PRUNED above, never from input.
                cursor = tx.execute(f"DELETE FROM {table} WHERE {column} < ?", (cutoff,))
                deleted += max(cursor.rowcount, 0)
        if deleted:
            logger.debug("Store: deleted %d rows older than %d days", deleted, self._retention.days)
        return deleted
