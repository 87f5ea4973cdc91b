"""slack-manifest.yaml agrees with the listeners the app registers: every command, bot event and
interaction the manifest sends is handled, every listener is reachable from the manifest, and
the scopes cover the events and every Web API method the bot's code calls."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from mock_slack import MockWebApi, signed_headers
from mock_slack.signing import action_body, command_body, event_body
from slack_bolt import App, BoltRequest, BoltResponse
from slack_harness import SIGNING_SECRET, USER, harness_settings

from bot.config import ROOT, Settings
from bot.slack.app import build_bot
from bot.slack.blocks import COMMANDS, FOLLOW_UP_PREFIX
from bot.slack.listeners.actions import BUTTONS
from bot.store import Store

pytest_plugins = ["slack_fixtures"]

MANIFEST = yaml.safe_load((ROOT / "slack-manifest.yaml").read_text())
EVENT_SCOPES = {
    "app_mention": "app_mentions:read",
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "message.im": "im:history",
    "reaction_added": "reactions:read",
    "app_home_opened": None,  # needs no scope
    "assistant_thread_started": None,  # none either (the prompts it leads to need one)
}
# The scope each Web API method the bot calls needs, per Slack's method reference. A call the
# code makes that is missing here fails test_scopes_cover_every_web_api_method_the_bot_calls.
METHOD_SCOPES = {
    "chat_postMessage": "chat:write",
    "chat_postEphemeral": "chat:write",
    "chat_getPermalink": None,
    "reactions_add": "reactions:write",
    "reactions_remove": "reactions:write",
    "views_publish": None,
    # Since March 2026 it takes chat:write, so channel threads get the loading status too.
    "assistant_threads_setStatus": "chat:write",
    "assistant_threads_setSuggestedPrompts": "assistant:write",
}
SLACK_CODE = ROOT / "bot" / "slack"


@pytest.fixture
def app(
    real_settings: Settings, real_engine: Any, slack_api: MockWebApi, tmp_path: Path
) -> Iterator[App]:
    settings = harness_settings(real_settings, slack_api, tmp_path / "data")
    store = Store.open(settings)
    bot = build_bot(settings, real_engine, store=store)
    yield bot.app
    bot.shutdown(timeout=10)  # the answers the requests admitted, before the store closes
    store.close()


def _request(body: str) -> BoltRequest:
    headers: dict[str, str | Sequence[str]] = {**signed_headers(SIGNING_SECRET, body)}
    return BoltRequest(body=body, headers=headers)


def _event(name: str) -> BoltRequest:
    """What Slack sends for a manifest bot event such as ``message.im``."""
    kind, _, channel_type = name.partition(".")
    event: dict[str, Any] = {"type": kind, "user": USER, "ts": "1700000000.000001"}
    if kind == "message":
        channel_type = {"channels": "channel", "groups": "group", "im": "im"}[channel_type]
        event.update(channel="C0X", channel_type=channel_type, text="hello")
    elif kind == "app_mention":
        event.update(channel="C0X", text="<@UBANBOT01> hello")
    elif kind == "app_home_opened":
        event.update(tab="home")
    elif kind == "reaction_added":
        event.update(
            reaction="white_check_mark", item={"type": "message", "channel": "C0X", "ts": "1.2"}
        )
    elif kind == "assistant_thread_started":
        event["assistant_thread"] = {"user_id": USER, "channel_id": "D0X", "thread_ts": "1.2"}
    return _request(event_body(event))


def _manifest_requests(response_url: str) -> dict[str, BoltRequest]:
    commands = [c["command"] for c in MANIFEST["features"]["slash_commands"]]
    requests = {c: _request(command_body(c, "", response_url=response_url)) for c in commands}
    for name in MANIFEST["settings"]["event_subscriptions"]["bot_events"]:
        requests[name] = _event(name)
    if MANIFEST["settings"]["interactivity"]["is_enabled"]:
        # Every button the bot renders; the follow-up pattern by the first id it matches.
        for matched, _, _ in BUTTONS:
            action_id = matched if isinstance(matched, str) else f"{FOLLOW_UP_PREFIX}0"
            assert isinstance(matched, str) or matched.match(action_id)
            body = action_body(
                action_id, json.dumps({"q": "x", "e": []}), response_url=response_url
            )
            requests[action_id] = _request(body)
    return requests


def test_manifest_commands_are_the_commands_the_bot_documents() -> None:
    declared = {c["command"]: c for c in MANIFEST["features"]["slash_commands"]}
    assert set(declared) == {name for name, _, _ in COMMANDS}
    for command in declared.values():
        assert command["description"] and len(command["description"]) <= 100
        assert command["url"].endswith("/slack/events")
    assert declared["/ban-ask"]["usage_hint"] and declared["/ban-deadlines"]["usage_hint"]


def test_everything_the_manifest_sends_is_handled(app: App, slack_api: MockWebApi) -> None:
    for name, request in _manifest_requests(slack_api.response_url()).items():
        assert app.dispatch(request).status == 200, name


def test_what_the_manifest_does_not_send_is_not_handled(app: App, slack_api: MockWebApi) -> None:
    unknown_command = command_body("/ban-other", "", response_url=slack_api.response_url())
    unknown_action = action_body("other_button", "x", response_url=slack_api.response_url())
    unsubscribed = event_body({"type": "member_joined_channel", "user": USER})
    for body in (unknown_command, unknown_action, unsubscribed):
        response: BoltResponse = app.dispatch(_request(body))
        assert response.status == 404, body[:80]


def test_every_registered_listener_is_reached_from_the_manifest(
    app: App, slack_api: MockWebApi
) -> None:
    requests = list(_manifest_requests(slack_api.response_url()).values())
    # bolt keeps no public list of listeners; _listeners is what dispatch() walks.
    for listener in app._listeners:
        reached = any(
            listener.matches(req=r, resp=BoltResponse(status=200, body="")) for r in requests
        )
        assert reached, f"{listener.ack_function.__name__} is not in slack-manifest.yaml"


def test_scopes_cover_the_events_and_what_the_bot_calls() -> None:
    scopes = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    for event in MANIFEST["settings"]["event_subscriptions"]["bot_events"]:
        needed = EVENT_SCOPES[event]
        assert needed is None or needed in scopes, event
    # The slash commands, and DMs.
    assert {"commands", "im:write"} <= scopes


def test_scopes_cover_every_web_api_method_the_bot_calls() -> None:
    scopes = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    called = {
        method
        for path in SLACK_CODE.rglob("*.py")
        for method in re.findall(r"\bclient\.([a-z]+_[A-Za-z_]+)\(", path.read_text())
    }
    assert {"chat_postMessage", "chat_getPermalink", "assistant_threads_setStatus"} <= called
    for method in sorted(called):
        assert method in METHOD_SCOPES, f"{method}: add the scope it needs to METHOD_SCOPES"
        needed = METHOD_SCOPES[method]
        assert needed is None or needed in scopes, f"{method} needs {needed}"


def test_the_agent_view_is_described() -> None:
    agent = MANIFEST["features"]["agent_view"]
    assert 0 < len(agent["agent_description"]) <= 300  # Slack's limit


def test_manifest_turns_on_socket_mode_interactivity_and_app_home() -> None:
    settings = MANIFEST["settings"]
    assert settings["socket_mode_enabled"] is True
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["request_url"].endswith("/slack/events")
    assert settings["event_subscriptions"]["request_url"].endswith("/slack/events")
    home = MANIFEST["features"]["app_home"]
    assert home["home_tab_enabled"] is True and home["messages_tab_enabled"] is True
    assert home["messages_tab_read_only_enabled"] is False
    assert MANIFEST["features"]["bot_user"]["display_name"]
