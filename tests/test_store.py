"""The store's whole contract on both backends (SQLite in the data folder, and a real PostgreSQL
server from ``tests/pg.py``): feedback with hashed users, the question log and its switch, event
de-duplication under concurrency, bot threads, retention (at open and by the running process),
schema creation by several replicas at once, escalations to the experts (one per question
however many replicas claim it) and their replies, and a ``DATABASE_URL`` that cannot be used."""

from __future__ import annotations

import datetime as dt
import logging
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest
from cli_runner import ban_bot
from pg import PostgresServer, started_or_skipped

from bot import db
from bot.config import ConfigError, Settings
from bot.store import DB_FILE, SALT_FILE, Store

T = TypeVar("T")
BACKENDS = ["sqlite", "postgresql"]
TABLES = (
    "feedback",
    "questions",
    "seen_events",
    "bot_threads",
    "store_meta",
    "escalations",
    "expert_replies",
)


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """One install's settings: SQLite in its data folder, or a fresh PostgreSQL database."""
    base = Settings(data_dir=tmp_path / "data")
    if request.param == "postgresql":
        return base.model_copy(update=dict(database_url=request.getfixturevalue("database_url")))
    return base


@pytest.fixture
def open_store(settings: Settings) -> Iterator[Callable[..., Store]]:
    """``Store.open`` with settings overrides; every store opened is closed afterwards."""
    opened: list[Store] = []

    def open_(**overrides: object) -> Store:
        store = Store.open(settings.model_copy(update=dict(**overrides)), prune_every=None)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


def everything_stored(settings: Settings) -> str:
    """Every byte a copy of the database would hold, as text."""
    if settings.database_url is None:
        return (settings.data_dir / DB_FILE).read_bytes().decode(errors="replace")
    with psycopg.connect(settings.database_url) as conn:
        rows = [conn.execute(f"SELECT t::text FROM {table} t").fetchall() for table in TABLES]
    return "\n".join(str(r) for r in rows)


def in_threads(n: int, work: Callable[[int], T]) -> list[T]:
    """Run ``work(i)`` in ``n`` threads released at the same moment; their results."""
    barrier = threading.Barrier(n)
    results: list[T] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        result = work(i)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == n
    return results


# -- the contract, on both backends --------------------------------------------------------------


def test_the_backend_follows_database_url(
    settings: Settings, open_store: Callable[..., Store]
) -> None:
    expected = "postgresql" if settings.database_url else "sqlite"
    assert open_store().backend == expected
    assert (settings.data_dir / DB_FILE).exists() == (expected == "sqlite")


def test_feedback_is_stored_with_a_salted_hash_never_the_user_id(
    settings: Settings, open_store: Callable[..., Store]
) -> None:
    store = open_store()
    store.record_feedback(user_id="U0ALICE", question="when?", entry_ids=["a", "b"], vote="up")
    store.record_feedback(user_id="U0ALICE", question="why?", entry_ids=[], vote="down")
    first, second = store.feedback()  # oldest first
    assert (first.vote, first.question, first.entry_ids) == ("up", "when?", ("a", "b"))
    assert (second.vote, second.entry_ids) == ("down", ())
    assert first.user_hash == store.hash_user("U0ALICE") and len(first.user_hash) == 64
    assert dt.datetime.fromisoformat(first.created_at).utcoffset() == dt.timedelta(0)
    assert "U0ALICE" not in everything_stored(settings)


def test_a_bad_vote_is_refused(open_store: Callable[..., Store]) -> None:
    with pytest.raises(ValueError, match="vote"):
        open_store().record_feedback(
            user_id="U1",
            question="q",
            entry_ids=[],
            vote="sideways",  # type: ignore[arg-type]
        )


def test_question_log_and_its_switch(settings: Settings, open_store: Callable[..., Store]) -> None:
    store = open_store()
    store.log_question(
        surface="slack:dm", question="q", entry_ids=["a"], declined=False, score=0.7, user_id="U1"
    )
    store.log_question(surface="slack:/ban-ask", question="pizza?", entry_ids=[], declined=True)
    answered, declined = store.questions()
    assert (answered.surface, answered.declined, answered.score) == ("slack:dm", False, 0.7)
    assert answered.entry_ids == ("a",)
    assert answered.user_hash == store.hash_user("U1")
    assert (declined.declined, declined.user_hash, declined.score) == (True, None, None)

    off = open_store(question_log=False)
    off.log_question(surface="x", question="never kept", entry_ids=[], declined=True)
    assert [q.question for q in off.questions()] == ["q", "pizza?"]


def test_mark_event_seen_is_true_once_even_across_threads_and_restarts(
    open_store: Callable[..., Store],
) -> None:
    store = open_store()
    assert in_threads(16, lambda _: store.mark_event_seen("Ev1")).count(True) == 1
    assert open_store().mark_event_seen("Ev1") is False  # survives a restart
    assert store.mark_event_seen("Ev2") is True


def test_two_replicas_marking_one_event_let_exactly_one_through(
    open_store: Callable[..., Store], tmp_path: Path
) -> None:
    """Two stores on one database (two replicas' worth of connections), many threads each;
    on SQLite, two connections to one file."""
    replicas = [open_store(), open_store()]
    for round_ in range(5):

        def mark(i: int, r: int = round_) -> bool:
            return replicas[i % 2].mark_event_seen(f"Ev{r}")

        results = in_threads(24, mark)
        assert results.count(True) == 1, results


def test_bot_threads_are_remembered(open_store: Callable[..., Store]) -> None:
    store = open_store()
    assert not store.is_bot_thread("C1", "1.1")
    store.mark_bot_thread("C1", "1.1")
    store.mark_bot_thread("C1", "1.1")  # answering twice in a thread is no error
    assert store.is_bot_thread("C1", "1.1") and not store.is_bot_thread("C2", "1.1")
    assert open_store().is_bot_thread("C1", "1.1")


def _offer(store: Store, ts: str = "1.1", **overrides: object) -> None:
    fields: dict[str, object] = {
        "channel": "C1",
        "message_ts": ts,
        "thread_ts": ts,
        "user_id": "U0ALICE",
        "question": "who approved the exception?",
        "entry_ids": [],
        "declined": True,
    }
    store.offer_escalation(**{**fields, **overrides})  # type: ignore[arg-type]


def test_an_escalation_is_offered_once_per_question_and_claimed_once(
    settings: Settings, open_store: Callable[..., Store]
) -> None:
    replicas = [open_store(), open_store()]
    store = replicas[0]
    assert store.escalation("C1", "1.1") is None
    _offer(store)
    _offer(replicas[1], question="a second offer changes nothing")
    escalation = replicas[1].escalation("C1", "1.1")
    assert escalation is not None and escalation.key == "C1:1.1"
    assert (escalation.question, escalation.declined, escalation.sent) == (
        "who approved the exception?",
        True,
        False,
    )
    assert store.is_asker(escalation, "U0ALICE") and not store.is_asker(escalation, "U0BOB")
    assert "U0ALICE" not in everything_stored(settings)

    # Many clicks on two replicas at the same moment: one sends it.
    claims = in_threads(16, lambda i: replicas[i % 2].claim_escalation(escalation.id))
    assert claims.count(True) == 1
    store.release_escalation(escalation.id)  # the post failed: the asker may try again
    assert store.claim_escalation(escalation.id)
    store.escalation_sent(
        escalation.id,
        experts_channel="C0EXPERTS",
        experts_ts="9.9",
        permalink="https://example.slack.com/archives/C1/p11",
    )
    store.release_escalation(escalation.id)  # once posted, it stays sent
    sent = store.escalation_by_id(escalation.id)
    assert sent is not None and sent.sent and not store.claim_escalation(escalation.id)
    assert (sent.experts_channel, sent.experts_ts) == ("C0EXPERTS", "9.9")


def test_replies_in_either_thread_are_kept_and_one_is_marked_the_answer(
    settings: Settings, open_store: Callable[..., Store]
) -> None:
    store = open_store()
    _offer(store, "1.1")
    _offer(store, "1.5", thread_ts="1.1")  # a second question in the same thread, not sent
    escalation = store.escalation("C1", "1.1")
    assert escalation is not None
    assert store.escalation_in_thread("C1", "1.1") is None  # not sent yet: nobody was asked
    store.claim_escalation(escalation.id)
    store.escalation_sent(
        escalation.id, experts_channel="C0EXPERTS", experts_ts="9.9", permalink=None
    )
    for channel, thread in (("C0EXPERTS", "9.9"), ("C1", "1.1")):
        found = store.escalation_in_thread(channel, thread)
        assert found is not None and found.id == escalation.id
    assert store.escalation_in_thread("C0EXPERTS", "1.1") is None

    first = store.record_expert_reply(
        escalation.id,
        channel="C0EXPERTS",
        message_ts="9.10",
        user_id="U0EXPERT",
        text="Legal approved it in March. " + "x" * 10_000,
    )
    assert first is not None
    again = store.record_expert_reply(
        escalation.id, channel="C0EXPERTS", message_ts="9.10", user_id="U0EXPERT", text="dup"
    )
    assert again is None  # Slack delivered the same message twice
    second = store.record_expert_reply(
        escalation.id, channel="C1", message_ts="1.7", user_id="U0BOB", text="Ask Legal."
    )
    assert second is not None
    reply = store.expert_reply(first)
    assert reply is not None and len(reply.text) == 4000 and reply.text.startswith("Legal")
    assert reply.user_hash == store.hash_user("U0EXPERT")
    assert store.expert_reply_at("C1", "1.7") == store.expert_reply(second)
    assert store.expert_reply(12345) is None and store.expert_reply_at("C1", "1.1") is None

    other = store.expert_reply(second)
    assert other is not None
    assert store.expert_answers() == []
    assert in_threads(8, lambda _: store.mark_answer(reply)).count("first") == 1
    assert store.mark_answer(reply) == "same"
    assert store.mark_answer(other) == "changed"
    [answered] = store.expert_answers()
    assert answered.answer == other and answered.replies == 2
    assert answered.escalation.answered_at is not None
    assert "U0EXPERT" not in everything_stored(settings)
    assert "U0BOB" not in everything_stored(settings)


def test_escalations_and_their_replies_go_with_the_retention(
    open_store: Callable[..., Store],
) -> None:
    store = open_store(retention_days=30)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=31)
    _offer(store, "1.1", now=old)
    _offer(store, "2.2")
    for ts in ("1.1", "2.2"):
        escalation = store.escalation("C1", ts)
        assert escalation is not None
        store.record_expert_reply(
            escalation.id, channel="C1", message_ts=f"{ts}9", user_id="U2", text="reply"
        )
    reopened = open_store(retention_days=30)
    assert reopened.escalation("C1", "1.1") is None
    assert reopened.expert_reply_at("C1", "1.19") is None  # its reply went with it, though new
    assert reopened.escalation("C1", "2.2") is not None
    assert reopened.expert_reply_at("C1", "2.29") is not None


def test_rows_older_than_the_retention_period_are_pruned_at_open(
    open_store: Callable[..., Store],
) -> None:
    store = open_store(retention_days=30)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=31)
    recent = dt.datetime.now(dt.UTC) - dt.timedelta(days=29)
    store.record_feedback(user_id="U1", question="old", entry_ids=[], vote="down", now=old)
    store.log_question(surface="x", question="old", entry_ids=[], declined=True, now=old)
    store.log_question(surface="x", question="recent", entry_ids=[], declined=True, now=recent)
    store.mark_event_seen("Ev-old", now=old)
    store.record_feedback(user_id="U1", question="new", entry_ids=[], vote="up")

    reopened = open_store(retention_days=30)  # a restart prunes
    assert [f.question for f in reopened.feedback()] == ["new"]
    assert [q.question for q in reopened.questions()] == ["recent"]
    assert reopened.mark_event_seen("Ev-old") is True
    # A longer retention keeps what a shorter one would drop: the cut-off is the setting.
    assert reopened.prune(now=dt.datetime.now(dt.UTC) + dt.timedelta(days=2)) == 1


def test_a_running_store_prunes_by_itself(settings: Settings) -> None:
    """The daily prune, on a short interval: old rows go without a restart or a report."""
    store = Store.open(settings.model_copy(update=dict(retention_days=1)), prune_every=0.05)
    try:
        old = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
        store.log_question(surface="x", question="old", entry_ids=[], declined=True, now=old)
        store.record_feedback(user_id="U1", question="old", entry_ids=[], vote="down", now=old)
        deadline = time.monotonic() + 5
        while (store.questions() or store.feedback()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store.questions() == [] and store.feedback() == []
    finally:
        store.close()


def test_a_retention_below_one_day_is_refused(settings: Settings) -> None:
    with pytest.raises(ConfigError, match=r"^BAN_BOT_RETENTION_DAYS must be at least 1 .*got 0\.$"):
        Store.open(settings.model_copy(update=dict(retention_days=0)))


def test_replicas_starting_at_once_create_the_schema_once(settings: Settings) -> None:
    """Eight stores opening a fresh database at the same moment: no error, one schema."""
    stores = in_threads(8, lambda _: Store.open(settings, prune_every=None))
    try:
        stores[0].mark_event_seen("Ev1")
        assert all(s.mark_event_seen("Ev1") is False for s in stores[1:])
        # Every replica hashes a user the same way, or the report would count one person twice.
        assert len({s.hash_user("U0ALICE") for s in stores}) == 1
    finally:
        for s in stores:
            s.close()


def test_the_salt_is_stable_per_install_and_configurable(
    settings: Settings, open_store: Callable[..., Store], tmp_path: Path
) -> None:
    first = open_store().hash_user("U1")
    assert open_store().hash_user("U1") == first
    configured = open_store(user_hash_salt="from-the-environment")
    assert configured.hash_user("U1") != first
    assert configured.hash_user("U1") == open_store(
        user_hash_salt="from-the-environment"
    ).hash_user("U1")
    # A replica with its own data folder, on the same store.
    elsewhere = open_store(data_dir=tmp_path / "another-replica")
    if settings.database_url:
        assert elsewhere.hash_user("U1") == first  # one salt per database
    else:
        assert elsewhere.hash_user("U1") != first  # another SQLite install, another salt


# -- SQLite only ---------------------------------------------------------------------------------


def test_sqlite_salt_is_a_private_file_outside_the_database(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    Store.open(settings, prune_every=None).close()
    salt = settings.data_dir / SALT_FILE
    assert stat.S_IMODE(salt.stat().st_mode) == 0o600
    assert salt.read_bytes().strip() not in (settings.data_dir / DB_FILE).read_bytes()


# -- PostgreSQL only: a DATABASE_URL that cannot be used -----------------------------------------


def test_an_unreachable_database_url_is_one_sentence_without_the_password(
    postgres: PostgresServer,
) -> None:
    closed_port = postgres.url().replace(f":{postgres.port}/", ":1/")
    with pytest.raises(ConfigError) as e:
        Store.open(Settings(database_url=closed_port))
    message = str(e.value)
    assert message.startswith("The store at DATABASE_URL could not be opened: ")
    assert "Connection refused" in message and message.endswith(".")
    assert "\n" not in message and postgres.password not in message


def test_a_wrong_password_is_one_sentence_without_either_password(
    postgres: PostgresServer,
) -> None:
    wrong = postgres.url().replace(postgres.password, "not-the-password-4711")
    with pytest.raises(ConfigError) as e:
        Store.open(Settings(database_url=wrong))
    message = str(e.value)
    assert "DATABASE_URL" in message and "password authentication failed" in message
    assert "not-the-password-4711" not in message and postgres.password not in message


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("mysql://bot:hunter22@db/ban", "got a mysql: URL"),
        ("hunter22", "got something that is not a URL"),
    ],
)
def test_a_database_url_that_is_not_postgresql_is_refused(url: str, shown: str) -> None:
    with pytest.raises(ConfigError, match=r"^DATABASE_URL must be a postgresql:// URL") as e:
        Store.open(Settings(database_url=url))
    assert shown in str(e.value) and "hunter22" not in str(e.value)


def test_the_cli_names_database_url_in_one_line(postgres: PostgresServer, tmp_path: Path) -> None:
    unreachable = postgres.url().replace(f":{postgres.port}/", ":1/")
    done = ban_bot(["report"], env={"DATABASE_URL": unreachable, "BAN_BOT_DATA_DIR": str(tmp_path)})
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        'Error: The store at DATABASE_URL could not be opened: connection to server at "127.0.0.1",'
        " port 1 failed: Connection refused."
    ]
    assert postgres.password not in done.stderr + done.stdout


def test_the_database_url_never_reaches_the_logs(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = Store.open(Settings(database_url=database_url), prune_every=None)
    store.mark_event_seen("Ev1")
    store.close()
    password = psycopg.conninfo.conninfo_to_dict(database_url)["password"]
    assert caplog.records  # it does log where the store is
    assert str(password) not in caplog.text and database_url not in caplog.text


def test_the_store_fails_fast_while_postgresql_is_away_and_recovers_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An outage (or a restart of PostgreSQL) under a running store: each call fails within
    seconds instead of hanging, and the same store works again once the server is back."""
    # The pool's wait for a connection, shortened from its 3 s: the same path, sooner.
    pool_timeout = db.POOL_TIMEOUT / 3
    monkeypatch.setattr(db, "POOL_TIMEOUT", pool_timeout)
    server = started_or_skipped()  # its own server: the session's keeps running
    store = Store.open(Settings(database_url=server.url()), prune_every=None)
    try:
        assert store.mark_event_seen("Ev-before") is True
        server.pause()
        started = time.monotonic()
        with pytest.raises(psycopg.OperationalError):
            store.mark_event_seen("Ev-during")
        assert time.monotonic() - started < pool_timeout + 2
        server.resume()
        # The pool reconnects in the background with a growing back-off (psycopg_pool), so the
        # first call after the restart may still time out; within a few attempts it must work.
        deadline = time.monotonic() + 30
        while True:
            try:
                seen_again = store.mark_event_seen("Ev-before")
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
        assert seen_again is False  # nothing was lost
        assert store.mark_event_seen("Ev-after") is True
    finally:
        store.close()
        server.stop()
