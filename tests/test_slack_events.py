"""Events: mentions, DMs, thread follow-ups, bots ignored, never answered twice, mention
injection, a 40 KB message, the 👀 reaction, faults. Signed requests dispatched to the real bolt
app with the real engine; Slack's Web API is the local stand-in, whose recorded calls the tests
assert on."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from mock_slack import BOT_USER_ID
from mock_slack.web_api import rendered_text
from slack_harness import (
    APP_TOKEN,
    BOT_TOKEN,
    SIGNING_SECRET,
    USER,
    SlackHarness,
    eventually,
    next_ts,
    vote_button,
)

pytest_plugins = ["slack_fixtures"]

UPDATES = "when do kaspersky updates stop?"
LIVE_MARKUP = ("<!channel>", "<!here>", "<!everyone>", "<@U0EVE", "<https://evil", "<#C0")


def test_mention_is_answered_in_the_thread_of_the_message(slack: SlackHarness) -> None:
    event = slack.mention(UPDATES)
    assert slack.event(event).status == 200

    [post] = slack.api.wait_for("chat.postMessage")
    assert post.body["channel"] == "C0GENERAL"
    assert post.body["thread_ts"] == event["ts"]
    assert "September 29, 2024" in post.text
    kinds = [b["type"] for b in post.blocks]
    assert kinds[0] == "section" and "context" in kinds  # the answer, then its sources
    assert kinds[-1] == "context_actions"  # Slack's 👍/👎 feedback element
    assert vote_button(post.blocks, "up")[0] == vote_button(post.blocks, "down")[0] == "feedback"


def test_mention_inside_a_thread_is_answered_in_that_thread(slack: SlackHarness) -> None:
    slack.event(slack.mention(UPDATES, thread_ts="1700000000.000777"))
    [post] = slack.api.wait_for("chat.postMessage")
    assert post.body["thread_ts"] == "1700000000.000777"


def test_follow_up_in_the_bots_thread_needs_no_mention(slack: SlackHarness) -> None:
    first = slack.mention(UPDATES)
    slack.event(first)
    # The moment Slack has the answer, the thread is the bot's: a reply sent right then counts.
    slack.api.wait_for("chat.postMessage")

    slack.event(slack.message("and when did new sales stop?", thread_ts=first["ts"]))
    posts = slack.api.wait_for("chat.postMessage", 2)
    assert posts[1].body["thread_ts"] == first["ts"]
    assert "July 20, 2024" in posts[1].text

    # People thanking each other in the thread get no "I don't know".
    slack.event(slack.message("thanks, that's great!", thread_ts=first["ts"]))
    # A thread the bot never answered in is none of its business.
    slack.event(slack.message("when do updates stop?", thread_ts="1600000000.000001"))
    assert len([c for c in slack.idle() if c.api == "chat.postMessage"]) == 2


def test_direct_message_is_answered_in_the_dm(slack: SlackHarness) -> None:
    slack.event(slack.message(UPDATES, channel="D0ALICE", channel_type="im"))
    [post] = slack.api.wait_for("chat.postMessage")
    assert post.body["channel"] == "D0ALICE"
    assert "thread_ts" not in post.body
    assert "September 29, 2024" in post.text


@pytest.mark.parametrize(
    "fields",
    [
        {"bot_id": "B0OTHER", "user": "U0OTHERBOT"},  # another bot
        {"user": BOT_USER_ID},  # the bot itself
        {"subtype": "message_changed"},  # an edit
        {"subtype": "channel_join"},  # a join
        {"subtype": "message_deleted"},  # a deletion
        {"subtype": "bot_message", "bot_id": "B0OTHER"},
    ],
)
def test_bots_and_message_subtypes_are_ignored(slack: SlackHarness, fields: dict[str, str]) -> None:
    slack.event(slack.message(UPDATES, channel="D0ALICE", channel_type="im", **fields))
    assert [c.api for c in slack.idle() if c.api.startswith("chat.")] == []


def test_repeated_event_id_and_retries_are_acknowledged_and_answered_once(
    slack: SlackHarness,
) -> None:
    event = slack.mention(UPDATES)
    assert slack.event(event, event_id="Ev0REPEAT").status == 200
    assert slack.event(event, event_id="Ev0REPEAT").status == 200  # repeated event id
    assert slack.event(event, event_id="Ev0REPEAT", retry_num=1).status == 200  # Slack's retry
    assert slack.event(event, event_id="Ev0OTHER", retry_num=2).status == 200
    # The same message as message.channels (another event id) is not a second question either.
    same = slack.message(f"<@{BOT_USER_ID}> {UPDATES}", ts=event["ts"])
    assert slack.event(same).status == 200

    calls = slack.idle()
    assert len([c for c in calls if c.api == "chat.postMessage"]) == 1


def test_typed_mentions_and_links_never_come_back_live(slack: SlackHarness) -> None:
    # What Slack sends when someone types these literally (escaped) and as real markup.
    typed = (
        "&lt;!channel&gt; &lt;!here&gt; &lt;!everyone&gt; &lt;@U0EVE&gt; "
        "&lt;https://evil.example|click&gt; &lt;#C0SECRET&gt; <!channel> <@U0EVE> "
        "when do kaspersky updates stop"
    )
    slack.event(slack.mention(typed))
    ask = slack.command("/ban-ask", typed)
    deadlines = slack.command("/ban-deadlines", typed)
    slack.api.wait_for("chat.postMessage")
    [private] = slack.api.wait_for("response/command")
    share_value = next(
        e["value"]
        for b in private.blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "share_answer"
    )
    slack.click("share_answer", share_value, ephemeral=True)
    slack.api.wait_for("response/action", 2)

    shown = [c.rendered() for c in slack.idle()]
    assert ask.body == b""  # /ban-ask answers through response_url, after the ack
    shown.append(rendered_text(deadlines.json()))
    assert any("updates" in text for text in shown)
    for text in shown:
        for markup in LIVE_MARKUP:
            assert markup not in text


def test_a_40kb_message_is_answered(slack: SlackHarness) -> None:
    huge = UPDATES + " " + ("kaspersky ban " * 3000)[:40_000]
    assert slack.event(slack.mention(huge)).status == 200
    [post] = slack.api.wait_for("chat.postMessage")
    assert post.text and len(post.text) < 4000
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in post.blocks)


def test_a_looking_that_up_status_while_an_answer_takes_longer_than_the_threshold(
    make_slack: Callable[..., SlackHarness],
) -> None:
    slack = make_slack(working_reaction_after=0.0)
    event = slack.mention(UPDATES)
    slack.event(event)
    statuses = slack.api.wait_for("assistant.threads.setStatus", 2)
    shown, cleared = (c.body for c in statuses)
    assert (shown["channel_id"], shown["thread_ts"]) == ("C0GENERAL", event["ts"])
    assert shown["status"] == "is looking that up…" and cleared["status"] == ""
    assert slack.api.calls_to("reactions.add") == []  # the status stands in for the 👀


def test_eyes_reaction_where_there_is_no_thread_for_a_status(
    make_slack: Callable[..., SlackHarness],
) -> None:
    slack = make_slack(working_reaction_after=0.0)
    event = slack.message(UPDATES, channel="D0ALICE", channel_type="im")
    slack.event(event)
    slack.api.wait_for("reactions.remove")
    apis = [c.api for c in slack.idle() if c.api != "auth.test"]
    # With a zero threshold the 👀 and the answer race each other; the removal always comes last.
    assert sorted(apis[:2]) == ["chat.postMessage", "reactions.add"]
    assert apis[2:] == ["reactions.remove"]
    add = slack.api.calls_to("reactions.add")[0]
    assert (add.body["name"], add.body["timestamp"], add.body["channel"]) == (
        "eyes",
        event["ts"],
        "D0ALICE",
    )


def test_without_the_status_the_eyes_reaction_stands_in_and_that_is_logged_once(
    make_slack: Callable[..., SlackHarness], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    slack = make_slack(working_reaction_after=0.0)
    slack.api.refuse("assistant.threads.setStatus", "not_allowed")  # a classic workspace
    for n in (1, 2):
        slack.event(slack.mention(UPDATES))
        slack.api.wait_for("reactions.remove", n)
        slack.api.wait_for("chat.postMessage", n)
    assert len(slack.api.calls_to("assistant.threads.setStatus")) == 1  # tried once, then not
    off = [
        r for r in caplog.records if "assistant.threads.setStatus (not_allowed)" in r.getMessage()
    ]
    assert len(off) == 1 and off[0].levelno == logging.INFO


def test_no_reaction_when_the_answer_is_quick(slack: SlackHarness) -> None:
    slack.event(slack.mention(UPDATES))
    slack.api.wait_for("chat.postMessage")
    assert slack.api.calls_to("reactions.add") == []


def test_rate_limit_is_retried_after_retry_after(slack: SlackHarness) -> None:
    slack.api.fail_next("chat.postMessage", status=429, retry_after=1)
    slack.event(slack.mention(UPDATES))
    posts = slack.api.wait_for("chat.postMessage", 2)
    assert "September 29, 2024" in posts[1].text


@pytest.mark.usefixtures("quick_backoff")
def test_an_internal_error_shows_an_apology_with_an_error_id_and_logs_the_traceback(
    slack: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # Slack's API failing past the client's retries: the answer cannot be posted.
    slack.api.fail_next("chat.postMessage", status=500, times=3)
    slack.event(slack.mention(UPDATES), event_id="Ev0BROKEN")
    posts = slack.api.wait_for("chat.postMessage", 4)
    apology = posts[3].text
    assert apology.startswith("Sorry")
    error_id = apology.rsplit("error id ", 1)[1].rstrip(".")
    assert "Traceback" not in apology and "SlackApiError" not in apology
    failures = [r for r in caplog.records if error_id in r.getMessage()]
    assert failures and failures[0].exc_info is not None  # the traceback is in the log only
    assert getattr(failures[0], "event_id", None) == "Ev0BROKEN"
    for secret in (BOT_TOKEN, SIGNING_SECRET, APP_TOKEN):
        assert secret not in caplog.text


def test_answers_are_logged_with_a_hashed_user(slack: SlackHarness) -> None:
    slack.event(slack.mention(UPDATES))
    slack.api.wait_for("chat.postMessage")
    [logged] = eventually(slack.store.questions)
    assert logged.surface == "slack:mention"
    assert logged.question == UPDATES
    assert logged.user_hash == slack.store.hash_user(USER) != USER


def test_thread_replies_to_other_messages_in_a_dm_thread_are_answered(slack: SlackHarness) -> None:
    ts = next_ts()
    slack.event(slack.message(UPDATES, channel="D0ALICE", channel_type="im", thread_ts=ts))
    [post] = slack.api.wait_for("chat.postMessage")
    assert post.body["thread_ts"] == ts
