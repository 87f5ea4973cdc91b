"""The 👀 working reaction is cosmetic: Slack being unreachable never kills a thread or an answer."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest
from slack_sdk import WebClient

from bot.slack.listeners.common import working_indicator


def _dead_url() -> str:
    """A loopback port with nothing listening (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/"


def test_unreachable_slack_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    crashed: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: crashed.append(args.exc_value))
    client = WebClient(token="xoxb-test", base_url=_dead_url(), timeout=2)
    logger = logging.getLogger("test.reaction")
    with (
        caplog.at_level(logging.WARNING, logger="test.reaction"),
        working_indicator(client, "C1", "1.0", after=0.0, logger=logger),
    ):
        time.sleep(0.3)  # the reaction is attempted while the "answer" is being worked on
    assert not crashed
    assert any("URLError" in r.getMessage() for r in caplog.records), caplog.text
