"""Slack's current surfaces where the workspace has them, and the classic bot where it does not,
over real HTTP against the Web API stand-in: suggested prompts when the bot's DM (or an
assistant thread) opens, Slack's feedback element for 👍/👎; a refusal falls back quietly to
the classic behaviour, logged once. (The loading status: tests/test_slack_events.py.)"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from slack_harness import USER, SlackHarness, buttons, eventually, vote_button

from bot.handlers import help_reply

pytest_plugins = ["slack_fixtures"]

UPDATES = "when do kaspersky updates stop?"


def _opened_dm(slack: SlackHarness) -> None:
    slack.event({"type": "app_home_opened", "user": USER, "channel": "D0ALICE", "tab": "messages"})


def test_opening_the_dm_suggests_the_engines_example_questions(
    slack: SlackHarness, real_engine: Any
) -> None:
    _opened_dm(slack)
    [call] = slack.api.wait_for("assistant.threads.setSuggestedPrompts")
    assert call.body["channel_id"] == "D0ALICE" and "thread_ts" not in call.body  # agent view
    examples = help_reply(real_engine).examples
    assert [p["message"] for p in call.body["prompts"]] == list(examples)[:4]
    assert all(len(p["title"]) <= 75 for p in call.body["prompts"])
    assert call.body["title"]


def test_an_assistant_thread_gets_them_in_that_thread(slack: SlackHarness) -> None:
    thread = {"user_id": USER, "channel_id": "D0ALICE", "thread_ts": "1710000000.000042"}
    slack.event({"type": "assistant_thread_started", "assistant_thread": thread, "event_ts": "1.2"})
    [call] = slack.api.wait_for("assistant.threads.setSuggestedPrompts")
    assert (call.body["channel_id"], call.body["thread_ts"]) == ("D0ALICE", "1710000000.000042")
    # Events without the shape Slack gives them change nothing.
    slack.event({"type": "assistant_thread_started", "assistant_thread": "nope"})
    slack.event({"type": "app_home_opened", "user": USER, "tab": "messages"})  # no channel
    apis = [c.api for c in slack.api.settle()]
    assert apis.count("assistant.threads.setSuggestedPrompts") == 1


def test_a_workspace_without_suggested_prompts_is_asked_once(
    slack: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    slack.api.refuse("assistant.threads.setSuggestedPrompts", "not_allowed")
    _opened_dm(slack)
    slack.api.wait_for("assistant.threads.setSuggestedPrompts")
    eventually(lambda: "not_allowed" in caplog.text)
    _opened_dm(slack)
    slack.event({"type": "app_home_opened", "user": USER, "channel": "D0ALICE", "tab": "home"})
    slack.api.wait_for("views.publish")  # the Home tab works as ever
    calls = [c.api for c in slack.api.settle()]
    assert calls.count("assistant.threads.setSuggestedPrompts") == 1
    off = [r for r in caplog.records if "setSuggestedPrompts (not_allowed)" in r.getMessage()]
    assert len(off) == 1 and "classic behaviour" in off[0].getMessage()


@pytest.mark.usefixtures("quick_backoff")
def test_a_passing_refusal_does_not_turn_the_prompts_off(slack: SlackHarness) -> None:
    slack.api.fail_next("assistant.threads.setSuggestedPrompts", status=500, times=3)
    _opened_dm(slack)
    slack.api.wait_for("assistant.threads.setSuggestedPrompts", 3)
    _opened_dm(slack)
    slack.api.wait_for("assistant.threads.setSuggestedPrompts", 4)


def test_slacks_feedback_element_is_clicked_like_the_buttons_were(slack: SlackHarness) -> None:
    slack.event(slack.mention(UPDATES))
    [post] = slack.api.wait_for("chat.postMessage")
    assert post.blocks[-1]["type"] == "context_actions"
    assert "feedback_up" not in buttons(post.blocks)
    slack.vote(post.blocks, "down", message={"type": "message", "ts": "1.2"})
    [stored] = eventually(slack.store.feedback)
    assert (stored.vote, stored.question) == ("down", UPDATES)
    # A feedback click whose value names no vote is not one the bot rendered: ignored.
    slack.click("feedback", '{"q": "x", "e": []}', action_type="feedback_buttons")
    slack.api.settle()
    assert len(slack.store.feedback()) == 1


def test_where_the_feedback_element_is_refused_the_classic_buttons_stand_in(
    make_slack: Callable[..., SlackHarness], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    slack = make_slack()
    slack.api.reject_blocks("context_actions")
    slack.event(slack.mention(UPDATES))
    refused, classic = slack.api.wait_for("chat.postMessage", 2)
    assert refused.response == {"ok": False, "error": "invalid_blocks"}
    assert classic.response["ok"] and classic.text == refused.text
    assert vote_button(classic.blocks, "down")[0] == "feedback_down"
    # From then on the classic buttons at once, in channels and through response_url alike.
    slack.event(slack.mention(UPDATES))
    third = slack.api.wait_for("chat.postMessage", 3)[2]
    assert third.response["ok"] and "feedback_up" in buttons(third.blocks)
    slack.command("/ban-ask", UPDATES)
    [private] = slack.api.wait_for("response/command")
    assert "feedback_up" in buttons(private.blocks)
    assert len(slack.api.calls_to("chat.postMessage")) == 3
    off = [r for r in caplog.records if "feedback_buttons (invalid_blocks)" in r.getMessage()]
    assert len(off) == 1


def test_a_response_url_refusing_the_element_gets_the_classic_buttons(
    make_slack: Callable[..., SlackHarness],
) -> None:
    slack = make_slack()
    slack.api.reject_blocks("context_actions")
    slack.command("/ban-ask", UPDATES)
    refused, classic = slack.api.wait_for("response/command", 2)
    assert any(b["type"] == "context_actions" for b in refused.blocks)
    assert "feedback_up" in buttons(classic.blocks) and "share_answer" in buttons(classic.blocks)
