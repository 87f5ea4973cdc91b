"""Hostile questions, fuzzed with hypothesis: arbitrary unicode, control characters, bidi and
zero-width characters, Slack markup and 100 KB messages, through ``Engine.answer``, the
surface-neutral handlers (Slack's and the local chat's) and the chat's rendering. Never an
exception, always a short reply, never live Slack markup."""

from __future__ import annotations

import json
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mock_slack.web_api import rendered_text

from bot.answer import Engine
from bot.chat import reply_to
from bot.handlers import ask_reply, deadlines_reply, question_reply
from bot.render import render_text
from bot.slack.blocks import slack_message
from bot.text import MAX_QUESTION_CHARS

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
MENTION = re.compile(r"<[!@#]")  # a broadcast, a mention or a channel link
LINK = re.compile(r"<((?:https?|mailto):[^|>]*)")
MARKUP = [
    "<@U0EVE>",
    "<@W0EVE|eve>",
    "<!channel>",
    "<!here|here>",
    "<!everyone>",
    "<!subteam^S0TEAM|@team>",
    "<!date^1392734382^{date}|Feb 18>",
    "<#C0SECRET|secret>",
    "<#C0SECRET>",
    "<https://evil.example|click>",
    "<mailto:a@b.example|mail>",
    "&lt;!channel&gt;",
    "&amp;lt;",
    "*bold*",
    "_it_",
    "~s~",
    "`code`",
    "```block```",
    ">quote",
    ":kaspersky:",
    "\u202e",  # right-to-left override
    "\u200b",  # zero-width space
    "\ufeff",
    "\x00",
    "\x1b[31m",
    "\r\n",
    "\t",
    "kaspersky",
    "updates",
    "ban",
    "when",
    "?",
]
every_char = st.characters(codec=None, exclude_categories=["Cs"])  # all but lone surrogates
fragments = st.one_of(st.text(every_char, max_size=40), st.sampled_from(MARKUP))
questions = st.one_of(
    st.text(every_char, max_size=300),
    st.lists(fragments, max_size=25).map("".join),
    # 100 KB and more: a fragment repeated, and random text at the end
    st.tuples(st.lists(fragments, min_size=1, max_size=5).map("".join), st.text(max_size=50))
    .filter(lambda t: t[0])
    .map(lambda t: (t[0] * (100_000 // len(t[0]) + 1)) + t[1]),
)


def _check(engine: Engine, reply_text: str, blocks: list[dict[str, object]]) -> None:
    assert reply_text.strip()
    assert len(reply_text) < 40_000  # Slack's limit for a message's text
    json.dumps(blocks)  # Slack gets JSON
    shown = rendered_text({"text": reply_text, "blocks": blocks})  # button values are not shown
    assert not MENTION.search(shown)
    # The only links are the knowledge set's own sources, never one typed in a question.
    sources = {s.url for e in engine.knowledge.entries for s in e.sources if s.url}
    sources |= {s.url for t in engine.timeline.events for s in t.sources if s.url}
    assert {m.replace("&amp;", "&") for m in LINK.findall(shown)} <= sources


@FUZZ
@given(question=questions)
def test_any_question_through_the_engine_the_slack_handlers_and_the_local_chat(
    real_engine: Engine, question: str
) -> None:
    """One hostile question through every surface. The engine reads it once: the surfaces ask
    the same cleaned question again and get the encoder's cached vector, so each example costs
    one encoding, however many surfaces it goes through."""
    answer = real_engine.answer(question)
    assert answer.text and len(answer.question) <= MAX_QUESTION_CHARS
    assert answer.declined or answer.sources
    assert 0 <= len(answer.follow_ups) <= 2

    for reply in (
        question_reply(real_engine, question),
        ask_reply(real_engine, question),
        deadlines_reply(real_engine.timeline, real_engine.clock(), question),
    ):
        message = slack_message(reply)
        _check(real_engine, message.text, message.blocks)

    # The local chat: the line as typed, as an unknown command, and after /ban-ask.
    for line in (question, "/" + question, "/ban-ask " + question):
        shown = render_text(reply_to(real_engine, line.strip()))
        assert shown.strip() and len(shown) < 20_000
