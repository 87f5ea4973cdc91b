"""The SQLite store: feedback with hashed users, the question log, event de-duplication."""

from __future__ import annotations

import datetime as dt
import stat
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from bot.config import Settings
from bot.store import DB_FILE, SALT_FILE, Store


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def test_feedback_is_stored_with_a_salted_hash_never_the_user_id(settings: Settings) -> None:
    store = Store.open(settings)
    store.record_feedback(user_id="U0ALICE", question="when?", entry_ids=["a", "b"], vote="up")
    [row] = store.feedback()
    assert (row.vote, row.question, row.entry_ids) == ("up", "when?", ("a", "b"))
    assert row.user_hash == store.hash_user("U0ALICE") and len(row.user_hash) == 64
    assert dt.datetime.fromisoformat(row.created_at).tzinfo is not None
    store.close()
    assert b"U0ALICE" not in (settings.data_dir / DB_FILE).read_bytes()


def test_the_salt_is_kept_private_and_stable(settings: Settings, tmp_path: Path) -> None:
    first = Store.open(settings).hash_user("U1")
    salt = settings.data_dir / SALT_FILE
    assert stat.S_IMODE(salt.stat().st_mode) == 0o600
    assert Store.open(settings).hash_user("U1") == first
    other = Store.open(replace(settings, data_dir=tmp_path / "other")).hash_user("U1")
    assert other != first  # another install, another salt
    configured = replace(settings, user_hash_salt="from-the-environment")
    assert Store.open(configured).hash_user("U1") not in (first, other)


def test_a_bad_vote_is_refused(settings: Settings) -> None:
    with pytest.raises(ValueError):
        Store.open(settings).record_feedback(
            user_id="U1",
            question="q",
            entry_ids=[],
            vote="sideways",  # type: ignore[arg-type]
        )


def test_mark_event_seen_is_true_once_even_across_threads(settings: Settings) -> None:
    store = Store.open(settings)
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(store.mark_event_seen("Ev1")))
        for _ in range(16)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1
    assert Store.open(settings).mark_event_seen("Ev1") is False  # survives a restart
    assert store.mark_event_seen("Ev2") is True


def test_question_log_and_its_switch(settings: Settings) -> None:
    store = Store.open(settings)
    store.log_question(
        surface="slack:dm", question="q", entry_ids=["a"], declined=False, score=0.7, user_id="U1"
    )
    [logged] = store.questions()
    assert (logged.surface, logged.declined, logged.score) == ("slack:dm", False, 0.7)
    assert logged.user_hash == store.hash_user("U1")
    off = Store.open(replace(settings, data_dir=settings.data_dir / "off", question_log=False))
    off.log_question(surface="x", question="q", entry_ids=[], declined=True)
    assert off.questions() == []


def test_bot_threads_are_remembered(settings: Settings) -> None:
    store = Store.open(settings)
    assert not store.is_bot_thread("C1", "1.1")
    store.mark_bot_thread("C1", "1.1")
    store.mark_bot_thread("C1", "1.1")
    assert store.is_bot_thread("C1", "1.1") and not store.is_bot_thread("C2", "1.1")


def test_rows_older_than_the_retention_period_are_pruned(settings: Settings) -> None:
    store = Store.open(replace(settings, retention_days=30))
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=31)
    store.record_feedback(user_id="U1", question="q", entry_ids=[], vote="down", now=old)
    store.log_question(surface="x", question="q", entry_ids=[], declined=True, now=old)
    store.mark_event_seen("Ev-old", now=old)
    store.record_feedback(user_id="U1", question="new", entry_ids=[], vote="up")
    store.prune()
    assert [f.question for f in store.feedback()] == ["new"]
    assert store.questions() == []
    assert store.mark_event_seen("Ev-old") is True
