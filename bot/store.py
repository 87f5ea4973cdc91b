"""Feedback, the question log, seen Slack event ids, the threads the bot answered in, and the
questions sent to the experts with the replies people gave.

SQLite in ``BAN_BOT_DATA_DIR`` by default (embedded, nothing to set up); PostgreSQL when
``DATABASE_URL`` is set, so that several replicas share one store and de-duplicate Slack's
deliveries through it. One ``Store`` and one set of SQL serve both; the databases themselves,
and the few differences between them, are ``bot.db``'s. Slack user ids are never stored raw:
only a salted SHA-256 HMAC. Rows older than ``BAN_BOT_RETENTION_DAYS`` are deleted at open and once a day.

Usage::

    store = Store.open(settings)
    if store.mark_event_seen("Ev123"):          # True the first time only, across replicas
        store.log_question(surface="slack", user_id="U1", question="when?", entry_ids=["a"],
                           declined=False)
    store.record_feedback(user_id="U1", question="when?", entry_ids=["a"], vote="up")
    store.offer_escalation(channel="C1", message_ts="1.2", thread_ts="1.2", user_id="U1",
                           question="who approved it?", entry_ids=[], declined=True)
    escalation = store.escalation("C1", "1.2")   # looked up, never taken from a button
    if store.is_asker(escalation, "U1") and store.claim_escalation(escalation.id):
        ...post it to the experts, then store.escalation_sent(escalation.id, ...)
    store.close()
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import secrets
import tempfile
import threading
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Literal

from bot.config import ConfigError, Settings
from bot.db import DB_FILE, POOL_TIMEOUT, Database, Tx, open_database
from bot.turns import MAX_TURN_CHARS, MAX_TURNS, Turn, recent

__all__ = [
    "DB_FILE",
    "POOL_TIMEOUT",
    "SALT_FILE",
    "Escalation",
    "ExpertAnswer",
    "ExpertReply",
    "Feedback",
    "LoggedQuestion",
    "Marked",
    "Store",
    "Vote",
]

logger = logging.getLogger(__name__)

Vote = Literal["up", "down"]
SALT_FILE = "user-hash.salt"
PRUNE_EVERY = 24 * 60 * 60.0  # seconds between two prunes of a running process
_SALT_NAME = "user_hash_salt"
MAX_KEY_CHARS = 200  # a conversation key is "channel:thread_ts" or "dm:channel"
# What curators need of a person's reply is its text; a Slack message can be 40,000 characters.
MAX_REPLY_CHARS = 4000
Marked = Literal["first", "changed", "same"]

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
    # The bot's own record of the turns it answered, for follow-ups in threads and DMs.
    """CREATE TABLE IF NOT EXISTS conversation_turns (
    id {id},
    conversation TEXT NOT NULL,
    created_at TEXT NOT NULL,
    user_hash TEXT,
    question TEXT NOT NULL,
    entry_ids TEXT NOT NULL
)""",
    # Questions the bot declined or whose answer got a 👎, as offered to their asker to send to
    # the experts: one row per question message (the unique key makes "one escalation per
    # question" hold across replicas); sent_at is set by whoever claims it first.
    """CREATE TABLE IF NOT EXISTS escalations (
    id {id},
    created_at TEXT NOT NULL,
    channel TEXT NOT NULL,
    message_ts TEXT NOT NULL,
    thread_ts TEXT,
    asker_hash TEXT NOT NULL,
    question TEXT NOT NULL,
    entry_ids TEXT NOT NULL,
    declined INTEGER NOT NULL,
    sent_at TEXT,
    experts_channel TEXT,
    experts_ts TEXT,
    permalink TEXT,
    answer_id BIGINT,
    answered_at TEXT,
    UNIQUE (channel, message_ts)
)""",
    # What people other than the asker replied in an escalated thread: the text is kept, since
    # it is what curators turn into knowledge.
    """CREATE TABLE IF NOT EXISTS expert_replies (
    id {id},
    created_at TEXT NOT NULL,
    escalation_id BIGINT NOT NULL,
    channel TEXT NOT NULL,
    message_ts TEXT NOT NULL,
    user_hash TEXT NOT NULL,
    text TEXT NOT NULL,
    UNIQUE (channel, message_ts)
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
    "CREATE INDEX IF NOT EXISTS conversation_turns_created_at ON conversation_turns (created_at)",
    "CREATE INDEX IF NOT EXISTS escalations_created_at ON escalations (created_at)",
    "CREATE INDEX IF NOT EXISTS expert_replies_created_at ON expert_replies (created_at)",
    # A reply in a thread is matched to its escalation by either of the two threads.
    "CREATE INDEX IF NOT EXISTS escalations_thread ON escalations (channel, thread_ts)",
    "CREATE INDEX IF NOT EXISTS escalations_experts ON escalations (experts_channel, experts_ts)",
    "CREATE INDEX IF NOT EXISTS expert_replies_escalation ON expert_replies (escalation_id)",
    # Context is read as the newest few turns of one conversation.
    "CREATE INDEX IF NOT EXISTS conversation_turns_latest ON conversation_turns (conversation, id)",
)

# (table, time column) pruned after the retention period.
_PRUNED = (
    ("questions", "created_at"),
    ("feedback", "created_at"),
    ("seen_events", "seen_at"),
    ("bot_threads", "created_at"),
    ("conversation_turns", "created_at"),
    ("escalations", "created_at"),
    ("expert_replies", "created_at"),
)
_ESCALATION_COLUMNS = (
    "id, created_at, channel, message_ts, thread_ts, asker_hash, question, entry_ids, declined,"
    " sent_at, experts_channel, experts_ts, permalink, answer_id, answered_at"
)
_REPLY_COLUMNS = "id, escalation_id, created_at, channel, message_ts, user_hash, text"


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


@dataclass(frozen=True)
class Escalation:
    """A question the bot declined, or whose answer got a 👎, that its asker may send (or has
    sent) to the experts. ``channel`` and ``message_ts`` are the question's own message;
    ``thread_ts`` is where the bot answered it (``None``: a DM's main view)."""

    id: int
    created_at: str
    channel: str
    message_ts: str
    thread_ts: str | None
    asker_hash: str
    question: str
    entry_ids: tuple[str, ...]
    declined: bool
    sent_at: str | None = None
    experts_channel: str | None = None
    experts_ts: str | None = None  # the experts' post, under which they reply
    permalink: str | None = None  # of the question's message
    answer_id: int | None = None  # the reply marked as the answer
    answered_at: str | None = None

    @property
    def key(self) -> str:
        """What a button carries to name it: ``channel:message_ts`` (looked up, never trusted)."""
        return f"{self.channel}:{self.message_ts}"

    @property
    def sent(self) -> bool:
        return self.sent_at is not None


@dataclass(frozen=True)
class ExpertReply:
    """A reply someone other than the asker gave in an escalated thread."""

    id: int
    escalation_id: int
    created_at: str
    channel: str
    message_ts: str
    user_hash: str
    text: str


@dataclass(frozen=True)
class ExpertAnswer:
    """An escalation whose answer was marked: what the curation report and its drafts show."""

    escalation: Escalation
    answer: ExpertReply
    replies: int  # every reply recorded for it, the answer included


def _escalation(row: Sequence[object]) -> Escalation:
    return Escalation(
        id=int(str(row[0])),
        created_at=str(row[1]),
        channel=str(row[2]),
        message_ts=str(row[3]),
        thread_ts=None if row[4] is None else str(row[4]),
        asker_hash=str(row[5]),
        question=str(row[6]),
        entry_ids=tuple(json.loads(str(row[7]))),
        declined=bool(row[8]),
        sent_at=None if row[9] is None else str(row[9]),
        experts_channel=None if row[10] is None else str(row[10]),
        experts_ts=None if row[11] is None else str(row[11]),
        permalink=None if row[12] is None else str(row[12]),
        answer_id=None if row[13] is None else int(str(row[13])),
        answered_at=None if row[14] is None else str(row[14]),
    )


def _reply(row: Sequence[object]) -> ExpertReply:
    return ExpertReply(
        id=int(str(row[0])),
        escalation_id=int(str(row[1])),
        created_at=str(row[2]),
        channel=str(row[3]),
        message_ts=str(row[4]),
        user_hash=str(row[5]),
        text=str(row[6]),
    )


# -- times and the salt ------------------------------------------------------------------------


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


def _shared_salt(tx: Tx) -> bytes:
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


def _create_schema(tx: Tx, *, shared_salt: bool) -> bytes | None:
    """Create what is missing (idempotent); with ``shared_salt``, return the database's salt."""
    if tx.dialect.maintenance_lock:
        tx.execute(tx.dialect.maintenance_lock)
    for statement in _SCHEMA:
        tx.execute(statement.format(id=tx.dialect.id_column))
    return _shared_salt(tx) if shared_salt else None


# -- the store ---------------------------------------------------------------------------------


class Store:
    """Feedback, question log, seen event ids, bot threads and escalations; safe to share
    between threads.

    Usage: ``Store.open(settings)``; see the module docstring.
    """

    def __init__(
        self,
        database: Database,
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
        # PostgreSQL replicas share one salt, kept in the database unless one is configured.
        shared = bool(settings.database_url) and not settings.user_hash_salt
        database, salt = open_database(
            settings, setup=lambda tx: _create_schema(tx, shared_salt=shared)
        )
        if salt is None:
            salt = _load_salt(settings)
        else:
            logger.warning(
                "BAN_BOT_USER_HASH_SALT is not set: the salt for hashing user ids is kept in the "
                "database, so set it to keep the hashes safe from a copy of the database alone."
            )
        store = cls(
            database,
            salt=salt,
            question_log=settings.question_log,
            retention_days=settings.retention_days,
        )
        # DEBUG: the CLI logs at INFO, and a report must print nothing but the report.
        logger.debug("Store: %s", database.where)
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

    def record(self, key: str, turn: Turn, *, now: dt.datetime, user_id: str | None = None) -> None:
        """Record a turn the bot answered in conversation ``key`` (a thread or a DM), the
        question capped, so that the next follow-up there is read in its context."""
        with self._db.statement() as tx:
            tx.execute(
                "INSERT INTO conversation_turns"
                " (conversation, created_at, user_hash, question, entry_ids)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    key[:MAX_KEY_CHARS],
                    _stamp(now),
                    self.hash_user(user_id) if user_id else None,
                    turn.question[:MAX_TURN_CHARS],
                    json.dumps(list(turn.entry_ids[:3])),
                ),
            )

    def context(self, key: str, *, now: dt.datetime, gap: dt.timedelta | None = None) -> list[Turn]:
        """The last few turns of conversation ``key``, oldest first (none from before a quiet
        ``gap``). Bounded whatever the thread's length, and a row that does not parse (a
        hand-edited or foreign database) is skipped, never an error."""
        with self._db.statement() as tx:
            rows = tx.execute(
                "SELECT created_at, question, entry_ids FROM conversation_turns"
                " WHERE conversation = ? ORDER BY id DESC LIMIT ?",
                (key[:MAX_KEY_CHARS], MAX_TURNS),
            ).fetchall()
        turns: list[tuple[dt.datetime, Turn]] = []
        for created_at, question, entry_ids in rows:
            try:
                when = dt.datetime.fromisoformat(str(created_at))
                ids = json.loads(entry_ids)
                if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                    continue
                if when.tzinfo is None:
                    when = when.replace(tzinfo=dt.UTC)
            except (ValueError, TypeError):
                continue
            turns.append((when, Turn(str(question)[:MAX_TURN_CHARS], tuple(ids[:3]))))
        return recent(turns, now, gap)

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

    # -- escalations: questions sent to the experts, and their replies

    def _one(self, sql: str, params: Sequence[object]) -> Any:
        """The first row of one query, or ``None``."""
        with self._db.statement() as tx:
            return tx.execute(sql, params).fetchone()

    def offer_escalation(
        self,
        *,
        channel: str,
        message_ts: str,
        thread_ts: str | None,
        user_id: str,
        question: str,
        entry_ids: Sequence[str],
        declined: bool,
        now: dt.datetime | None = None,
    ) -> None:
        """Remember a question whose asker is offered "Ask the experts" (at once for a decline,
        after a 👎 for an answer), keyed by its message; a second offer for it changes nothing."""
        with self._db.statement() as tx:
            tx.execute(
                "INSERT INTO escalations (created_at, channel, message_ts, thread_ts, asker_hash,"
                " question, entry_ids, declined) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (channel, message_ts) DO NOTHING",
                (
                    _stamp(now),
                    channel,
                    message_ts,
                    thread_ts,
                    self.hash_user(user_id),
                    question,
                    json.dumps(list(entry_ids[:3])),
                    int(declined),
                ),
            )

    def escalation(self, channel: str, message_ts: str) -> Escalation | None:
        """The escalation of the question at ``channel``/``message_ts``, if one was offered."""
        row = self._one(
            f"SELECT {_ESCALATION_COLUMNS} FROM escalations WHERE channel = ? AND message_ts = ?",
            (channel, message_ts),
        )
        return None if row is None else _escalation(row)

    def escalation_by_id(self, escalation_id: int) -> Escalation | None:
        row = self._one(
            f"SELECT {_ESCALATION_COLUMNS} FROM escalations WHERE id = ?", (escalation_id,)
        )
        return None if row is None else _escalation(row)

    def is_asker(self, escalation: Escalation, user_id: str) -> bool:
        """Did ``user_id`` ask the escalated question?"""
        return hmac.compare_digest(self.hash_user(user_id), escalation.asker_hash)

    def claim_escalation(self, escalation_id: int, *, now: dt.datetime | None = None) -> bool:
        """Take the right to send it to the experts: True for exactly one caller, across
        replicas; False when it was sent (or is being sent) already."""
        with self._db.statement() as tx:
            cursor = tx.execute(
                "UPDATE escalations SET sent_at = ? WHERE id = ? AND sent_at IS NULL",
                (_stamp(now), escalation_id),
            )
            return cursor.rowcount == 1

    def escalation_sent(
        self, escalation_id: int, *, experts_channel: str, experts_ts: str, permalink: str | None
    ) -> None:
        """Record where the experts were asked, so that replies under that post are captured."""
        with self._db.statement() as tx:
            tx.execute(
                "UPDATE escalations SET experts_channel = ?, experts_ts = ?, permalink = ?"
                " WHERE id = ?",
                (experts_channel, experts_ts, permalink, escalation_id),
            )

    def release_escalation(self, escalation_id: int) -> None:
        """Undo a claim whose post failed, so that the asker can try again."""
        with self._db.statement() as tx:
            tx.execute(
                "UPDATE escalations SET sent_at = NULL WHERE id = ? AND experts_ts IS NULL",
                (escalation_id,),
            )

    def escalation_in_thread(self, channel: str, thread_ts: str) -> Escalation | None:
        """The escalation (already sent) whose thread this is: the experts' post, or the thread
        the bot answered the question in; the newest when several questions of one thread were
        sent."""
        row = self._one(
            f"SELECT {_ESCALATION_COLUMNS} FROM escalations"
            " WHERE (experts_channel = ? AND experts_ts = ?)"
            " OR (channel = ? AND thread_ts = ? AND sent_at IS NOT NULL)"
            " ORDER BY id DESC LIMIT 1",
            (channel, thread_ts, channel, thread_ts),
        )
        return None if row is None else _escalation(row)

    def record_expert_reply(
        self,
        escalation_id: int,
        *,
        channel: str,
        message_ts: str,
        user_id: str,
        text: str,
        now: dt.datetime | None = None,
    ) -> int | None:
        """Keep a reply (its text capped at ``MAX_REPLY_CHARS``) and return its id; ``None``
        when that message was recorded before (Slack delivered it twice)."""
        with self._db.statement() as tx:
            # fetchall: SQLite finishes (and commits) a RETURNING statement once it is read out.
            rows = tx.execute(
                "INSERT INTO expert_replies"
                " (created_at, escalation_id, channel, message_ts, user_hash, text)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (channel, message_ts) DO NOTHING RETURNING id",
                (
                    _stamp(now),
                    escalation_id,
                    channel,
                    message_ts,
                    self.hash_user(user_id),
                    text[:MAX_REPLY_CHARS],
                ),
            ).fetchall()
        return int(rows[0][0]) if rows else None

    def expert_reply(self, reply_id: int) -> ExpertReply | None:
        row = self._one(f"SELECT {_REPLY_COLUMNS} FROM expert_replies WHERE id = ?", (reply_id,))
        return None if row is None else _reply(row)

    def expert_reply_at(self, channel: str, message_ts: str) -> ExpertReply | None:
        """The recorded reply that is the message at ``channel``/``message_ts``, if any."""
        row = self._one(
            f"SELECT {_REPLY_COLUMNS} FROM expert_replies WHERE channel = ? AND message_ts = ?",
            (channel, message_ts),
        )
        return None if row is None else _reply(row)

    def mark_answer(self, reply: ExpertReply, *, now: dt.datetime | None = None) -> Marked:
        """Make ``reply`` its escalation's answer: ``"first"`` for the first answer marked (for
        exactly one caller, across replicas), ``"changed"`` when it replaces another one,
        ``"same"`` when it was the answer already."""
        with self._db.statement() as tx:
            first = tx.execute(
                "UPDATE escalations SET answer_id = ?, answered_at = ?"
                " WHERE id = ? AND answer_id IS NULL",
                (reply.id, _stamp(now), reply.escalation_id),
            )
            if first.rowcount == 1:
                return "first"
        with self._db.statement() as tx:
            changed = tx.execute(
                "UPDATE escalations SET answer_id = ?, answered_at = ?"
                " WHERE id = ? AND answer_id <> ?",
                (reply.id, _stamp(now), reply.escalation_id, reply.id),
            )
            return "changed" if changed.rowcount == 1 else "same"

    def expert_answers(self) -> list[ExpertAnswer]:
        """Every escalation with a marked answer, oldest answer first."""
        with self._db.statement() as tx:
            escalations = [
                _escalation(r)
                for r in tx.execute(
                    f"SELECT {_ESCALATION_COLUMNS} FROM escalations"
                    " WHERE answer_id IS NOT NULL ORDER BY answered_at, id"
                ).fetchall()
            ]
            answers: list[ExpertAnswer] = []
            for e in escalations:
                row = tx.execute(
                    f"SELECT {_REPLY_COLUMNS} FROM expert_replies WHERE id = ?", (e.answer_id,)
                ).fetchone()
                count = tx.execute(
                    "SELECT COUNT(*) FROM expert_replies WHERE escalation_id = ?", (e.id,)
                ).fetchone()
                if row is not None:  # a reply pruned before its escalation: nothing to show
                    answers.append(ExpertAnswer(e, _reply(row), int(count[0])))
        return answers

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
            # A reply outlives nothing it belongs to.
            cursor = tx.execute(
                "DELETE FROM expert_replies WHERE escalation_id NOT IN (SELECT id FROM escalations)"
            )
            deleted += max(cursor.rowcount, 0)
        if deleted:
            logger.debug("Store: deleted %d rows older than %d days", deleted, self._retention.days)
        return deleted
