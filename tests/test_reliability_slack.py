"""Reliability of the Slack surface over real HTTP, against the Web API stand-in: a full queue
tells the user to try again, the per-user rate limit, Slack's retries of events the bot never
saw, Slack API faults (429 with Retry-After, 5xx) retried and, when retries run out, logged
with the event id while the bot keeps serving; no secret in any log line, no raw user id in the
store. Plus the worker pool and the rate limit on their own."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mock_slack import Call, MockWebApi, signed_headers
from mock_slack.signing import event_body
from slack_harness import (
    APP_TOKEN,
    BOT_TOKEN,
    SIGNING_SECRET,
    USER,
    SlackHarness,
    UvicornThread,
    eventually,
    harness_settings,
    http,
)

from bot.config import Settings
from bot.ratelimit import UserRateLimit, Verdict
from bot.slack.serve import HttpSurface
from bot.slack.workers import WorkerPool
from bot.store import DB_FILE

pytest_plugins = ["slack_fixtures"]

UPDATES = "when do kaspersky updates stop?"
SECRETS = (BOT_TOKEN, SIGNING_SECRET, APP_TOKEN)


@pytest.fixture
def make_slack(make_slack: Callable[..., SlackHarness]) -> Callable[..., SlackHarness]:
    """Over real HTTP: these tests are about serving when things go wrong."""
    return functools.partial(make_slack, http=True)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every log record at DEBUG; afterwards, no secret may appear in any of them."""
    caplog.set_level(logging.DEBUG)
    yield caplog
    for secret in SECRETS:
        assert secret not in caplog.text


def _posts(slack: SlackHarness) -> list[Call]:
    """The messages posted once every admitted answer and notice has finished."""
    return [c for c in slack.idle() if c.api == "chat.postMessage"]


# -- a full queue ----------------------------------------------------------------------------


def test_a_full_queue_tells_the_user_to_try_again_in_the_thread_and_acks_at_once(
    make_slack: Callable[..., SlackHarness], logs: pytest.LogCaptureFixture
) -> None:
    slack = make_slack(workers=1, queue_size=0)
    mention = slack.mention(UPDATES, user="U0BOB")
    with slack.answers_held():  # the one answering thread is busy, and there is no queue
        assert slack.event(mention).status == 200  # acknowledged without waiting for it
        [notice] = slack.api.wait_for("chat.postEphemeral")
    assert notice.body["user"] == "U0BOB" and notice.body["thread_ts"] == mention["ts"]
    assert "try again" in notice.text
    assert _posts(slack) == []  # not answered
    assert any("told to try again" in r.getMessage() for r in logs.records)

    slack.event(slack.mention(UPDATES))  # the thread is free again
    [post] = slack.api.wait_for("chat.postMessage")
    assert "September 29, 2024" in post.text


def test_a_full_queue_answers_a_dm_with_the_notice_and_ban_ask_privately(
    make_slack: Callable[..., SlackHarness],
) -> None:
    slack = make_slack(workers=1, queue_size=0)
    with slack.answers_held():
        slack.event(slack.message(UPDATES, channel="D0BOB", channel_type="im", user="U0BOB"))
        assert slack.command("/ban-ask", UPDATES, user="U0CAROL").status == 200
        [private] = slack.api.wait_for("response/command")
        [dm] = slack.api.wait_for("chat.postMessage")
    assert "try again" in private.text and private.body["response_type"] == "ephemeral"
    assert dm.body["channel"] == "D0BOB" and "try again" in dm.text


# -- the per-user rate limit -----------------------------------------------------------------


def test_one_user_over_the_rate_limit_is_told_once_and_others_are_still_answered(
    make_slack: Callable[..., SlackHarness], logs: pytest.LogCaptureFixture
) -> None:
    slack = make_slack(rate_limit_per_minute=3)
    for _ in range(6):  # a loop posting as one person
        slack.event(slack.message(UPDATES, channel="D0ALICE", channel_type="im"))
    slack.event(slack.mention(UPDATES))  # the same person, in a channel, already told
    slack.event(slack.mention(UPDATES, user="U0BOB"))

    posts = slack.api.wait_for("chat.postMessage", 5)
    to_alice = [p for p in _posts(slack) if p.body["channel"] == "D0ALICE"]
    assert len(to_alice) == 4  # three answers and one notice
    notices = [p for p in to_alice if "more than 3 questions" in p.text]
    assert len(notices) == 1 and "wait a minute" in notices[0].text
    assert sum("September 29, 2024" in p.text for p in to_alice) == 3
    assert [p.body["channel"] for p in posts if p.body["channel"] != "D0ALICE"] == ["C0GENERAL"]
    assert slack.api.calls_to("chat.postEphemeral") == []  # told once, not again in #general
    limited = [r.getMessage() for r in logs.records if "Rate limit" in r.getMessage()]
    assert len(limited) == 4 and all(USER not in line for line in limited)  # hashed user only


def test_the_rate_limit_counts_ban_ask_and_follow_up_buttons_too(
    make_slack: Callable[..., SlackHarness],
) -> None:
    slack = make_slack(rate_limit_per_minute=1)
    slack.command("/ban-ask", UPDATES)
    slack.command("/ban-ask", UPDATES)
    # The answer and the notice go out on different threads: either may arrive first.
    replies = [c.text for c in slack.api.wait_for("response/command", 2)]
    assert sum("September 29, 2024" in r for r in replies) == 1
    assert sum("more than 1 questions" in r for r in replies) == 1
    slack.click("follow_up_0", "When did new sales stop?", ephemeral=True)
    assert [c.api for c in slack.idle()].count("response/action") == 0  # already told


def test_user_rate_limit_allows_again_after_the_window() -> None:
    limiter = UserRateLimit(per_minute=2, window=1)
    assert [limiter.check("U1") for _ in range(4)] == [
        Verdict.ALLOW,
        Verdict.ALLOW,
        Verdict.NOTIFY,
        Verdict.SILENT,
    ]
    assert limiter.check("U2") is Verdict.ALLOW  # per user
    # Once the one-second window has moved on (a question refused is not counted).
    assert eventually(lambda: limiter.check("U1") is Verdict.ALLOW, timeout=5)
    assert UserRateLimit(per_minute=0).check("U1") is Verdict.ALLOW  # 0 turns it off


# -- the worker pool -------------------------------------------------------------------------


def test_worker_pool_is_bounded_never_blocks_and_drains() -> None:
    pool = WorkerPool(workers=2, queue_size=3, name="test")
    release = threading.Event()
    done: list[int] = []

    def job(i: int) -> Callable[[], None]:
        def run() -> None:
            release.wait(5)
            done.append(i)

        return run

    # Every job blocks until release: a submit that waited for room would never return.
    accepted = [pool.submit(job(i)) for i in range(8)]
    assert accepted == [True] * 5 + [False] * 3 and pool.pending == 5
    release.set()
    assert pool.drain(5) and sorted(done) == [0, 1, 2, 3, 4]
    assert not pool.submit(job(9))  # closed after draining


def test_worker_pool_survives_a_failing_job_and_bounds_its_drain(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool = WorkerPool(workers=1, queue_size=1, name="test")

    def fail() -> None:
        raise ZeroDivisionError

    pool.submit(fail)
    assert eventually(lambda: pool.pending == 0)
    assert "A test job failed" in caplog.text
    stuck = threading.Event()

    def wait_until_set() -> None:
        stuck.wait(30)

    assert pool.submit(wait_until_set)
    # Gives up after its timeout (False, the job still running): the thread is a daemon.
    assert not pool.drain(0.3) and pool.pending == 1
    stuck.set()


# -- Slack's retries -------------------------------------------------------------------------


def test_a_retry_of_an_event_whose_first_delivery_got_a_503_is_answered(
    real_settings: Settings, real_engine: Any, slack_api: MockWebApi, tmp_path: Path
) -> None:
    release = threading.Event()

    def load_engine(_: Settings) -> Any:
        release.wait(10)
        return real_engine

    surface = HttpSurface(
        harness_settings(real_settings, slack_api, tmp_path / "data"), load_engine=load_engine
    )
    mention = {
        "type": "app_mention",
        "user": USER,
        "text": f"<@UBANBOT01> {UPDATES}",
        "ts": "1710000500.000001",
        "channel": "C0GENERAL",
    }
    body = event_body(mention, event_id="Ev0STARTUP")
    with UvicornThread(surface.asgi) as server:
        url = f"{server.url}/slack/events"
        assert http(url, data=body, headers=signed_headers(SIGNING_SECRET, body)).status == 503
        release.set()
        assert surface.ready.wait(10)
        retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_error"}
        headers = {**signed_headers(SIGNING_SECRET, body), **retry}
        assert http(url, data=body, headers=headers).status == 200
        [post] = slack_api.wait_for("chat.postMessage")
        assert post.body["thread_ts"] == mention["ts"]
        # Slack's next retry of the same event is now a repeat: dropped.
        retry2 = {**signed_headers(SIGNING_SECRET, body), "X-Slack-Retry-Num": "2"}
        assert http(url, data=body, headers=retry2).status == 200
        bot = surface.bot
        assert bot is not None
        assert eventually(lambda: bot.services.answers.pending == 0)
        assert len(slack_api.calls_to("chat.postMessage")) == 1


def test_a_retry_of_a_seen_event_is_dropped_even_while_it_is_being_answered(
    slack: SlackHarness, logs: pytest.LogCaptureFixture
) -> None:
    event = slack.mention(UPDATES)
    with slack.answers_held():  # the first delivery is still waiting to be answered
        assert slack.event(event, event_id="Ev0SLOW").status == 200
        assert slack.event(event, event_id="Ev0SLOW", retry_num=1).status == 200
        assert slack.event(event, event_id="Ev0SLOW", retry_num=2).status == 200
    assert len(_posts(slack)) == 1
    dropped = [r for r in logs.records if "Dropped Slack retry" in r.getMessage()]
    assert len(dropped) == 2 and all(getattr(r, "event_id", None) == "Ev0SLOW" for r in dropped)


# -- Slack API faults ------------------------------------------------------------------------


def test_429_and_5xx_are_retried_by_the_client(slack: SlackHarness) -> None:
    # 429 with Retry-After is in test_slack_events.py; here 503 and a gateway's 502.
    slack.api.fail_next("chat.postMessage", status=503)
    slack.event(slack.mention(UPDATES))
    posts = slack.api.wait_for("chat.postMessage", 2)
    assert "September 29, 2024" in posts[1].text
    slack.api.fail_next("chat.postMessage", status=502, times=2)
    slack.event(slack.mention(UPDATES))
    posts = slack.api.wait_for("chat.postMessage", 5)
    assert "September 29, 2024" in posts[4].text


@pytest.mark.usefixtures("quick_backoff")
def test_when_rate_limit_retries_run_out_the_event_id_is_logged_and_the_bot_keeps_serving(
    slack: SlackHarness, logs: pytest.LogCaptureFixture
) -> None:
    # Slack answers 429 to the post and its two retries, and to the apology after them.
    slack.api.fail_next("chat.postMessage", status=429, retry_after=0, times=6)
    slack.event(slack.mention(UPDATES), event_id="Ev0LIMITED")
    slack.api.wait_for("chat.postMessage", 6, timeout=20)
    failed = eventually(
        lambda: [r for r in logs.records if getattr(r, "event_id", None) == "Ev0LIMITED"]
    )
    assert failed and failed[0].levelno == logging.ERROR and failed[0].exc_info is not None
    assert "ratelimited" in logs.text

    # Still serving: the next question is answered.
    slack.event(slack.mention(UPDATES), event_id="Ev0AFTER")
    posts = slack.api.wait_for("chat.postMessage", 7)
    assert "September 29, 2024" in posts[6].text


@pytest.mark.usefixtures("quick_backoff")
def test_when_5xx_retries_run_out_every_surface_apologises_and_the_bot_keeps_serving(
    slack: SlackHarness, logs: pytest.LogCaptureFixture
) -> None:
    slack.api.fail_next("response/command", status=500, times=8)
    slack.command("/ban-ask", UPDATES)
    slack.api.wait_for("response/command", 6, timeout=20)
    assert any("Could not" in r.getMessage() and r.exc_info for r in logs.records)
    slack.api.reset()
    slack.command("/ban-ask", UPDATES)
    [reply] = slack.api.wait_for("response/command")
    assert "September 29, 2024" in reply.text


# -- nothing raw in the store ----------------------------------------------------------------


def test_the_store_holds_no_raw_user_id_after_questions_feedback_and_limits(
    make_slack: Callable[..., SlackHarness],
) -> None:
    slack = make_slack(rate_limit_per_minute=2)
    for _ in range(3):
        slack.event(slack.mention(UPDATES))
    slack.command("/ban-ask", UPDATES, user="U0CAROL")
    slack.click("feedback_down", '{"q": "when?", "e": ["updates-cutoff"]}', user_id="U0DAVE")
    slack.api.wait_for("chat.postMessage", 2)
    slack.api.wait_for("chat.postEphemeral")  # the third mention: over the limit
    assert eventually(lambda: len(slack.store.questions()) == 3)  # two mentions and /ban-ask
    assert eventually(lambda: len(slack.store.feedback()) == 1)
    slack.surface.shutdown()
    raw = b"".join(p.read_bytes() for p in (slack.settings.data_dir).glob(f"{DB_FILE}*"))
    for user in (USER, "U0CAROL", "U0DAVE"):
        assert user.encode() not in raw
