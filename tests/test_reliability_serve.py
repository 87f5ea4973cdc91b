"""``ban-bot serve --http`` as a real process: hot reload after ``ban-bot index build`` while
questions keep coming, a corrupt or mismatched build at reload kept out with the reason logged,
SIGHUP, a corrupt index at start-up stopping with one clear line, and SIGTERM finishing the
answers in flight before exiting 0 (in Socket Mode too)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from mock_slack import BOT_USER_ID, Call, MockSocketMode, MockWebApi, signed_headers
from mock_slack.signing import event_body
from slack_harness import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, USER, Reply, http

from bot.config import Settings
from bot.index import CURRENT, current_build
from bot.store import Store

BAN_BOT = str(Path(sys.executable).with_name("ban-bot"))
UPDATES = "when do kaspersky updates stop?"
OLD_TITLE = "First ban on company sales over technology risks"
NEW_TITLE = "First ban on company sales, as reloaded"
BUILD_ID = re.compile(r'^ban_bot_index_info\{build_id="([^"]+)"\} 1\.0$', re.M)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """One ``ban-bot serve --http`` process, its environment and its log file."""

    url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path
    _ts: Iterator[int] = field(default_factory=lambda: iter(range(1, 1_000_000)))

    def logged(self) -> str:
        return self.log.read_text(errors="replace")

    def mention(self, text: str = UPDATES, *, user: str = USER) -> tuple[str, Reply]:
        ts = f"1710009000.{next(self._ts):06d}"
        event = {
            "type": "app_mention",
            "user": user,
            "text": f"<@{BOT_USER_ID}> {text}",
            "ts": ts,
            "channel": "C0GENERAL",
        }
        body = event_body(event)
        reply = http(
            f"{self.url}/slack/events", data=body, headers=signed_headers(SIGNING_SECRET, body)
        )
        return ts, reply

    def build_id(self) -> str:
        found = BUILD_ID.search(http(f"{self.url}/metrics").body.decode())
        assert found, "no ban_bot_index_info in /metrics"
        return found.group(1)

    def ban_bot(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [BAN_BOT, *args], env=self.env, capture_output=True, text=True, timeout=120
        )


def _wait(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def folders(real_settings: Settings, tmp_path: Path) -> tuple[Path, Path]:
    """Writable copies of the real knowledge and its built index."""
    knowledge, index = tmp_path / "knowledge", tmp_path / "index"
    shutil.copytree(real_settings.knowledge_dir, knowledge)
    shutil.copytree(real_settings.index_dir, index)
    return knowledge, index


@pytest.fixture
def start(
    folders: tuple[Path, Path], tmp_path: Path
) -> Iterator[Callable[..., tuple[Server, MockWebApi]]]:
    started: list[tuple[Server, MockWebApi]] = []

    def run(wait: bool = True, **variables: str) -> tuple[Server, MockWebApi]:
        api = MockWebApi().start()
        knowledge, index = folders
        port = _free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SLACK_")},
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": api.url,
            "BAN_BOT_INDEX_DIR": str(index),
            "BAN_BOT_KNOWLEDGE_DIR": str(knowledge),
            "BAN_BOT_DATA_DIR": str(tmp_path / "data"),
            "HOST": "127.0.0.1",
            "LOG_LEVEL": "DEBUG",  # every line, to look for secrets in
            **variables,
        }
        log = tmp_path / f"serve-{len(started)}.log"
        with open(log, "wb") as stderr:
            process = subprocess.Popen(
                [BAN_BOT, "serve", "--http", "--port", str(port)],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        server = Server(f"http://127.0.0.1:{port}", env, process, log)
        started.append((server, api))
        if wait:
            _wait(lambda: _healthy(server), 90, "/healthz 200")
        return server, api

    yield run
    for server, api in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(10)
        api.stop()
        text = server.logged()
        for secret in (BOT_TOKEN, SIGNING_SECRET):
            assert secret not in text


def _healthy(server: Server) -> bool:
    if server.process.poll() is not None:
        raise AssertionError(f"the server exited: {server.logged()[-3000:]}")
    try:
        return http(f"{server.url}/healthz").status == 200
    except OSError:
        return False


class Asker(threading.Thread):
    """Asks the same question again and again, each after the last one's answer arrived (as
    many people: one person would soon hit the rate limit)."""

    def __init__(self, server: Server, api: MockWebApi) -> None:
        super().__init__(daemon=True)
        self.server, self.api = server, api
        self.answers: list[str] = []
        self.problems: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            ts, reply = self.server.mention(user=f"U0ASKER{len(self.answers)}")
            if reply.status != 200:
                self.problems.append(f"ack {reply.status}")
                continue

            def in_its_thread(call: Call, ts: str = ts) -> bool:
                return bool(call.body.get("thread_ts") == ts)

            try:
                [post] = self.api.wait_for("chat.postMessage", where=in_its_thread)
            except AssertionError:
                self.problems.append(f"no answer in thread {ts}")
                continue
            if "Sorry" in post.text:
                self.problems.append(post.text)
            self.answers.append(post.rendered())


def test_a_running_bot_switches_to_a_new_build_while_answering_and_keeps_the_last_good_one(
    start: Callable[..., tuple[Server, MockWebApi]], folders: tuple[Path, Path]
) -> None:
    knowledge, index = folders
    server, api = start(BAN_BOT_RELOAD_INTERVAL="0.2")
    first_build = server.build_id()
    asker = Asker(server, api)
    asker.start()
    _wait(lambda: len(asker.answers) >= 3, 20, "answers before the rebuild")

    # A curator edits a source and rebuilds, as in production.
    for path in knowledge.glob("*.yaml"):
        path.write_text(path.read_text().replace(OLD_TITLE, NEW_TITLE))
    built = server.ban_bot("index", "build")
    assert built.returncode == 0 and "index built" in built.stdout, built.stderr
    _wait(lambda: NEW_TITLE in asker.answers[-1], 20, "an answer from the new build")
    _wait_for_more(asker, 3)
    new_build = server.build_id()
    assert new_build != first_build
    assert OLD_TITLE in asker.answers[0]

    # Broken builds made live behind the bot's back: each is refused with its reason, and the
    # bot goes on answering from the last good build.
    live = current_build(index)
    assert live is not None
    for damage, reason in (
        (_truncate_vectors, "does not match its manifest"),
        (_mismatch_dimension, "vectors and rows disagree"),
    ):
        broken = live.with_name(f"broken-{damage.__name__.strip('_')}")
        shutil.copytree(live, broken)
        damage(broken)
        (index / CURRENT).write_text(broken.name + "\n")

        def logged(reason: str = reason) -> bool:
            return reason in server.logged()

        _wait(logged, 20, f"the log to say {reason!r}")
        _wait_for_more(asker, 3)
        assert server.build_id() == new_build
        assert NEW_TITLE in asker.answers[-1]
    asker.stop.set()
    asker.join(15)
    assert asker.problems == []
    assert "still answering from build " + new_build in server.logged()


def _wait_for_more(asker: Asker, n: int) -> None:
    answered = len(asker.answers)
    _wait(lambda: len(asker.answers) >= answered + n, 20, f"{n} more answers")


def _truncate_vectors(build: Path) -> None:
    path = build / "vectors.faiss"
    path.write_bytes(path.read_bytes()[:100])


def _mismatch_dimension(build: Path) -> None:
    """A manifest that disagrees with its own files (its hashes still match)."""
    manifest = json.loads((build / "manifest.json").read_text())
    manifest["model"]["dimension"] += 1
    manifest["build_id"] = build.name
    (build / "manifest.json").write_text(json.dumps(manifest))


def test_sighup_reloads_and_sigterm_finishes_the_answers_in_flight_then_exits_0(
    start: Callable[..., tuple[Server, MockWebApi]], tmp_path: Path
) -> None:
    # No polling to speak of: only SIGHUP can make this server reload.
    server, api = start(BAN_BOT_RELOAD_INTERVAL="3600", BAN_BOT_WORKERS="1")
    before = server.build_id()
    built = server.ban_bot("index", "build", "--force")
    assert built.returncode == 0, built.stderr
    server.process.send_signal(signal.SIGHUP)
    _wait(lambda: server.build_id() != before, 20, "the new build after SIGHUP")

    # Slack is slow to take each answer; one answering thread; three questions in flight.
    api.delay("chat.postMessage", 0.4)
    threads = [server.mention(user=f"U0ASKER{i}")[0] for i in range(3)]
    api.wait_for("chat.postMessage")  # the first answer is being posted; two wait their turn
    server.process.send_signal(signal.SIGTERM)
    # uvicorn closes its sockets first, then the lifespan finishes the answers (and says so).
    _wait(lambda: "Shutting down: finishing the answers" in server.logged(), 20, "shutting down")
    with pytest.raises(OSError):  # no new events once shutting down
        server.mention()
    assert server.process.wait(20) == 0, server.logged()[-3000:]

    posts = api.calls_to("chat.postMessage")
    assert sorted(p.body["thread_ts"] for p in posts) == sorted(threads)
    assert all("September 29, 2024" in p.text for p in posts)
    logged = server.logged()
    assert "Shut down cleanly" in logged and "Traceback" not in logged
    # Each answer was logged after Slack accepted it: all three were delivered.
    store = Store.open(Settings(data_dir=tmp_path / "data"), prune_every=None)
    try:
        assert len(store.questions()) == 3
    finally:
        store.close()


def test_a_corrupt_index_at_start_up_stops_with_one_clear_line(
    start: Callable[..., tuple[Server, MockWebApi]], folders: tuple[Path, Path]
) -> None:
    _, index = folders
    live = current_build(index)
    assert live is not None
    _truncate_vectors(live)
    server, _ = start(wait=False)
    assert server.process.wait(60) == 1
    last = server.logged().strip().splitlines()[-1]
    assert last.startswith("Error: ") and "vectors.faiss does not match its manifest" in last
    assert "ban-bot index build" in last and "Traceback" not in server.logged()


def test_socket_mode_sigterm_finishes_the_answer_in_flight_then_exits_0(
    folders: tuple[Path, Path], tmp_path: Path
) -> None:
    knowledge, index = folders
    with MockWebApi() as api, MockSocketMode() as sm:
        api.socket_mode_url = sm.url
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SLACK_")},
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_APP_TOKEN": APP_TOKEN,
            "SLACK_API_URL": api.url,
            "BAN_BOT_INDEX_DIR": str(index),
            "BAN_BOT_KNOWLEDGE_DIR": str(knowledge),
            "BAN_BOT_DATA_DIR": str(tmp_path / "data"),
            "LOG_LEVEL": "DEBUG",
        }
        log = tmp_path / "socket-mode.log"
        with open(log, "wb") as stderr:
            process = subprocess.Popen(
                [BAN_BOT, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=stderr
            )
        try:
            sm.wait_connected(60)
            api.delay("chat.postMessage", 0.5)
            ts = "1710009999.000001"
            event = {
                "type": "app_mention",
                "user": USER,
                "text": f"<@{BOT_USER_ID}> {UPDATES}",
                "ts": ts,
                "channel": "C0GENERAL",
            }
            envelope = {
                "envelope_id": "env-sigterm",
                "type": "events_api",
                "payload": json.loads(event_body(event)),
                "accepts_response_payload": False,
                "retry_attempt": 0,
            }
            sm.send(envelope)
            sm.wait_for_ack("env-sigterm")
            api.wait_for("chat.postMessage")  # being posted, slowly
            process.send_signal(signal.SIGTERM)
            assert process.wait(20) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
        logged = log.read_text(errors="replace")
        assert "Shut down cleanly" in logged and "Traceback" not in logged, logged[-3000:]
        for secret in (BOT_TOKEN, APP_TOKEN):
            assert secret not in logged
    store = Store.open(Settings(data_dir=tmp_path / "data"), prune_every=None)
    try:
        [logged_question] = store.questions()  # logged once Slack had accepted the answer
        assert logged_question.question == UPDATES
    finally:
        store.close()
