"""Conversations over real HTTP through the real bolt app: follow-ups in a channel thread and in
a DM are answered in the context of what came before; a topic switch stands alone; small talk
gets a friendly reply (or, in a thread between people, silence); a DM's context ends after a
quiet gap. The turns live in the bot's store, bounded, whatever is in it."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXED_NOW
from mock_slack import MockWebApi
from mock_slack.web_api import Call
from slack_harness import SlackHarness, UvicornThread, eventually, harness_settings

from bot.answer import Engine
from bot.config import Settings
from bot.slack.serve import HttpSurface
from bot.store import Store
from bot.turns import MAX_TURNS, Turn

pytestmark = pytest.mark.slow


class Clock:
    """A clock the test moves forward (the engine's "now", for the DM's quiet gap)."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(FIXED_NOW)


@contextmanager
def _served(
    real_settings: Settings, real_engine: Engine, clock: Clock, data: Path, **overrides: Any
) -> Iterator[SlackHarness]:
    """The real app over real HTTP (uvicorn), with the real index and the test's clock."""
    engine = Engine(real_settings, real_engine.index, encoder=real_engine.encoder, clock=clock)
    with MockWebApi() as api:
        settings = harness_settings(real_settings, api, data).model_copy(update=overrides)
        surface = HttpSurface(settings, load_engine=lambda _: engine)
        with UvicornThread(surface.asgi) as server:
            assert surface.ready.wait(10), surface.error
            yield SlackHarness(api, surface, settings, url=server.url)


@pytest.fixture
def slack(
    real_settings: Settings, real_engine: Engine, clock: Clock, tmp_path: Path
) -> Iterator[SlackHarness]:
    with _served(real_settings, real_engine, clock, tmp_path / "data") as slack:
        yield slack


def _ask(slack: SlackHarness, event: dict[str, Any], posts_so_far: int) -> Call:
    """Deliver an event and return the bot's next post."""
    assert slack.event(event).status == 200
    return slack.api.wait_for("chat.postMessage", posts_so_far + 1)[-1]


def test_a_channel_thread_follows_its_topic_and_switches_cleanly(slack: SlackHarness) -> None:
    start = slack.mention("which US agency sanctioned Kaspersky's executives?")
    first = _ask(slack, start, 0)
    assert "OFAC" in first.text and first.body["thread_ts"] == start["ts"]

    def in_thread(text: str) -> dict[str, Any]:
        return slack.message(text, thread_ts=start["ts"])

    how_many = _ask(slack, in_thread("how many people?"), 1)  # no mention needed
    assert how_many.body["thread_ts"] == start["ts"] and "12" in how_many.text
    when = _ask(slack, in_thread("what day was that?"), 2)
    assert "June 21, 2024" in when.text
    body = next(b["text"]["text"] for b in when.blocks if b["type"] == "section")
    assert re.search(r"\*[^*]*June 21, 2024[^*]*\*", body), body  # the dated sentence, in bold
    # A new topic in the same thread is answered as if asked fresh.
    switch = _ask(slack, in_thread("when do kaspersky updates stop?"), 3)
    body = switch.blocks[0]["text"]["text"]  # the answer itself, not its sources
    assert "September 29, 2024" in body and "OFAC" not in body
    why = _ask(slack, in_thread("why?"), 4)
    assert any(w in why.text for w in ("Russia", "national security", "minimize disruption"))
    # People thanking each other in the thread: no ban fact, no reply at all.
    assert slack.event(in_thread("thanks!")).status == 200
    calls = slack.api.settle(quiet=0.5)
    assert [c.api for c in calls].count("chat.postMessage") == 5

    # The turns are the bot's own record, in the store, with no raw user id.
    turns = slack.store.context(f"C0GENERAL:{start['ts']}", now=FIXED_NOW)
    assert len(turns) == MAX_TURNS and turns[-1].question == "thanks!"
    with slack.store._db.statement() as tx:
        hashes = {r[0] for r in tx.execute("SELECT user_hash FROM conversation_turns").fetchall()}
    assert len(hashes) == 1 and "U0ALICE" not in hashes  # the user, hashed
    # No extra Slack reads were needed for the bot's own threads.
    assert "conversations.replies" not in [c.api for c in calls]
    assert "conversations.history" not in [c.api for c in calls]


def _buttons(post: Call) -> dict[str, dict[str, Any]]:
    return {e["action_id"]: e for b in post.blocks if b["type"] == "actions" for e in b["elements"]}


def test_a_follow_up_says_what_it_followed_and_can_be_asked_on_its_own(
    slack: SlackHarness, real_engine: Engine
) -> None:
    start = slack.mention("which US agency sanctioned Kaspersky's executives?")
    first = _ask(slack, start, 0)
    assert "Following up" not in first.text and "ask_alone" not in _buttons(first)
    how_many = _ask(slack, slack.message("how many people?", thread_ts=start["ts"]), 1)
    # It says which answer it followed up on, and offers the other reading.
    topic = real_engine.knowledge.by_id["ofac-designations"].questions[0]
    assert how_many.blocks[0]["type"] == "context"
    assert f"Following up on “{topic}”" in how_many.blocks[0]["elements"][0]["text"]
    assert "12" in how_many.text
    button = _buttons(how_many)["ask_alone"]
    assert button["value"] == "how many people?"

    bot_message = {"type": "message", "ts": "1700000000.000777", "thread_ts": start["ts"]}
    assert slack.click("ask_alone", button["value"], message=bot_message).status == 200
    alone = slack.api.wait_for("chat.postMessage", 3)[-1]
    expected = real_engine.answer("how many people?")
    assert alone.body["thread_ts"] == start["ts"]
    assert alone.blocks[0]["text"]["text"].startswith(expected.text[:60])
    assert "Following up" not in alone.text and "ask_alone" not in _buttons(alone)
    # The answer on its own is now the thread's topic: the next follow-up is read about it.
    latest = slack.store.context(f"C0GENERAL:{start['ts']}", now=FIXED_NOW)[-1]
    assert latest.question == "how many people?" and latest.entry_ids == expected.entry_ids[:1]


def test_in_a_dm_the_question_on_its_own_is_answered_in_the_dm(slack: SlackHarness) -> None:
    def dm(text: str) -> dict[str, Any]:
        return slack.message(text, channel="D0ALICE", channel_type="im")

    _ask(slack, dm("what is UltraAV?"), 0)
    macs = _ask(slack, dm("and on macs?"), 1)
    assert "Following up on" in macs.text
    button = _buttons(macs)["ask_alone"]
    bot_message = {"type": "message", "ts": "1700000000.000778"}  # the DM's main view
    slack.click("ask_alone", button["value"], channel="D0ALICE", message=bot_message)
    alone = slack.api.wait_for("chat.postMessage", 3)[-1]
    assert alone.body["channel"] == "D0ALICE" and not alone.body.get("thread_ts")
    assert alone.text != macs.text and "Following up" not in alone.text
    [logged] = eventually(
        lambda: [q for q in slack.store.questions() if q.surface == "slack:ask-alone-button"]
    )
    assert logged.question == "and on macs?" and not logged.declined


def test_a_dm_has_context_until_a_quiet_gap(slack: SlackHarness, clock: Clock) -> None:
    def dm(text: str) -> dict[str, Any]:
        return slack.message(text, channel="D0ALICE", channel_type="im")

    hello = _ask(slack, dm("hi"), 0)
    assert "ban-bot" in hello.text and "I don't know" not in hello.text
    first = _ask(slack, dm("what is UltraAV?"), 1)
    assert "Pango" in first.text
    clock.now += dt.timedelta(minutes=10)  # a pause inside the gap: still one conversation
    macs = _ask(slack, dm("and on macs?"), 2)
    assert "Mac" in macs.text and ("themselves" in macs.text or "download" in macs.text)
    clock.now += dt.timedelta(minutes=31)  # past BAN_BOT_DM_CONTEXT_MINUTES (30)
    alone = _ask(slack, dm("why?"), 3)
    # "why?" on its own, the next day, stands alone: the bot asks for the whole question.
    assert "I don't know what that refers to" in alone.text
    thanks = _ask(slack, dm("thanks"), 4)
    assert "welcome" in thanks.text and "Sources" not in thanks.text


def test_the_dm_gap_is_a_setting(
    real_settings: Settings, real_engine: Engine, clock: Clock, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with _served(real_settings, real_engine, clock, data, dm_context_minutes=5.0) as slack:
        dm = {"channel": "D0BOB", "channel_type": "im"}
        _ask(slack, slack.message("when did kaspersky updates stop?", **dm), 0)
        clock.now += dt.timedelta(minutes=6)
        late = _ask(slack, slack.message("why?", **dm), 1)
        assert "I don't know" in late.text


def test_a_long_thread_and_junk_in_the_store_never_slow_or_break_an_answer(
    slack: SlackHarness,
) -> None:
    store = slack.store
    start = slack.mention("when do kaspersky updates stop?")
    _ask(slack, start, 0)
    key = f"C0GENERAL:{start['ts']}"
    for i in range(1000):
        store.record(key, Turn(f"question {i} " + "x" * 5000, ("updates-cutoff",)), now=FIXED_NOW)
    with store._db.statement() as tx:  # rows no bot wrote: bad JSON, wrong types, bad times
        for created, ids in (("not a time", "[]"), (FIXED_NOW.isoformat(), "{oops"), ("", "7")):
            tx.execute(
                "INSERT INTO conversation_turns (conversation, created_at, question, entry_ids)"
                " VALUES (?, ?, ?, ?)",
                (key, created, "junk", ids),
            )
    context = store.context(key, now=FIXED_NOW)
    assert 1 <= len(context) <= MAX_TURNS and all(len(t.question) <= 500 for t in context)
    started = time.perf_counter()
    why = _ask(slack, slack.message("why?", thread_ts=start["ts"]), 1)
    assert time.perf_counter() - started < 10  # an answer, not a scan of 1,000 turns
    assert why.text


def test_slash_ask_is_one_question_without_context(slack: SlackHarness) -> None:
    _ask(
        slack,
        slack.message("when did kaspersky updates stop?", channel="D0CAROL", channel_type="im"),
        0,
    )
    reply = slack.command("/ban-ask", "why?", user="U0CAROL")
    assert reply.status == 200
    [private] = slack.api.wait_for("response/command")
    assert "I don't know what that refers to" in private.text


def test_turns_expire_with_the_retention(tmp_path: Path) -> None:
    store = Store.open(Settings(data_dir=tmp_path / "data", retention_days=1), prune_every=None)
    try:
        old = FIXED_NOW - dt.timedelta(days=3)
        store.record("C1:1.0", Turn("old question", ("x",)), now=old, user_id="U1")
        store.record("C1:1.0", Turn("new question", ("y",)), now=FIXED_NOW, user_id="U1")
        assert [t.question for t in store.context("C1:1.0", now=FIXED_NOW)] == [
            "old question",
            "new question",
        ]
        store.prune(now=FIXED_NOW)
        assert [t.question for t in store.context("C1:1.0", now=FIXED_NOW)] == ["new question"]
        with store._db.statement() as tx:
            hashes = [
                r[0] for r in tx.execute("SELECT user_hash FROM conversation_turns").fetchall()
            ]
        assert hashes and all(h and h != "U1" and len(h) == 64 for h in hashes)
    finally:
        store.close()
