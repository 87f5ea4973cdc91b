"""The Slack test harness: requests signed exactly as Slack signs them, handled by the real
bolt app behind the real signature check (``HttpSurface.handle``), as bolt-python's scenario
tests dispatch them; Slack's Web API is the local stand-in (``mock_slack``). With a ``url``
the same requests go over real HTTP to uvicorn instead, for the tests about serving, signing
and timing. The pytest fixtures that start it live in ``slack_fixtures.py``.

Usage::

    def test_x(slack: SlackHarness) -> None:
        slack.event(slack.mention("when do updates stop?"))
        [post] = slack.api.wait_for("chat.postMessage")
        calls = slack.idle()       # every admitted answer finished: nothing more is coming
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from mock_slack import BOT_USER_ID, Call, MockWebApi, signed_headers
from mock_slack.signing import action_body, command_body, event_body

from bot.config import Settings
from bot.slack.serve import HttpSurface
from bot.store import Store

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-1234567890-0987654321-testtokenvalue"
APP_TOKEN = "xapp-1-A0BANBOT-123-testapptokenvalue"
USER = "U0ALICE"

_ts = itertools.count(1)
T = TypeVar("T")


def next_ts() -> str:
    """A fresh message timestamp, as Slack gives each message."""
    return f"1710000000.{next(_ts):06d}"


@dataclass
class Reply:
    status: int
    body: bytes

    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


def http(url: str, *, data: str | None = None, headers: dict[str, str] | None = None) -> Reply:
    """A plain HTTP request; non-2xx statuses are returned, not raised."""
    request = urllib.request.Request(
        url, data=None if data is None else data.encode(), headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Reply(response.status, response.read())
    except urllib.error.HTTPError as e:
        return Reply(e.code, e.read())


def eventually(check: Callable[[], T], timeout: float = 5.0) -> T:
    """Poll ``check`` until it returns something truthy (work after the ack is asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.02)


class UvicornThread:
    """uvicorn serving an ASGI app on a free port of 127.0.0.1, in a thread."""

    def __init__(self, asgi: Any) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(asgi, log_config=None, lifespan="on"))
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> UvicornThread:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise AssertionError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self._thread.join(10)
        self._sock.close()


@dataclass
class SlackHarness:
    """The bot as Slack sees it: signed requests in, the Web API stand-in's recorded calls out.
    Requests are dispatched in process unless ``url`` is set (then over real HTTP)."""

    api: MockWebApi
    surface: HttpSurface
    settings: Settings
    url: str | None = None

    @property
    def store(self) -> Store:
        assert self.surface.store is not None
        return self.surface.store

    def post(self, body: str, headers: dict[str, str] | None = None) -> Reply:
        if self.url is not None:
            return http(f"{self.url}/slack/events", data=body, headers=headers)
        response = self.surface.handle(body.encode(), headers or {})
        return Reply(response.status, response.body.encode())

    def idle(self, timeout: float = 10.0) -> list[Call]:
        """Wait until every answer and notice admitted so far has finished (so every call it
        makes has arrived); return the calls the stand-in got."""
        bot = self.surface.bot
        assert bot is not None
        pools = (bot.services.answers, bot.services.notices)
        if not eventually(lambda: all(pool.pending == 0 for pool in pools), timeout):
            raise AssertionError(f"still answering after {timeout} s")
        return list(self.api.calls)

    @contextmanager
    def answers_held(self) -> Iterator[None]:
        """Every answering thread kept busy until the block ends, so whatever is acknowledged
        inside was acknowledged without waiting for its answer (which follows the block)."""
        bot = self.surface.bot
        assert bot is not None
        release, busy = threading.Event(), threading.Semaphore(0)

        def hold() -> None:
            busy.release()
            release.wait(30)

        for _ in range(self.settings.workers):
            assert bot.services.answers.submit(hold)
        for _ in range(self.settings.workers):
            assert busy.acquire(timeout=10), "the answering threads never started"
        try:
            yield
        finally:
            release.set()

    def signed(self, body: str, **extra: str) -> Reply:
        return self.post(body, {**signed_headers(SIGNING_SECRET, body), **extra})

    def event(
        self, event: dict[str, Any], *, event_id: str | None = None, retry_num: int | None = None
    ) -> Reply:
        extra = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        body = event_body(event, event_id=event_id)
        return self.signed(body, **(extra if retry_num is not None else {}))

    def command(self, command: str, text: str = "", *, user: str = USER) -> Reply:
        body = command_body(
            command, text, response_url=self.api.response_url("command"), user_id=user
        )
        return self.signed(body)

    def click(self, action_id: str, value: str, **kwargs: Any) -> Reply:
        kwargs.setdefault("response_url", self.api.response_url("action"))
        return self.signed(action_body(action_id, value, **kwargs))

    def vote(self, blocks: list[dict[str, Any]], vote: str, **kwargs: Any) -> Reply:
        """Click 👍 (``"up"``) or 👎 (``"down"``) on a message, as Slack sends it: its feedback
        element, or the classic button where the message has those."""
        action_id, value, action_type = vote_button(blocks, vote)
        return self.click(action_id, value, action_type=action_type, **kwargs)

    def reaction(self, reaction: str, channel: str, ts: str, *, user: str = USER) -> Reply:
        """Someone adds an emoji reaction to a message (``reaction_added``)."""
        item = {"type": "message", "channel": channel, "ts": ts}
        return self.event(
            {
                "type": "reaction_added",
                "user": user,
                "reaction": reaction,
                "item": item,
                "event_ts": next_ts(),
            }
        )

    def mention(self, text: str, **fields: Any) -> dict[str, Any]:
        """An ``app_mention`` event in #general, as Slack sends it."""
        return {
            "type": "app_mention",
            "user": USER,
            "text": f"<@{BOT_USER_ID}> {text}",
            "ts": next_ts(),
            "channel": "C0GENERAL",
            "event_ts": "1710000000.000001",
            **fields,
        }

    def message(self, text: str, **fields: Any) -> dict[str, Any]:
        """A ``message`` event in #general (``channel_type`` "channel") unless overridden."""
        return {
            "type": "message",
            "user": USER,
            "text": text,
            "ts": next_ts(),
            "channel": "C0GENERAL",
            "channel_type": "channel",
            "event_ts": "1710000000.000001",
            **fields,
        }


def vote_button(blocks: list[dict[str, Any]], vote: str) -> tuple[str, str, str]:
    """(action id, value, action type) of a message's 👍 or 👎."""
    for block in blocks:
        for element in block.get("elements") or []:
            if element.get("type") == "feedback_buttons":
                button = element["positive_button" if vote == "up" else "negative_button"]
                return element["action_id"], button["value"], "feedback_buttons"
            if element.get("action_id") == f"feedback_{vote}":
                return element["action_id"], element["value"], "button"
    raise AssertionError(f"no {vote} vote on this message: {blocks}")


def buttons(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A message's buttons by action id."""
    return {e["action_id"]: e for b in blocks if b["type"] == "actions" for e in b["elements"]}


def harness_settings(real_settings: Settings, api: MockWebApi, data_dir: Path) -> Settings:
    return real_settings.model_copy(
        update=dict(
            data_dir=data_dir,
            slack_bot_token=BOT_TOKEN,
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=api.url,
        )
    )
