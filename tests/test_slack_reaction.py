"""The 👀 working reaction is cosmetic: Slack being unreachable never kills a thread or an answer."""

from __future__ import annotations

import logging
import socket
import threading

import pytest
from slack_harness import eventually
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

    def refused() -> bool:
        return any("URLError" in r.getMessage() for r in caplog.records)

    with (
        caplog.at_level(logging.WARNING, logger="test.reaction"),
        working_indicator(client, "C1", "1.0", after=0.0, logger=logger),
    ):
        # The "answer" is worked on until the reaction has been tried and failed.
        assert eventually(refused, timeout=10), caplog.text
    assert not crashed
