"""Malformed Slack payloads, fuzzed with hypothesis and posted to ``/slack/events`` over real
HTTP, each signed as Slack signs it (so they get past the signature check and reach bolt and
the listeners): random JSON, envelopes and events with wrong types and missing fields, slash
command forms and ``payload=`` forms with junk, huge bodies. Never a 5xx, never an error in the
log, and the bot still answers afterwards."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mock_slack import BOT_USER_ID, MockWebApi, signed_headers
from mock_slack.signing import event_body
from slack_harness import SIGNING_SECRET, UvicornThread, eventually, harness_settings, http

from bot.config import Settings
from bot.slack.serve import HttpSurface

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


class Errors(logging.Handler):
    """Every record at ERROR or above, from any logger (bolt, uvicorn, ours)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass(repr=False)  # hypothesis prints the failing example's arguments: keep it short
class Rig:
    url: str
    api: MockWebApi
    surface: HttpSurface
    errors: Errors

    def post(self, body: str, content_type: str) -> int:
        headers = signed_headers(SIGNING_SECRET, body, content_type=content_type)
        return http(f"{self.url}/slack/events", data=body, headers=headers).status


@pytest.fixture(scope="module")
def rig(
    real_settings: Settings, real_engine: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Rig]:
    errors = Errors()
    logging.getLogger().addHandler(errors)
    with MockWebApi() as api:
        data: Path = tmp_path_factory.mktemp("fuzz-slack-data")
        # No rate limit: the fuzzer is one "person" sending hundreds of questions.
        # Experts and a help channel too, so that their paths see the junk as well.
        settings = harness_settings(real_settings, api, data).model_copy(
            update=dict(
                rate_limit_per_minute=0,
                experts_channel="C0EXPERTS",
                help_channels=("C0HELP",),
            )
        )
        surface = HttpSurface(settings, load_engine=lambda _: real_engine)
        with UvicornThread(surface.asgi) as server:
            assert surface.ready.wait(10)
            yield Rig(server.url, api, surface, errors)
    logging.getLogger().removeHandler(errors)


# Where a response_url may point: the stand-in, or nowhere at all (never another host).
def _response_urls(api_url: str) -> st.SearchStrategy[Any]:
    return st.sampled_from(
        [
            f"{api_url}response/fuzz",
            "",
            "not a url",
            "javascript:alert(1)",
            "file:///etc/passwd",
            None,
            17,
        ]
    )


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**64), max_value=2**64),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=40),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
texts = st.one_of(
    st.text(max_size=200),
    st.sampled_from([f"<@{BOT_USER_ID}> when do updates stop?", "<!channel>", "&lt;@U1&gt;"]),
    st.text(min_size=1, max_size=5).map(lambda t: t * 20_000),  # about 100 KB
)
field = st.one_of(texts, json_values)
events = st.fixed_dictionaries(
    {},
    optional={
        "type": st.one_of(
            st.sampled_from(
                [
                    "app_mention",
                    "message",
                    "app_home_opened",
                    "reaction_added",
                    "assistant_thread_started",
                ]
            ),
            json_values,
        ),
        "user": st.one_of(st.sampled_from(["U0FUZZ", BOT_USER_ID]), json_values),
        "text": field,
        "ts": st.one_of(st.sampled_from(["1710000000.000100"]), json_values),
        "thread_ts": st.one_of(st.sampled_from(["1710000000.000100"]), json_values),
        "channel": st.one_of(
            st.sampled_from(["C0FUZZ", "D0FUZZ", "C0EXPERTS", "C0HELP"]), json_values
        ),
        "channel_type": st.one_of(st.sampled_from(["im", "channel", "group"]), json_values),
        "subtype": st.one_of(st.sampled_from(["bot_message", "message_changed"]), json_values),
        "bot_id": json_values,
        "tab": st.one_of(st.sampled_from(["home", "messages"]), json_values),
        "event_ts": json_values,
        "reaction": st.one_of(st.just("white_check_mark"), json_values),
        "item": st.one_of(
            st.fixed_dictionaries(
                {"type": st.just("message"), "channel": st.just("C0EXPERTS"), "ts": field}
            ),
            json_values,
        ),
        "assistant_thread": st.one_of(
            st.fixed_dictionaries({"channel_id": field, "thread_ts": field}), json_values
        ),
    },
)
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "type": st.one_of(
            st.sampled_from(["event_callback", "url_verification", "app_rate_limited"]),
            json_values,
        ),
        "event": st.one_of(events, json_values),
        "event_id": st.one_of(st.text(max_size=12), json_values),
        "team_id": st.one_of(st.just("T0001"), json_values),
        "api_app_id": json_values,
        "challenge": json_values,
        "token": json_values,
        "authorizations": json_values,
        "event_time": json_values,
    },
)


@FUZZ
@given(body=st.one_of(json_values.map(json.dumps), st.text(max_size=300)))
def test_random_json_and_text_bodies(rig: Rig, body: str) -> None:
    assert rig.post(body, "application/json") < 500


@FUZZ
@given(envelope=envelopes)
def test_event_envelopes_with_wrong_types_and_missing_fields(rig: Rig, envelope: Any) -> None:
    assert rig.post(json.dumps(envelope), "application/json") < 500


@FUZZ
@given(event=events, data=st.data())
def test_events_with_wrong_types_in_a_proper_envelope(rig: Rig, event: Any, data: Any) -> None:
    body = event_body(event, event_id=data.draw(st.text(min_size=1, max_size=12)))
    assert rig.post(body, "application/json") < 500


@pytest.mark.parametrize("reaction", [{"": False}, ["white_check_mark"], 7, None])
def test_a_reaction_that_is_not_a_name_is_ignored(rig: Rig, reaction: Any) -> None:
    """Found by the fuzzing above: a ✅ check on an unhashable "reaction" answered 500."""
    event = {
        "type": "reaction_added",
        "user": "U0FUZZ",
        "reaction": reaction,
        "item": {"type": "message", "channel": "C0EXPERTS", "ts": "1710000000.000100"},
    }
    assert rig.post(event_body(event, event_id=f"Ev{id(reaction)}"), "application/json") == 200


@pytest.mark.parametrize(
    "event",
    [
        # Found by the fuzzing above: bolt's agent middleware raised on these, answering 500.
        {"type": "assistant_thread_started", "user": "U0FUZZ", "channel": "D0FUZZ"},
        {"type": "assistant_thread_started", "assistant_thread": {"channel_id": 5}},
        {"type": "message", "channel_type": "im", "user": "U0FUZZ", "thread_ts": "1.2"},
        {"type": "message", "channel": ["D0FUZZ"], "user": "U0FUZZ", "text": "hi"},
    ],
)
def test_events_bolt_cannot_read_are_refused_not_crashed_on(rig: Rig, event: Any) -> None:
    assert rig.post(event_body(event, event_id=f"Ev{id(event)}"), "application/json") == 400


@FUZZ
@given(data=st.data())
def test_slash_command_forms_with_junk(rig: Rig, data: Any) -> None:
    form = data.draw(
        st.fixed_dictionaries(
            {},
            optional={
                "command": st.one_of(
                    st.sampled_from(["/ban-ask", "/ban-deadlines", "/ban-help"]), st.text()
                ),
                "text": texts,
                "user_id": st.text(max_size=12),
                "channel_id": st.text(max_size=12),
                "team_id": st.text(max_size=12),
                "response_url": _response_urls(rig.api.url).map(str),
                "trigger_id": st.text(max_size=12),
                st.text(max_size=8): st.text(max_size=20),
            },
        )
    )
    assert rig.post(urlencode(form), "application/x-www-form-urlencoded") < 500


@FUZZ
@given(data=st.data())
def test_interactive_payload_forms_with_junk(rig: Rig, data: Any) -> None:
    action = st.fixed_dictionaries(
        {},
        optional={
            "action_id": st.one_of(
                st.sampled_from(
                    [
                        "feedback",
                        "feedback_up",
                        "feedback_down",
                        "share_answer",
                        "follow_up_0",
                        "ask_experts",
                        "mark_answer",
                    ]
                ),
                json_values,
            ),
            "value": st.one_of(st.just('{"q": "when?", "e": ["updates-cutoff"]}'), field),
            "type": json_values,
        },
    )
    payload = data.draw(
        st.fixed_dictionaries(
            {},
            optional={
                "type": st.one_of(
                    st.sampled_from(["block_actions", "view_submission", "shortcut"]),
                    json_values,
                ),
                "actions": st.one_of(st.lists(action, max_size=3), json_values),
                "user": st.one_of(st.fixed_dictionaries({"id": st.text(max_size=12)}), json_values),
                "channel": st.one_of(st.just({"id": "C0FUZZ"}), json_values),
                "message": st.one_of(st.just({"ts": "1700000000.000100"}), json_values),
                "container": st.one_of(st.just({"is_ephemeral": True}), json_values),
                "response_url": _response_urls(rig.api.url),
                "team": json_values,
                "api_app_id": json_values,
            },
        )
    )
    raw = data.draw(st.one_of(st.just(json.dumps(payload)), st.text(max_size=200)))
    assert rig.post(urlencode({"payload": raw}), "application/x-www-form-urlencoded") < 500


@FUZZ
@given(body=st.text(max_size=300))
def test_random_form_bodies(rig: Rig, body: str) -> None:
    assert rig.post(body, "application/x-www-form-urlencoded") < 500


def test_signed_junk_is_a_400_and_unsigned_junk_a_401(rig: Rig) -> None:
    for body in ("0", '{"event": null}', "payload=", '{"type": "block_actions", "actions": []}'):
        assert rig.post(body, "application/json") == 400
        assert http(f"{rig.url}/slack/events", data=body, headers={}).status == 401


def test_huge_bodies(rig: Rig) -> None:
    mention = {
        "type": "app_mention",
        "user": "U0HUGE",
        "text": f"<@{BOT_USER_ID}> " + "when do updates stop? " * 100_000,  # 2 MB
        "ts": "1710000000.999001",
        "channel": "C0FUZZ",
    }
    assert rig.post(event_body(mention), "application/json") == 200
    assert rig.post("x" * 5_000_000, "application/json") < 500
    assert rig.post("payload=" + "%7B" * 1_000_000, "application/x-www-form-urlencoded") < 500
    rig.api.wait_for("chat.postMessage", where=lambda c: c.body.get("thread_ts") == mention["ts"])


def test_after_all_that_the_bot_still_answers_and_logged_no_error(rig: Rig) -> None:
    # Runs last in this module: every fuzzed request above has been answered or ignored.
    bot = rig.surface.bot
    assert bot is not None
    assert eventually(lambda: bot.services.answers.pending == 0, timeout=60)
    mention = {
        "type": "app_mention",
        "user": "U0AFTER",
        "text": f"<@{BOT_USER_ID}> when do kaspersky updates stop?",
        "ts": "1710000000.999002",
        "channel": "C0FUZZ",
    }
    assert rig.post(event_body(mention), "application/json") == 200
    [post] = rig.api.wait_for(
        "chat.postMessage", where=lambda c: c.body.get("thread_ts") == mention["ts"]
    )
    assert "September 29, 2024" in post.text
    logged = {
        f"{r.name}: {r.getMessage()} {r.exc_info[1] if r.exc_info else ''}"
        for r in rig.errors.records
    }
    assert not logged, "\n".join(sorted(logged))
