"""Socket Mode end to end: the real app on bolt's built-in Socket Mode client, connected to a
local stand-in for Slack's Socket Mode WebSocket (handed out by the Web API stand-in's
apps.connections.open), exactly as ``ban-bot serve`` connects it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mock_slack import BOT_USER_ID, MockSocketMode, MockWebApi
from mock_slack.signing import event_body
from slack_harness import APP_TOKEN, USER, harness_settings, next_ts

from bot.config import Settings
from bot.slack.app import build_bot
from bot.slack.serve import socket_mode_handler
from bot.store import Store


class SocketModeRig:
    def __init__(self, api: MockWebApi, sm: MockSocketMode) -> None:
        self.api, self.sm = api, sm
        self._envelopes = 0

    def envelope(self, kind: str, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
        self._envelopes += 1
        envelope = {
            "envelope_id": f"env-{self._envelopes}",
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
            **extra,
        }
        self.sm.send(envelope)
        return self.sm.wait_for_ack(envelope["envelope_id"])

    def command(self, command: str, text: str) -> dict[str, Any]:
        return self.envelope(
            "slash_commands",
            {
                "team_id": "T0001",
                "channel_id": "C0GENERAL",
                "user_id": USER,
                "command": command,
                "text": text,
                "api_app_id": "A0BANBOT",
                "response_url": self.api.response_url("command"),
                "trigger_id": "1.2.3",
            },
        )


@pytest.fixture
def rig(real_settings: Settings, real_engine: Any, tmp_path: Path) -> Iterator[SocketModeRig]:
    with MockWebApi() as api, MockSocketMode() as sm:
        api.socket_mode_url = sm.url
        settings = harness_settings(real_settings, api, tmp_path / "data").model_copy(
            # Socket Mode needs no signing secret.
            update=dict(slack_app_token=APP_TOKEN, slack_signing_secret=None)
        )
        store = Store.open(settings)
        handler = socket_mode_handler(build_bot(settings, real_engine, store=store).app, settings)
        handler.connect()
        try:
            sm.wait_connected()
            yield SocketModeRig(api, sm)
        finally:
            # Slack's side hangs up first: the client's read then returns at once, instead of
            # after slack_sdk's 3 s receive timeout, and nothing reconnects.
            handler.client.auto_reconnect_enabled = False
            sm.hang_up()
            handler.close()
            store.close()


def test_socket_mode_end_to_end(rig: SocketModeRig) -> None:
    [opened] = rig.api.calls_to("apps.connections.open")
    assert opened.headers["authorization"] == f"Bearer {APP_TOKEN}"

    # A mention: acknowledged on the socket, answered in its thread through the Web API.
    ts = next_ts()
    event = {
        "type": "app_mention",
        "user": USER,
        "text": f"<@{BOT_USER_ID}> when do kaspersky updates stop?",
        "ts": ts,
        "channel": "C0GENERAL",
    }
    body = json.loads(event_body(event, event_id="Ev0SOCKET"))
    ack = rig.envelope("events_api", body, retry_attempt=0, retry_reason="")
    assert "payload" not in ack or not ack["payload"]
    [post] = rig.api.wait_for("chat.postMessage")
    assert post.body["thread_ts"] == ts
    assert "September 29, 2024" in post.text

    # Slack's retry of the same event over the socket: acknowledged, not answered again.
    rig.envelope("events_api", body, retry_attempt=1, retry_reason="timeout")

    # /ban-deadlines answers in the ack itself; /ban-ask after it, through response_url.
    deadlines = rig.command("/ban-deadlines", "updates")
    assert deadlines["payload"]["response_type"] == "ephemeral"
    assert "September 29, 2024" in json.dumps(deadlines["payload"]["blocks"])
    ask = rig.command("/ban-ask", "why was kaspersky banned?")
    assert not ask.get("payload")
    [private] = rig.api.wait_for("response/command")
    assert private.body["response_type"] == "ephemeral" and private.text

    assert len([c for c in rig.api.settle() if c.api == "chat.postMessage"]) == 1


def test_socket_mode_app_home(rig: SocketModeRig) -> None:
    body = json.loads(event_body({"type": "app_home_opened", "user": USER, "tab": "home"}))
    rig.envelope("events_api", body, retry_attempt=0, retry_reason="")
    [publish] = rig.api.wait_for("views.publish")
    assert publish.body["user_id"] == USER
