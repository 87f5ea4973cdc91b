"""Requests signed exactly as Slack signs them (v0 HMAC-SHA256 over ``v0:{timestamp}:{body}``),
and the bodies Slack sends for events, slash commands and button clicks.

Usage::

    body = event_body({"type": "app_mention", ...})
    requests.post(url, data=body, headers=signed_headers(SECRET, body))
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from mock_slack.web_api import BOT_USER_ID, TEAM_ID

_event_ids = itertools.count(1)
APP_ID = "A0BANBOT"


def sign(secret: str, body: str, timestamp: int | None = None) -> tuple[str, str]:
    """(timestamp, signature) for ``body``; ``timestamp`` defaults to now."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    assert signature is not None
    return ts, signature


def signed_headers(
    secret: str, body: str, *, timestamp: int | None = None, content_type: str | None = None
) -> dict[str, str]:
    ts, signature = sign(secret, body, timestamp)
    if content_type is None:
        content_type = (
            "application/json" if body.startswith("{") else ("application/x-www-form-urlencoded")
        )
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
    }


def new_event_id() -> str:
    return f"Ev{next(_event_ids):08d}"


def event_body(event: dict[str, Any], *, event_id: str | None = None) -> str:
    """An Events API ``event_callback`` envelope as Slack POSTs it."""
    return json.dumps(
        {
            "token": "legacy-verification-token",
            "team_id": TEAM_ID,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or new_event_id(),
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
        }
    )


def command_body(command: str, text: str, *, response_url: str, user_id: str = "U0ALICE") -> str:
    """A slash command as Slack POSTs it (form-encoded)."""
    return urlencode(
        {
            "token": "legacy-verification-token",
            "team_id": TEAM_ID,
            "team_domain": "example",
            "channel_id": "C0GENERAL",
            "channel_name": "general",
            "user_id": user_id,
            "user_name": "alice",
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "response_url": response_url,
            "trigger_id": "1.2.3",
        }
    )


def action_body(
    action_id: str,
    value: str,
    *,
    response_url: str,
    user_id: str = "U0ALICE",
    channel: str = "C0GENERAL",
    message: dict[str, Any] | None = None,
    ephemeral: bool = False,
    action_type: str = "button",
) -> str:
    """A ``block_actions`` click as Slack POSTs it (form-encoded ``payload=``); ``action_type``
    ``feedback_buttons`` for Slack's feedback element."""
    container: dict[str, Any] = {
        "type": "message",
        "message_ts": (message or {}).get("ts", "1700000000.000100"),
        "channel_id": channel,
        "is_ephemeral": ephemeral,
    }
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user_id, "username": "alice", "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "legacy-verification-token",
        "container": container,
        "trigger_id": "1.2.3",
        "team": {"id": TEAM_ID, "domain": "example"},
        "channel": {"id": channel, "name": "general"},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": "feedback",
                "text": {"type": "plain_text", "text": "button"},
                "value": value,
                "type": action_type,
                "action_ts": str(time.time()),
            }
        ],
    }
    if not ephemeral:
        payload["message"] = message or {"type": "message", "ts": "1700000000.000100"}
    return urlencode({"payload": json.dumps(payload)})
