"""The curation recording rules, as people meet them: someone asks the bot in Slack something it
declines and gives an answer a 👎; a curator then runs ``ban-bot report`` and sees both. On both
store backends; user ids only ever hashed; ``BAN_BOT_QUESTION_LOG=false`` keeps declines out."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from cli_runner import Ran, ban_bot
from slack_harness import USER, SlackHarness, eventually

from bot.store import DB_FILE

pytest_plugins = ["slack_fixtures"]

PIZZA = "what's the best pizza place near the office"
REFUND = "can I get a refund for my kaspersky subscription?"


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings overrides for the store backend."""
    if request.param == "postgresql":
        return {"database_url": request.getfixturevalue("database_url")}
    return {}


def _buttons(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        e["action_id"]: e for b in blocks if b["type"] == "actions" for e in b.get("elements", [])
    }


def _report(slack: SlackHarness) -> Ran:
    """``ban-bot report --json`` as a curator runs it, on the bot's store."""
    env = {"BAN_BOT_DATA_DIR": str(slack.settings.data_dir)}
    if slack.settings.database_url:
        env["DATABASE_URL"] = slack.settings.database_url
    return ban_bot(["report", "--json", "--index", str(slack.settings.index_dir)], env=env)


def _everything_stored(slack: SlackHarness) -> str:
    if slack.settings.database_url is None:
        return (slack.settings.data_dir / DB_FILE).read_bytes().decode(errors="replace")
    with psycopg.connect(slack.settings.database_url) as conn:
        return str(
            [
                conn.execute(f"SELECT t::text FROM {t} t").fetchall()
                for t in ("questions", "feedback")
            ]
        )


def test_declines_and_thumbs_down_reach_the_curation_report(
    make_slack: Callable[..., SlackHarness], backend: dict[str, Any]
) -> None:
    slack = make_slack(**backend)
    slack.event(slack.mention(PIZZA))
    slack.api.wait_for("chat.postMessage")  # the decline, said in the thread
    slack.event(slack.mention(REFUND))
    answer = slack.api.wait_for("chat.postMessage", 2)[1]
    message = {"type": "message", "ts": "1700000000.000900", "thread_ts": answer.body["thread_ts"]}
    assert slack.vote(answer.blocks, "down", message=message).status == 200

    [vote] = eventually(slack.store.feedback)
    assert (vote.vote, vote.question) == ("down", REFUND)
    logged = eventually(lambda: [q for q in slack.store.questions() if q.declined])
    assert [q.question for q in logged] == [PIZZA]
    assert logged[0].user_hash == vote.user_hash == slack.store.hash_user(USER)
    assert USER not in _everything_stored(slack)  # hashed, never raw

    report = _report(slack)
    assert report.returncode == 0, report.stderr
    groups = json.loads(report.stdout)["groups"]
    by_example = {g["examples"][0]: g for g in groups}
    assert (by_example[PIZZA]["declined"], by_example[PIZZA]["downvoted"]) == (1, 0)
    assert (by_example[REFUND]["declined"], by_example[REFUND]["downvoted"]) == (0, 1)
    assert by_example[REFUND]["answered_with"]  # the entry whose answer got the 👎


def test_with_the_question_log_off_declines_are_not_recorded(
    make_slack: Callable[..., SlackHarness], backend: dict[str, Any]
) -> None:
    slack = make_slack(question_log=False, **backend)
    slack.event(slack.mention(PIZZA))
    slack.api.wait_for("chat.postMessage")
    slack.idle()  # the answer has been logged, or would have been
    assert slack.store.questions() == []
    assert PIZZA not in _everything_stored(slack)
