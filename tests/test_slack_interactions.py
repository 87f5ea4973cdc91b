"""Slash commands, buttons and App Home (signed requests dispatched to the real bolt app and
engine); over real HTTP, signature checks, /metrics and /healthz while the engine loads.
Slack's Web API is the local stand-in."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from mock_slack import MockWebApi, signed_headers
from mock_slack.signing import command_body
from mock_slack.web_api import Call
from slack_harness import (
    SIGNING_SECRET,
    USER,
    SlackHarness,
    UvicornThread,
    eventually,
    harness_settings,
    http,
)

from bot.config import Settings
from bot.slack.serve import HttpSurface
from bot.store import DB_FILE

pytest_plugins = ["slack_fixtures"]


def _buttons(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        e["action_id"]: e for b in blocks if b["type"] == "actions" for e in b.get("elements", [])
    }


def _answer_in_channel(slack: SlackHarness, question: str) -> Call:
    slack.event(slack.mention(question))
    return slack.api.wait_for("chat.postMessage")[-1]


# -- slash commands --------------------------------------------------------------------------


def test_ban_ask_acks_at_once_then_answers_privately_with_a_share_button(
    slack: SlackHarness,
) -> None:
    with slack.answers_held():
        reply = slack.command("/ban-ask", "can I still use kaspersky after the ban?")
        assert reply.status == 200 and reply.body == b""
        assert slack.api.calls_to("response/command") == []  # the ack did not wait for it

    [private] = slack.api.wait_for("response/command")
    assert private.body["response_type"] == "ephemeral"
    assert private.text
    assert "share_answer" in _buttons(private.blocks)
    [logged] = eventually(slack.store.questions)
    assert logged.surface == "slack:/ban-ask"


def test_share_button_posts_the_answer_in_the_channel_and_removes_the_private_copy(
    slack: SlackHarness,
) -> None:
    slack.command("/ban-ask", "when do kaspersky updates stop?")
    [private] = slack.api.wait_for("response/command")
    share = _buttons(private.blocks)["share_answer"]

    assert slack.click("share_answer", share["value"], ephemeral=True).status == 200
    shared, deleted = slack.api.wait_for("response/action", 2)
    assert shared.body["response_type"] == "in_channel"
    assert "September 29, 2024" in shared.text
    assert f"<@{USER}> shared an answer" in shared.rendered()
    assert "share_answer" not in _buttons(shared.blocks)
    assert deleted.body["delete_original"] is True


def test_ban_deadlines_filters_by_word_and_says_where_each_date_stands(
    slack: SlackHarness,
) -> None:
    reply = slack.command("/ban-deadlines", "updates")
    assert reply.status == 200
    message = reply.json()
    assert message["response_type"] == "ephemeral"
    assert message["text"]
    shown = "\n".join(b["text"]["text"] for b in message["blocks"] if b["type"] == "section")
    assert "September 29, 2024" in shown
    assert "(2 years ago)" in shown  # against the engine's clock, 2026-11-26
    everything = slack.command("/ban-deadlines").json()
    assert len(everything["blocks"]) > len(message["blocks"])
    none = slack.command("/ban-deadlines", "zebra").json()
    assert "No date in the timeline mentions" in none["text"]


def test_ban_help_lists_categories_examples_and_commands(slack: SlackHarness) -> None:
    reply = slack.command("/ban-help")
    assert reply.status == 200
    message = reply.json()
    shown = "\n".join(b["text"]["text"] for b in message["blocks"] if "text" in b)
    for command in ("/ban-ask", "/ban-deadlines", "/ban-help"):
        assert command in shown
    assert "deadlines and dates" in shown and "alternatives to Kaspersky" in shown
    assert "For example" in shown


# -- buttons ---------------------------------------------------------------------------------


def test_feedback_click_is_stored_with_a_hashed_user_and_acknowledged(
    slack: SlackHarness, real_engine: Any
) -> None:
    post = _answer_in_channel(slack, "when do kaspersky updates stop?")
    message = {"type": "message", "ts": "1700000000.000900", "thread_ts": post.body["thread_ts"]}

    assert slack.vote(post.blocks, "up", message=message).status == 200
    [thanks] = slack.api.wait_for("chat.postEphemeral")
    assert thanks.body["user"] == USER
    assert thanks.body["channel"] == "C0GENERAL"
    assert thanks.body["thread_ts"] == post.body["thread_ts"]
    assert "Thanks" in thanks.text

    [stored] = eventually(slack.store.feedback)
    assert stored.vote == "up"
    assert stored.question == "when do kaspersky updates stop?"
    # The question is logged after its answer is posted: wait for it, as for the feedback.
    [logged] = eventually(slack.store.questions)
    assert stored.entry_ids == logged.entry_ids  # the answering entries
    assert stored.entry_ids[0] == "updates-cutoff"
    assert set(stored.entry_ids) <= set(real_engine.knowledge.by_id)
    assert stored.user_hash == slack.store.hash_user(USER)
    assert len(stored.user_hash) == 64 and USER not in stored.user_hash
    raw = (slack.settings.data_dir / DB_FILE).read_bytes()
    assert USER.encode() not in raw


def test_feedback_on_a_private_answer_is_thanked_privately(slack: SlackHarness) -> None:
    slack.command("/ban-ask", "why was kaspersky banned?")
    [private] = slack.api.wait_for("response/command")
    slack.vote(private.blocks, "down", ephemeral=True)
    [thanks] = slack.api.wait_for("response/action")
    assert thanks.body["response_type"] == "ephemeral"
    assert thanks.body["replace_original"] is False
    [stored] = eventually(slack.store.feedback)
    assert stored.vote == "down"


def test_follow_up_button_answers_that_question_in_the_thread(slack: SlackHarness) -> None:
    post = _answer_in_channel(slack, "when do kaspersky updates stop?")
    follow_ups = {k: v for k, v in _buttons(post.blocks).items() if k.startswith("follow_up_")}
    assert 1 <= len(follow_ups) <= 2
    first = follow_ups["follow_up_0"]
    message = {"type": "message", "ts": "1700000000.000901", "thread_ts": post.body["thread_ts"]}

    slack.click("follow_up_0", first["value"], message=message)
    posts = slack.api.wait_for("chat.postMessage", 2)
    assert posts[1].body["thread_ts"] == post.body["thread_ts"]
    assert posts[1].text and posts[1].text != post.text


# -- App Home --------------------------------------------------------------------------------


def test_app_home_is_published_with_key_deadlines(slack: SlackHarness) -> None:
    slack.event({"type": "app_home_opened", "user": USER, "channel": "D0ALICE", "tab": "home"})
    [publish] = slack.api.wait_for("views.publish")
    assert publish.body["user_id"] == USER
    view = publish.body["view"]
    view = view if isinstance(view, dict) else json.loads(view)
    assert view["type"] == "home"
    shown = "\n".join(b["text"]["text"] for b in view["blocks"] if "text" in b)
    assert "Key deadlines" in shown and "September 29, 2024" in shown and "years ago" in shown
    assert "/ban-ask" in shown


def test_opening_the_messages_tab_publishes_nothing(slack: SlackHarness) -> None:
    slack.event({"type": "app_home_opened", "user": USER, "channel": "D0ALICE", "tab": "messages"})
    assert (
        slack.api.calls_to("views.publish")
        == []
        == [c for c in slack.idle() if c.api == "views.publish"]
    )


# -- metrics ---------------------------------------------------------------------------------


def _metric(text: str, line_start: str) -> float:
    lines = [line for line in text.splitlines() if line.startswith(line_start)]
    return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0


def test_metrics_count_questions_and_feedback(slack_http: SlackHarness) -> None:
    slack = slack_http
    asked = 'ban_bot_questions_total{surface="slack:mention"}'
    votes = 'ban_bot_feedback_votes_total{vote="down"}'
    before = http(f"{slack.url}/metrics").body.decode()
    post = _answer_in_channel(slack, "when do kaspersky updates stop?")
    slack.vote(post.blocks, "down", message={"type": "message", "ts": "1.2"})
    slack.api.wait_for("chat.postEphemeral")

    def scraped_after_both() -> str:
        # The question is counted once its answer is posted and the working indicator is
        # cleared, so the vote may be counted first: wait for both.
        text = http(f"{slack.url}/metrics").body.decode()
        counted = [_metric(text, m) > _metric(before, m) for m in (asked, votes)]
        return text if all(counted) else ""

    after = eventually(scraped_after_both)
    assert _metric(after, asked) == _metric(before, asked) + 1
    assert _metric(after, votes) == _metric(before, votes) + 1
    assert "ban_bot_index_info" in after


# -- request signing -------------------------------------------------------------------------


def test_unsigned_wrongly_signed_and_stale_requests_are_refused(slack_http: SlackHarness) -> None:
    slack = slack_http
    body = command_body("/ban-help", "", response_url=slack.api.response_url())
    assert slack.post(body, {"Content-Type": "application/x-www-form-urlencoded"}).status == 401
    wrong = signed_headers("not-the-signing-secret", body)
    assert slack.post(body, wrong).status == 401
    stale = signed_headers(SIGNING_SECRET, body, timestamp=int(time.time()) - 10 * 60)
    assert slack.post(body, stale).status == 401
    tampered = signed_headers(SIGNING_SECRET, body)
    assert slack.post(body.replace("ban-help", "ban-ask"), tampered).status == 401
    assert slack.post(body, signed_headers(SIGNING_SECRET, body)).status == 200
    assert [c.api for c in slack.idle() if c.api != "auth.test"] == []


# -- /healthz --------------------------------------------------------------------------------


def test_healthz_is_503_until_the_engine_is_loaded_then_200(
    real_settings: Settings, real_engine: Any, slack_api: MockWebApi, tmp_path: Path
) -> None:
    release = threading.Event()

    def load_engine(_: Settings) -> Any:
        release.wait(10)  # the engine takes as long as the test says
        return real_engine

    settings = harness_settings(real_settings, slack_api, tmp_path / "data")
    surface = HttpSurface(settings, load_engine=load_engine)
    with UvicornThread(surface.asgi) as server:
        health = http(f"{server.url}/healthz")
        assert health.status == 503 and health.json()["status"] == "loading"
        body = command_body("/ban-help", "", response_url=slack_api.response_url())
        assert (
            http(
                f"{server.url}/slack/events",
                data=body,
                headers=signed_headers(SIGNING_SECRET, body),
            ).status
            == 503
        )
        release.set()
        assert surface.ready.wait(10)
        assert http(f"{server.url}/healthz").status == 200
        reply = http(
            f"{server.url}/slack/events", data=body, headers=signed_headers(SIGNING_SECRET, body)
        )
        assert reply.status == 200 and "/ban-ask" in reply.json()["text"]


def test_healthz_stays_503_when_the_engine_cannot_load(
    real_settings: Settings, slack_api: MockWebApi, tmp_path: Path
) -> None:
    settings = harness_settings(real_settings, slack_api, tmp_path / "data").model_copy(
        update=dict(index_dir=tmp_path / "none")
    )
    surface = HttpSurface(settings)  # the real loader, on a folder with no index
    failed = threading.Event()
    surface.on_failure = failed.set
    with UvicornThread(surface.asgi) as server:
        assert failed.wait(20)
        health = http(f"{server.url}/healthz")
        assert health.status == 503 and health.json()["status"] == "failed"
