"""Two replicas, one PostgreSQL store: two real ``ban-bot serve --http`` processes on one
database, the same signed event delivered to both at the same moment, exactly one answer posted
to the Slack Web API stand-in; a follow-up in that thread is answered by the other replica,
because the threads the bot answered in are shared too. The same for asking the experts: one
click delivered to both replicas posts the question once; the expert's reply and the mark reach
different replicas; the report and its draft come from the one database."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mock_slack import BOT_USER_ID, MockWebApi, signed_headers
from mock_slack.signing import action_body, event_body
from mock_slack.web_api import Call
from pg import PostgresServer, free_port
from slack_harness import BOT_TOKEN, SIGNING_SECRET, USER, Reply, buttons, eventually, http

from bot.config import Settings
from bot.store import Store

BAN_BOT = str(Path(sys.executable).with_name("ban-bot"))
UPDATES = "when do kaspersky updates stop?"
DECLINED = "who approved the exception for our lab machines?"
EXPERTS, EXPERT = "C0EXPERTS", "U0EXPERT"
MENTIONS = re.compile(r'^ban_bot_questions_total\{surface="slack:mention"\} (\S+)$', re.M)


@dataclass
class Replica:
    """One ``ban-bot serve --http`` process."""

    name: str
    url: str
    process: subprocess.Popen[str]
    stderr: str = ""

    def post(self, body: str, **headers: str) -> Reply:
        return http(
            f"{self.url}/slack/events",
            data=body,
            headers={**signed_headers(SIGNING_SECRET, body), **headers},
        )

    def stop(self) -> str:
        """Stop it as Ctrl-C would (once); everything it logged."""
        if self.process.returncode is None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)
            try:
                self.stderr = self.process.communicate(timeout=30)[1]
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.stderr = self.process.communicate()[1]
        return self.stderr

    def mentions_answered(self) -> float:
        found = MENTIONS.search(http(f"{self.url}/metrics").body.decode())
        return float(found.group(1)) if found else 0.0


def _start(name: str, env: dict[str, str], cwd: Path) -> Replica:
    port = free_port()
    process = subprocess.Popen(
        [BAN_BOT, "serve", "--http", "--port", str(port)],
        env={**env, "BAN_BOT_DATA_DIR": str(cwd / "data")},  # each replica its own data folder
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    return Replica(name, f"http://127.0.0.1:{port}", process)


def _wait_healthy(replica: Replica, deadline: float) -> None:
    while time.monotonic() < deadline:
        if replica.process.poll() is not None:
            raise AssertionError(f"{replica.name} exited: {replica.process.communicate()[1]}")
        try:
            if http(f"{replica.url}/healthz").status == 200:
                return
        except OSError:
            pass  # not listening yet
        time.sleep(0.05)
    raise AssertionError(f"{replica.name} was not healthy in time")


@pytest.fixture
def replicas(
    real_settings: Settings, database_url: str, tmp_path: Path
) -> Iterator[tuple[MockWebApi, list[Replica]]]:
    """Two replicas on one fresh PostgreSQL database, talking to one Web API stand-in."""
    with MockWebApi() as api:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SLACK_")},
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": api.url,
            "DATABASE_URL": database_url,
            "BAN_BOT_INDEX_DIR": str(real_settings.index_dir),
            "BAN_BOT_KNOWLEDGE_DIR": str(real_settings.knowledge_dir),
            "HOST": "127.0.0.1",
            "LOG_LEVEL": "DEBUG",  # so the test sees every log line for secrets
            "BAN_BOT_EXPERTS_CHANNEL": EXPERTS,
            "BAN_BOT_EXPERTS_GROUP": "S0EXPERTS",
        }
        started: list[Replica] = []
        try:
            for name in ("replica-a", "replica-b"):
                (tmp_path / name).mkdir()
                started.append(_start(name, env, tmp_path / name))
            deadline = time.monotonic() + 90
            for replica in started:
                _wait_healthy(replica, deadline)
            yield api, started
        finally:
            for replica in started:
                if replica.process.poll() is None:
                    replica.process.send_signal(signal.SIGINT)  # both at once, then wait
            for replica in started:
                replica.stop()


def test_one_event_delivered_to_two_replicas_is_answered_once(
    replicas: tuple[MockWebApi, list[Replica]],
    database_url: str,
    postgres: PostgresServer,
) -> None:
    api, (a, b) = replicas
    ts = "1710000123.000001"
    # The same delivery (one event id) reaching both replicas at the same moment, as when
    # Slack re-sends an event the load balancer then routes to the other replica.
    body = event_body(_mention(UPDATES, ts), event_id="Ev0BOTHREPLICAS")
    assert _at_once([a, b], body) == [200, 200]  # both acknowledge

    [post] = api.wait_for("chat.postMessage")
    assert post.body["thread_ts"] == ts and "September 29, 2024" in post.text
    assert [c.api for c in api.settle(quiet=1.0)].count("chat.postMessage") == 1
    answered = {r.name: r.mentions_answered() for r in (a, b)}
    assert sorted(answered.values()) == [0.0, 1.0], answered  # one replica did the work
    answerer, other = (a, b) if answered["replica-a"] else (b, a)

    # The same delivery again, later, at the replica that did not answer: dropped.
    assert other.post(body).status == 200
    # A follow-up in the thread without a mention, at the other replica: it knows the bot
    # answered there from the shared store, and answers.
    follow_up = event_body(
        {
            "type": "message",
            "user": USER,
            "text": "and when did new sales stop?",
            "ts": "1710000123.000002",
            "thread_ts": ts,
            "channel": "C0GENERAL",
            "channel_type": "channel",
            "event_ts": "1710000123.000002",
        }
    )
    assert other.post(follow_up).status == 200
    posts = api.wait_for("chat.postMessage", 2)
    assert posts[1].body["thread_ts"] == ts and "July 20, 2024" in posts[1].text
    assert [c.api for c in api.settle(quiet=0.5)].count("chat.postMessage") == 2
    assert other.mentions_answered() == 0.0 and answerer.mentions_answered() == 1.0

    # A bare "why?" back at the first replica: alone it would be declined (and so, in a thread,
    # left unanswered); it is answered because the thread's turns, the last one recorded by the
    # other replica, are in the shared store.
    why = event_body(
        {
            "type": "message",
            "user": USER,
            "text": "why?",
            "ts": "1710000123.000003",
            "thread_ts": ts,
            "channel": "C0GENERAL",
            "channel_type": "channel",
            "event_ts": "1710000123.000003",
        }
    )
    assert answerer.post(why).status == 200
    posts = api.wait_for("chat.postMessage", 3)
    assert posts[2].body["thread_ts"] == ts and "I don't know" not in posts[2].text

    # One question log for both replicas, with one salt: the same user hashes the same.
    store = Store.open(Settings(database_url=database_url), prune_every=None)
    try:
        # Each question is logged after its answer is posted: wait for the third.
        assert eventually(lambda: len(store.questions()) == 3, timeout=10)
        logged = store.questions()
        # Logged after posting: under load, one answer's log may overtake the one before it.
        surfaces = ["slack:follow-up", "slack:follow-up", "slack:mention"]
        assert sorted(q.surface for q in logged) == surfaces
        assert len({q.user_hash for q in logged}) == 1 and logged[0].user_hash != USER
    finally:
        store.close()

    # Neither replica logged the database password (or a Slack secret), even at DEBUG.
    for replica in (a, b):
        stderr = replica.stop()
        assert replica.process.returncode in (0, 130), stderr
        assert "Store: PostgreSQL database" in stderr  # it does say where the store is
        for secret in (postgres.password, BOT_TOKEN, SIGNING_SECRET):
            assert secret not in stderr


def _at_once(replicas: list[Replica], body: str) -> list[int]:
    """Deliver ``body`` to every replica at the same moment; their statuses."""
    barrier = threading.Barrier(len(replicas))
    statuses: list[int] = []

    def deliver(replica: Replica) -> None:
        barrier.wait()
        statuses.append(replica.post(body).status)

    threads = [threading.Thread(target=deliver, args=(r,)) for r in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return statuses


def _mention(text: str, ts: str) -> dict[str, str]:
    """An ``app_mention`` in #general, as Slack sends it."""
    return {
        "type": "app_mention",
        "user": USER,
        "text": f"<@{BOT_USER_ID}> {text}",
        "ts": ts,
        "channel": "C0GENERAL",
        "event_ts": ts,
    }


def _one(api: MockWebApi, method: str, where: Callable[[Call], bool]) -> Call:
    return api.wait_for(method, where=where)[0]


def test_asking_the_experts_across_two_replicas(
    replicas: tuple[MockWebApi, list[Replica]],
    database_url: str,
    real_settings: Settings,
    tmp_path: Path,
) -> None:
    api, (a, b) = replicas
    ts = "1710000200.000001"
    assert a.post(event_body(_mention(DECLINED, ts))).status == 200
    decline = _one(api, "chat.postMessage", lambda c: c.body["channel"] == "C0GENERAL")
    key = buttons(decline.blocks)["ask_experts"]["value"]
    under = {"type": "message", "ts": api.answered(decline)["ts"], "thread_ts": ts}

    # The click reaches both replicas at once (a double click, a redelivery): asked once.
    click = action_body("ask_experts", key, response_url=api.response_url("a"), message=under)
    assert _at_once([a, b], click) == [200, 200]
    experts = _one(api, "chat.postMessage", lambda c: c.body["channel"] == EXPERTS)
    assert experts.text.startswith(f"<!subteam^S0EXPERTS> <@{USER}> asked")
    told = api.wait_for("chat.postEphemeral", 2, where=lambda c: c.body["user"] == USER)
    assert sorted("already sent" in c.text for c in told) == [False, True]
    posts = [c for c in api.settle() if c.api == "chat.postMessage"]
    assert [c.body["channel"] for c in posts].count(EXPERTS) == 1

    # The expert's reply reaches replica B; the mark, replica A.
    thread = api.answered(experts)["ts"]
    reply = {
        "type": "message",
        "user": EXPERT,
        "text": "Legal approved the lab exception in March.",
        "ts": "1710000200.000009",
        "thread_ts": thread,
        "channel": EXPERTS,
        "channel_type": "channel",
        "event_ts": "1710000200.000009",
    }
    assert b.post(event_body(reply)).status == 200
    ack = _one(api, "chat.postEphemeral", lambda c: c.body["user"] == EXPERT)
    mark = buttons(ack.blocks)["mark_answer"]["value"]
    marked = action_body(
        "mark_answer",
        mark,
        response_url=api.response_url("mark"),
        user_id=EXPERT,
        channel=EXPERTS,
        ephemeral=True,
    )
    assert _at_once([a, b], marked) == [200, 200]
    relayed = api.wait_for("chat.postMessage", where=lambda c: "experts answered" in c.text)
    assert relayed[0].body["thread_ts"] == ts
    assert [("experts answered" in c.text) for c in api.settle()].count(True) == 1  # once

    # The curator's report and draft, from the one database.
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [BAN_BOT, *args],
            capture_output=True,
            text=True,
            env={**os.environ, "DATABASE_URL": database_url},
            timeout=300,
        )

    drafts = tmp_path / "drafts"
    report = run("report", "--index", str(real_settings.index_dir), "--drafts", str(drafts))
    assert report.returncode == 0, report.stderr
    assert f"“{DECLINED}”" in report.stdout and "Legal approved the lab exception" in report.stdout
    [draft] = drafts.glob("draft-*.yaml")
    knowledge = tmp_path / "knowledge"
    shutil.copytree(real_settings.knowledge_dir, knowledge)
    shutil.copy(draft, knowledge)
    built = run("index", "build", "--knowledge", str(knowledge), "--index", str(tmp_path / "i"))
    assert built.returncode == 1
    [line] = built.stderr.strip().splitlines()
    assert line.startswith(f"Error: {knowledge / draft.name}") and "'sources'" in line
