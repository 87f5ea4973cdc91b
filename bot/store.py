"""Feedback, the question log, seen Slack event ids and the threads the bot answered in.

Everything sits behind ``Store`` so a later change can put it on PostgreSQL (``DATABASE_URL``)
without touching the callers. Slack user ids are never stored raw: only a salted SHA-256 HMAC.

Usage::

    store = Store.open(settings)
    if store.mark_event_seen("Ev123"):          # True the first time only
        store.log_question(surface="slack", user_id="U1", question="when?", entry_ids=["a"])
    store.record_feedback(user_id="U1", question="when?", entry_ids=["a"], vote="up")
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bot.config import Settings

Vote = Literal["up", "down"]
DB_FILE = "ban-bot.sqlite3"
SALT_FILE = "user-hash.salt"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    user_hash TEXT NOT NULL,
    vote TEXT NOT NULL CHECK (vote IN ('up', 'down')),
    question TEXT NOT NULL,
    entry_ids TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS questions (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    surface TEXT NOT NULL,
    user_hash TEXT,
    question TEXT NOT NULL,
    entry_ids TEXT NOT NULL,
    declined INTEGER NOT NULL,
    score REAL
);
CREATE TABLE IF NOT EXISTS seen_events (
    event_id TEXT PRIMARY KEY,
    seen_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS bot_threads (
    channel TEXT NOT NULL,
    thread_ts TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (channel, thread_ts)
);
"""


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


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _load_salt(settings: Settings) -> bytes:
    """The configured salt, else one generated once and kept (owner-only) beside the database.

    Kept out of the database so that a copy of the database alone cannot be used to test
    guessed user ids against the hashes.
    """
    if settings.user_hash_salt:
        return settings.user_hash_salt.encode()
    path = settings.data_dir / SALT_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    return path.read_bytes().strip()


class Store:
    """SQLite in ``settings.data_dir``; safe to share between the listener threads."""

    def __init__(
        self, conn: sqlite3.Connection, *, salt: bytes, question_log: bool, retention_days: int
    ) -> None:
        self._conn = conn
        self._salt = salt
        self._question_log = question_log
        self._retention = dt.timedelta(days=retention_days)
        # One connection, one writer at a time: sqlite3 objects are not thread-safe on their own.
        self._lock = threading.Lock()

    @classmethod
    def open(cls, settings: Settings) -> Store:
        """Open (creating when needed) the store in ``settings.data_dir`` and prune old rows."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            Path(settings.data_dir) / DB_FILE, check_same_thread=False, isolation_level=None
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.executescript(_SCHEMA)
        store = cls(
            conn,
            salt=_load_salt(settings),
            question_log=settings.question_log,
            retention_days=settings.retention_days,
        )
        store.prune()
        return store

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

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
        with self._tx() as c:
            c.execute(
                "INSERT INTO feedback (created_at, user_hash, vote, question, entry_ids)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    (now or _now()).isoformat(),
                    self.hash_user(user_id),
                    vote,
                    question,
                    json.dumps(list(entry_ids)),
                ),
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
        """Log a question and how it was answered; a no-op when the question log is off."""
        if not self._question_log:
            return
        with self._tx() as c:
            c.execute(
                "INSERT INTO questions"
                " (created_at, surface, user_hash, question, entry_ids, declined, score)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    (now or _now()).isoformat(),
                    surface,
                    self.hash_user(user_id) if user_id else None,
                    question,
                    json.dumps(list(entry_ids)),
                    int(declined),
                    score,
                ),
            )

    def mark_event_seen(self, event_id: str, *, now: dt.datetime | None = None) -> bool:
        """Remember an event id; True when it is new, False when it was seen before."""
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO seen_events (event_id, seen_at) VALUES (?, ?)"
                " ON CONFLICT (event_id) DO NOTHING",
                (event_id, (now or _now()).isoformat()),
            )
            return cur.rowcount == 1

    def mark_bot_thread(self, channel: str, thread_ts: str) -> None:
        """Remember that the bot answered in this thread, so follow-ups need no mention."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO bot_threads (channel, thread_ts, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (channel, thread_ts) DO NOTHING",
                (channel, thread_ts, _now().isoformat()),
            )

    def is_bot_thread(self, channel: str, thread_ts: str) -> bool:
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM bot_threads WHERE channel = ? AND thread_ts = ?",
                (channel, thread_ts),
            ).fetchone()
        return row is not None

    def feedback(self) -> list[Feedback]:
        """Every stored click, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT created_at, user_hash, vote, question, entry_ids FROM feedback ORDER BY id"
            ).fetchall()
        return [Feedback(r[0], r[1], r[2], r[3], tuple(json.loads(r[4]))) for r in rows]

    def questions(self) -> list[LoggedQuestion]:
        """Every logged question, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT created_at, surface, user_hash, question, entry_ids, declined, score"
                " FROM questions ORDER BY id"
            ).fetchall()
        return [
            LoggedQuestion(r[0], r[1], r[2], r[3], tuple(json.loads(r[4])), bool(r[5]), r[6])
            for r in rows
        ]

    def prune(self, *, now: dt.datetime | None = None) -> None:
        """Drop rows older than the retention period (``BAN_BOT_RETENTION_DAYS``)."""
        cutoff = ((now or _now()) - self._retention).isoformat()
        with self._tx() as c:
            c.execute("DELETE FROM questions WHERE created_at < ?", (cutoff,))
            c.execute("DELETE FROM feedback WHERE created_at < ?", (cutoff,))
            c.execute("DELETE FROM seen_events WHERE seen_at < ?", (cutoff,))
            c.execute("DELETE FROM bot_threads WHERE created_at < ?", (cutoff,))
