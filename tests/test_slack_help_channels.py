"""Help channels (``BAN_BOT_HELP_CHANNELS``), over real HTTP through the real bolt app: every
top-level message there is a question without a mention, answered in its thread only when the
engine is confident; small talk, chat between people and questions the bot would decline get
silence. Elsewhere nothing changes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from slack_harness import SlackHarness, eventually

pytest_plugins = ["slack_fixtures"]

HELP = "C0HELP"
CONFIDENT = "when do kaspersky updates stop?"
OFF_TOPIC = "anyone up for lunch?"
DECLINED = "who approved the exception for our lab machines?"


@pytest.fixture
def slack(make_slack: Callable[..., SlackHarness]) -> SlackHarness:
    return make_slack(help_channels=(HELP, "C0OTHERHELP"))


def test_a_confident_question_is_answered_in_its_thread_without_a_mention(
    slack: SlackHarness,
) -> None:
    question = slack.message(CONFIDENT, channel=HELP)
    assert slack.event(question).status == 200
    [post] = slack.api.wait_for("chat.postMessage")
    assert (post.body["channel"], post.body["thread_ts"]) == (HELP, question["ts"])
    assert "September 29, 2024" in post.text
    # It is the bot's thread now: a follow-up there needs no mention either.
    slack.event(
        slack.message("and when did new sales stop?", channel=HELP, thread_ts=question["ts"])
    )
    posts = slack.api.wait_for("chat.postMessage", 2)
    assert posts[1].body["thread_ts"] == question["ts"] and "July 20, 2024" in posts[1].text
    logged = eventually(lambda: len(slack.store.questions()) == 2 and slack.store.questions())
    # Each answer is logged after it is posted, so under load the two may be logged either way.
    assert logged and sorted(q.surface for q in logged) == ["slack:follow-up", "slack:help-channel"]


def test_chat_and_questions_it_would_decline_are_left_alone(slack: SlackHarness) -> None:
    for text in (OFF_TOPIC, DECLINED, "thanks everyone!", "@dana can you look at this?"):
        assert slack.event(slack.message(text, channel=HELP)).status == 200
    logged = eventually(
        lambda: slack.store.questions() if len(slack.store.questions()) == 4 else []
    )
    assert [q.declined for q in logged] == [True] * 4  # each was read, and declined quietly
    apis = [c.api for c in slack.api.settle(quiet=0.5)]
    assert "chat.postMessage" not in apis and "chat.postEphemeral" not in apis


def test_a_channel_that_is_not_a_help_channel_needs_a_mention(slack: SlackHarness) -> None:
    slack.event(slack.message(CONFIDENT, channel="C0GENERAL"))
    slack.event(slack.message(CONFIDENT, channel="C0RANDOM"))
    assert "chat.postMessage" not in [c.api for c in slack.api.settle(quiet=0.5)]
    assert slack.store.questions() == []


def test_a_mention_in_a_help_channel_is_answered_once(slack: SlackHarness) -> None:
    mention = slack.mention(CONFIDENT, channel=HELP)
    slack.event(mention)
    # Slack sends the same message as message.channels too.
    slack.event(slack.message(mention["text"], channel=HELP, ts=mention["ts"]))
    slack.api.wait_for("chat.postMessage")
    assert [c.api for c in slack.api.settle(quiet=0.5)].count("chat.postMessage") == 1
