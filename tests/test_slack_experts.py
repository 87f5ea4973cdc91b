"""Asking the experts, over real HTTP through the real bolt app against the Slack Web API
stand-in: a decline's "Ask the experts" posts the question (escaped) in the experts' channel with
its permalink and the group mentioned, once; the experts' replies are kept and one is marked as
the answer (its button or ✅); `ban-bot report` lists it and `--drafts` writes a draft that the
build refuses. Hostile questions post safely; clicks on someone else's question, and forged
payloads, change nothing; without BAN_BOT_EXPERTS_CHANNEL there is no button at all."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mock_slack import BOT_USER_ID
from mock_slack.web_api import PERMALINK_BASE, Call
from slack_harness import (
    BOT_TOKEN,
    USER,
    SlackHarness,
    buttons,
    next_ts,
)

from bot.config import ROOT, ConfigError, Settings
from bot.slack.services import check_slack_settings

pytest_plugins = ["slack_fixtures"]

EXPERTS, GROUP = "C0EXPERTS", "S0EXPERTS"
EXPERT, BOB = "U0EXPERT", "U0BOB"
# Something only the organisation knows: the engine declines it.
DECLINED = "who approved the exception for our lab machines?"
ANSWERED = "when do kaspersky updates stop?"
LIVE = re.compile(r"<[!@#]|<https?:")
HOSTILE = (
    "<!channel> <!here> <!everyone> <!subteam^S0EVIL> <@U0EVE> <@U0EVE|eve> <#C0SECRET|secret> "
    "<https://evil.example/x|click here> &lt;!channel&gt; &lt;@U0EVE&gt; "
)


@pytest.fixture
def slack(make_slack: Callable[..., SlackHarness]) -> SlackHarness:
    return make_slack(experts_channel=EXPERTS, experts_group=GROUP)


def _ask(slack: SlackHarness, question: str) -> tuple[dict[str, Any], Call]:
    """A mention, and the bot's answer in its thread."""
    event = slack.mention(question)
    before = len(slack.api.calls_to("chat.postMessage"))
    assert slack.event(event).status == 200
    post = slack.api.wait_for(
        "chat.postMessage", before + 1, where=lambda c: c.body.get("channel") == "C0GENERAL"
    )[-1]
    return event, post


def _under(post: Call, slack: SlackHarness) -> dict[str, Any]:
    """The bot's posted message, as a click on one of its buttons names it."""
    ts = slack.api.answered(post)["ts"]
    return {"type": "message", "ts": ts, "thread_ts": post.body.get("thread_ts")}


def _experts_posts(slack: SlackHarness) -> list[Call]:
    return [c for c in slack.api.calls_to("chat.postMessage") if c.body["channel"] == EXPERTS]


def _ephemeral_to(slack: SlackHarness, user: str, n: int = 1) -> list[Call]:
    return slack.api.wait_for("chat.postEphemeral", n, where=lambda c: c.body["user"] == user)


def _escalate(slack: SlackHarness, question: str = DECLINED) -> tuple[dict[str, Any], Call]:
    """Ask, click "Ask the experts" as the asker; the event and the experts' post."""
    event, post = _ask(slack, question)
    key = buttons(post.blocks)["ask_experts"]["value"]
    assert slack.click("ask_experts", key, message=_under(post, slack)).status == 200
    [experts] = slack.api.wait_for("chat.postMessage", where=lambda c: c.body["channel"] == EXPERTS)
    _told(slack)
    return event, experts


def _told(slack: SlackHarness) -> Call:
    """The asker's private word that the experts were asked: the escalation is recorded as
    sent by then, so replies under the experts' post are recognised."""
    return slack.api.wait_for(
        "chat.postEphemeral",
        where=lambda c: c.body["user"] == USER and "asked the experts" in c.text,
    )[0]


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
        timeout=300,
    )


def test_a_decline_asked_of_the_experts_ends_as_a_draft_the_build_refuses(
    make_slack: Callable[..., SlackHarness], tmp_path: Path
) -> None:
    # The whole flow over real HTTP (uvicorn) through the real bolt app; the others dispatch.
    slack = make_slack(http=True, experts_channel=EXPERTS, experts_group=GROUP)
    assert slack.url is not None
    event, post = _ask(slack, DECLINED)
    key = buttons(post.blocks)["ask_experts"]["value"]
    assert key == f"C0GENERAL:{event['ts']}"
    under = _under(post, slack)

    assert slack.click("ask_experts", key, message=under).status == 200
    [link] = slack.api.wait_for("chat.getPermalink")
    assert (link.body["channel"], link.body["message_ts"]) == ("C0GENERAL", event["ts"])
    [experts] = slack.api.wait_for("chat.postMessage", where=lambda c: c.body["channel"] == EXPERTS)
    permalink = f"{PERMALINK_BASE}C0GENERAL/p{event['ts'].replace('.', '')}"
    assert experts.text.startswith(f"<!subteam^{GROUP}> <@{USER}> asked a question")
    shown = experts.rendered()
    assert f"<{permalink}|Open the original message>" in shown and DECLINED in shown
    assert "in <#C0GENERAL>" in shown
    assert experts.body["unfurl_links"] is False and experts.body["unfurl_media"] is False
    [told] = _ephemeral_to(slack, USER)
    assert (
        told.body["thread_ts"] == event["ts"] and "asked the experts in <#C0EXPERTS>" in told.text
    )

    # One escalation per question: a second click says so and posts nothing.
    slack.click("ask_experts", key, message=under)
    again = _ephemeral_to(slack, USER, 2)[-1]
    assert "already sent" in again.text
    assert len(_experts_posts(slack)) == 1

    # An expert answers under the experts' post: kept, hashed, acknowledged privately.
    experts_ts = slack.api.answered(experts)["ts"]
    reply = slack.message(
        "Legal approved the lab exception in March, ticket <https://it.example/T-1|T-1>.",
        user=EXPERT,
        channel=EXPERTS,
        thread_ts=experts_ts,
    )
    slack.event(reply)
    [ack] = _ephemeral_to(slack, EXPERT)
    assert ack.body["thread_ts"] == experts_ts and "kept your reply" in ack.text
    mark = buttons(ack.blocks)["mark_answer"]["value"]
    kept = slack.store.expert_reply_at(EXPERTS, reply["ts"])
    assert kept is not None and kept.user_hash == slack.store.hash_user(EXPERT) != EXPERT

    # Marked as the answer by the expert, under their (private) acknowledgement; the answer
    # reaches the asker in their thread.
    slack.click("mark_answer", mark, user_id=EXPERT, channel=EXPERTS, ephemeral=True)
    [marked] = slack.api.wait_for("response/action")
    assert "Marked as the answer" in marked.text
    [relay] = slack.api.wait_for(
        "chat.postMessage",
        where=lambda c: c.body["channel"] == "C0GENERAL" and "experts answered" in c.text,
    )
    assert relay.body["thread_ts"] == event["ts"] and "Legal approved" in relay.text
    assert not LIVE.search(relay.rendered().replace(f"<@{BOT_USER_ID}>", ""))

    # The curator's side: the report lists it, --drafts writes it, the build refuses the draft.
    env = {"BAN_BOT_DATA_DIR": str(slack.settings.data_dir)}
    drafts = tmp_path / "drafts"
    index = str(slack.settings.index_dir)
    report = _run("report", "--index", index, "--drafts", str(drafts), env=env)
    assert report.returncode == 0, report.stderr
    assert "1 questions answered by the experts" in report.stdout
    assert f"“{DECLINED}”" in report.stdout and "Legal approved the lab exception" in report.stdout
    [draft] = drafts.glob("draft-*.yaml")
    knowledge = tmp_path / "knowledge"
    shutil.copytree(slack.settings.knowledge_dir, knowledge)
    shutil.copy(draft, knowledge)
    built = _run(
        "index", "build", "--knowledge", str(knowledge), "--index", str(tmp_path / "i"), env=env
    )
    assert built.returncode == 1
    [line] = built.stderr.strip().splitlines()
    assert line.startswith(f"Error: {knowledge / draft.name}, entry 'draft-")
    assert "missing field 'sources'" in line


def test_a_thumbs_down_offers_the_experts_to_its_asker_only(slack: SlackHarness) -> None:
    event, post = _ask(slack, ANSWERED)
    assert "ask_experts" not in buttons(post.blocks)  # an answer offers it after a 👎 only
    under = _under(post, slack)
    slack.vote(post.blocks, "down", message=under, user_id=BOB)  # someone else's 👎
    [bobs] = _ephemeral_to(slack, BOB)
    assert "ask_experts" not in buttons(bobs.blocks)
    slack.vote(post.blocks, "down", message=under)
    [thanks] = _ephemeral_to(slack, USER)
    key = buttons(thanks.blocks)["ask_experts"]["value"]
    assert key == f"C0GENERAL:{event['ts']}"

    # The thanks is private: its button answers through response_url.
    slack.click("ask_experts", key, ephemeral=True)
    [experts] = slack.api.wait_for("chat.postMessage", where=lambda c: c.body["channel"] == EXPERTS)
    assert "found unhelpful" in experts.rendered() and "`updates-cutoff`" in experts.rendered()
    [told] = slack.api.wait_for("response/action")
    assert "asked the experts" in told.text
    slack.vote(post.blocks, "down", message=under)
    assert "ask_experts" not in buttons(_ephemeral_to(slack, USER, 2)[-1].blocks)  # sent


def test_replies_in_the_original_thread_count_and_a_check_mark_marks_one(
    slack: SlackHarness,
) -> None:
    event, _ = _escalate(slack)
    posts_before = len(slack.api.calls_to("chat.postMessage"))
    bobs = slack.message("Ask Dana in IT, she signed it off.", user=BOB, thread_ts=event["ts"])
    slack.event(bobs)
    [ack] = _ephemeral_to(slack, BOB)
    assert ack.body["thread_ts"] == event["ts"]
    # The asker's own follow-up in the thread is a question to the bot, not a reply to keep.
    slack.event(slack.message(ANSWERED, thread_ts=event["ts"]))
    slack.api.wait_for("chat.postMessage", posts_before + 1)
    assert slack.store.expert_reply_at("C0GENERAL", bobs["ts"]) is not None
    assert len(slack.api.calls_to("chat.postMessage")) == posts_before + 1  # Bob: no answer

    # ✅ by the asker marks nothing; ✅ by Bob marks his reply, and nothing is relayed: the
    # asker saw it in their own thread.
    slack.reaction("white_check_mark", "C0GENERAL", bobs["ts"])
    refused = _ephemeral_to(slack, USER, 2)[-1]
    assert "not by the one who asked" in refused.text and slack.store.expert_answers() == []
    slack.reaction("white_check_mark", "C0GENERAL", bobs["ts"], user=BOB)
    marked = _ephemeral_to(slack, BOB, 2)[-1]
    assert "Marked as the answer" in marked.text and marked.body["thread_ts"] == event["ts"]
    [answer] = slack.store.expert_answers()
    assert answer.answer.text.startswith("Ask Dana")
    calls = slack.api.settle()
    assert not [c for c in calls if c.api == "chat.postMessage" and "experts answered" in c.text]
    # Another reaction, or ✅ on a message that is no reply, is none of the bot's business.
    slack.reaction("tada", "C0GENERAL", bobs["ts"], user=BOB)
    slack.reaction("white_check_mark", "C0GENERAL", event["ts"], user=BOB)
    after = slack.api.settle()
    assert len([c for c in after if c.api == "chat.postEphemeral" and c.body["user"] == BOB]) == 2
    assert len(slack.store.expert_answers()) == 1


def test_a_hostile_question_reaches_the_experts_harmless(slack: SlackHarness) -> None:
    huge = HOSTILE + DECLINED + " " + ("zq lab exception " * 3000)[:40_000]
    _, post = _ask(slack, huge)
    key = buttons(post.blocks)["ask_experts"]["value"]
    slack.click("ask_experts", key, message=_under(post, slack))
    [experts] = slack.api.wait_for("chat.postMessage", where=lambda c: c.body["channel"] == EXPERTS)
    ours = (f"<!subteam^{GROUP}>", f"<@{USER}>", "<#C0GENERAL>", f"<{PERMALINK_BASE}")
    shown = experts.rendered()
    for markup in ours:
        shown = shown.replace(markup, "")
    assert not LIVE.search(shown), shown[:500]
    assert "evil.example" not in shown  # a link's label is kept, never its target
    assert len(experts.text) < 4000
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in experts.blocks)
    _told(slack)
    # A hostile reply is kept as written and quoted back escaped.
    experts_ts = slack.api.answered(experts)["ts"]
    reply = slack.message(
        HOSTILE + "it was Legal", user=EXPERT, channel=EXPERTS, thread_ts=experts_ts
    )
    slack.event(reply)
    [ack] = _ephemeral_to(slack, EXPERT)
    slack.click(
        "mark_answer", buttons(ack.blocks)["mark_answer"]["value"], user_id=EXPERT, ephemeral=True
    )
    [relay] = slack.api.wait_for(
        "chat.postMessage",
        where=lambda c: c.body["channel"] == "C0GENERAL" and "experts answered" in c.text,
    )
    assert not LIVE.search(relay.rendered()) and "it was Legal" in relay.text


def test_clicks_on_someone_elses_question_and_forged_payloads_change_nothing(
    slack: SlackHarness,
) -> None:
    event, post = _ask(slack, DECLINED)
    key = buttons(post.blocks)["ask_experts"]["value"]
    under = _under(post, slack)
    slack.click("ask_experts", key, message=under, user_id=BOB)
    assert "Only the person who asked" in _ephemeral_to(slack, BOB)[0].text
    for forged in ("junk", f"C0GENERAL:{next_ts()}", '{"m": "' + key + '"}', key + "x", ""):
        slack.click("ask_experts", forged, message=under)
    told = _ephemeral_to(slack, USER, 5)
    assert len(told) == 5 and all("not (or no longer) in my records" in t.text for t in told)
    escalation = slack.store.escalation("C0GENERAL", event["ts"])
    assert escalation is not None and not escalation.sent
    assert _experts_posts(slack) == [] and slack.api.calls_to("chat.getPermalink") == []

    # The asker sends it; an expert replies; nobody can mark with a forged id, nor the asker.
    slack.click("ask_experts", key, message=under)
    [experts] = slack.api.wait_for("chat.postMessage", where=lambda c: c.body["channel"] == EXPERTS)
    _told(slack)
    slack.event(
        slack.message(
            "Legal did.",
            user=EXPERT,
            channel=EXPERTS,
            thread_ts=slack.api.answered(experts)["ts"],
        )
    )
    [ack] = _ephemeral_to(slack, EXPERT)
    mark = buttons(ack.blocks)["mark_answer"]["value"]
    slack.click("mark_answer", mark, ephemeral=True)  # the asker
    slack.click("mark_answer", str(int(mark) + 1000), user_id=BOB, ephemeral=True)
    slack.click("mark_answer", "1 OR 1=1", user_id=BOB, ephemeral=True)
    # Three clicks on four answering threads: their notices may come in any order.
    replies = [c.text for c in slack.api.wait_for("response/action", 3)]
    assert sum("not by the one who asked" in r for r in replies) == 1
    assert sum("not (or no longer) in my records" in r for r in replies) == 2
    assert slack.store.expert_answers() == []


def test_without_the_experts_channel_there_is_nothing_to_escalate(
    make_slack: Callable[..., SlackHarness],
) -> None:
    slack = make_slack()
    event, post = _ask(slack, DECLINED)
    assert "ask_experts" not in buttons(post.blocks)
    assert "ask the people who know" not in post.text
    _, answered = _ask(slack, ANSWERED)
    slack.vote(answered.blocks, "down", message=_under(answered, slack))
    [thanks] = _ephemeral_to(slack, USER)
    assert buttons(thanks.blocks) == {}
    # An old button still clicked after the setting was removed: nothing happens but a notice.
    slack.click("ask_experts", f"C0GENERAL:{event['ts']}", message=_under(post, slack))
    assert "not (or no longer) in my records" in _ephemeral_to(slack, USER, 2)[-1].text
    assert slack.store.escalation("C0GENERAL", event["ts"]) is None


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"experts_channel": "#experts"}, "BAN_BOT_EXPERTS_CHANNEL"),
        ({"experts_channel": "C0EXPERTS", "experts_group": "@compliance"}, "BAN_BOT_EXPERTS_GROUP"),
        ({"experts_group": "S0EXPERTS"}, "BAN_BOT_EXPERTS_GROUP"),
        ({"help_channels": ("C0HELP", "help")}, "BAN_BOT_HELP_CHANNELS"),
    ],
)
def test_a_bad_setting_is_one_sentence_naming_the_variable(
    overrides: dict[str, Any], variable: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        check_slack_settings(Settings(**overrides))
    message = str(raised.value)
    assert message.startswith(variable) and message.count(". ") == 0 and message.endswith(".")


def test_the_cli_stops_on_a_bad_experts_channel_in_one_line(
    slack: SlackHarness,
) -> None:
    started = _run(
        "serve",
        env={
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_APP_TOKEN": "xapp-1-test",
            "SLACK_API_URL": slack.api.url,
            "BAN_BOT_INDEX_DIR": str(slack.settings.index_dir),
            "BAN_BOT_DATA_DIR": str(slack.settings.data_dir),
            "BAN_BOT_EXPERTS_CHANNEL": "compliance",
        },
    )
    assert started.returncode == 1 and "Traceback" not in started.stderr
    assert started.stderr.strip().splitlines()[-1] == (
        "Error: BAN_BOT_EXPERTS_CHANNEL must be a channel id such as C0123ABCD (in Slack: the "
        "channel's name -> About), got 'compliance'."
    )


def test_kept_replies_expire_with_the_retention(slack: SlackHarness) -> None:
    _, experts = _escalate(slack)
    thread = slack.api.answered(experts)["ts"]
    slack.event(slack.message("Legal did.", user=EXPERT, channel=EXPERTS, thread_ts=thread))
    _ephemeral_to(slack, EXPERT)
    assert slack.store.prune(now=dt.datetime.now(dt.UTC) + dt.timedelta(days=91)) > 0
    with slack.store._db.statement() as tx:
        left = [
            tx.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("escalations", "expert_replies")
        ]
    assert left == [0, 0]
