"""Block Kit rendering of the reply model, and the surface-neutral handlers: shapes, limits,
escaping, and the same reply rendered the same way as text for the chat and the CLI."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.answer import Answer, AnswerPart, FollowUp
from bot.handlers import (
    ask_reply,
    busy_notice,
    deadlines_reply,
    error_notice,
    feedback_notice,
    help_reply,
    question_reply,
    rate_limited_notice,
    run_command,
)
from bot.knowledge import Source
from bot.render import CLI_COMMANDS, render_text
from bot.reply import AnswerReply, PromptReply
from bot.slack.blocks import (
    echo,
    escape,
    feedback_value,
    home_view,
    parse_feedback_value,
    slack_message,
)
from bot.timeline import format_partial_date

LIVE = re.compile(r"<[!@#]|<https?:")
FR = Source(
    title="Final Determination",
    publisher="Federal Register",
    date="2024-06-24",
    url="https://a.example/?a=1&b=2",
    status="primary",
)
RUMOUR = Source(title="A rumour", publisher="Some blog", date="2024-09", status="unconfirmed")


def _answer(**fields: Any) -> Answer:
    base: dict[str, Any] = {
        "question": "q",
        "kind": "answer",
        "text": "Updates stopped on September 29, 2024.",
        "score": 0.9,
        "entry_ids": ("updates-cutoff", "new-sales-ban"),
        "sources": (FR, RUMOUR),
        "follow_ups": (
            FollowUp("new-sales-ban", "When did new sales stop?"),
            FollowUp("ofac", "Did OFAC sanction Kaspersky?"),
            FollowUp("third", "A third one?"),
        ),
    }
    return Answer(**{**base, **fields})


def _texts(message_blocks: list[dict[str, Any]]) -> str:
    return json.dumps(message_blocks, ensure_ascii=False)


def test_answer_has_text_sources_with_dates_follow_ups_and_feedback() -> None:
    message = slack_message(AnswerReply(_answer(question="when?")))
    assert message.text.startswith("Updates stopped")
    kinds = [b["type"] for b in message.blocks]
    assert kinds == ["section", "context", "actions", "actions"]
    sources = message.blocks[1]["elements"][0]["text"]
    assert (
        "<https://a.example/?a=1&amp;b=2|Final Determination> — Federal Register, June 24, 2024"
        in sources
    )
    assert "A rumour — Some blog, September 2024 · _unconfirmed_" in sources
    assert "[unconfirmed]" in message.text
    follow_ups = message.blocks[2]["elements"]
    assert [b["value"] for b in follow_ups] == [
        "When did new sales stop?",
        "Did OFAC sanction Kaspersky?",
    ]
    feedback = [b["action_id"] for b in message.blocks[3]["elements"]]
    assert feedback == ["feedback_up", "feedback_down"]
    assert message.entry_ids == ("updates-cutoff", "new-sales-ban")
    assert message.question == "when?"


def test_a_decline_has_examples_and_the_slack_commands_but_no_sources() -> None:
    decline = _answer(
        kind="decline",
        text="I don't know.",
        sources=(),
        follow_ups=(),
        examples=("When do updates stop?", "Who is UltraAV?"),
    )
    message = slack_message(AnswerReply(decline))
    assert [b["type"] for b in message.blocks] == ["section", "context"]
    hint = message.blocks[1]["elements"][0]["text"]
    assert "“When do updates stop?”" in hint and "`/ban-deadlines`" in hint
    assert message.declined
    # The chat names the same commands; the CLI names its own.
    assert "/ban-deadlines" in render_text(AnswerReply(decline))
    cli = render_text(AnswerReply(decline), commands=CLI_COMMANDS)
    assert "ban-bot deadlines" in cli and "/ban-" not in cli


def test_small_talk_lists_its_examples_without_feedback_buttons() -> None:
    hello = _answer(kind="smalltalk", text="Hi!", sources=(), follow_ups=(), examples=("A?",))
    message = slack_message(AnswerReply(hello))
    assert [b["type"] for b in message.blocks] == ["section", "section"]
    assert "“A?”" in message.blocks[1]["text"]["text"]


def test_an_overview_numbers_each_points_sources() -> None:
    parts = (
        AnswerPart("The ban came in steps.", (FR,), "overview-key-dates"),
        AnswerPart("New sales ended July 20, 2024.", (FR,), "new-sales-ban"),
        AnswerPart("A rumour said more.", (RUMOUR,), "rumour"),
    )
    overview = _answer(kind="overview", parts=parts, sources=(FR, RUMOUR), follow_ups=())
    message = slack_message(AnswerReply(overview))
    body = message.blocks[0]["text"]["text"]
    assert body == (
        "The ban came in steps. [1]\n• New sales ended July 20, 2024. [1]\n• A rumour said more. [2]"
    )
    sources = message.blocks[1]["elements"][0]["text"]
    assert sources.startswith("*Sources*\n[1] <https://a.example/") and "\n[2] A rumour" in sources
    text = render_text(AnswerReply(overview))
    assert "  • New sales ended July 20, 2024. [1]" in text and "  [2] A rumour" in text


def test_ask_answer_has_a_share_button() -> None:
    message = slack_message(AnswerReply(_answer(question="when?"), share=True))
    ids = [e["action_id"] for e in message.blocks[-1]["elements"]]
    assert ids == ["feedback_up", "feedback_down", "share_answer"]
    assert message.blocks[-1]["elements"][-1]["value"] == "when?"


def test_knowledge_text_is_escaped_too() -> None:
    message = slack_message(AnswerReply(_answer(text="Use <!here> & <@U1> <http://x|y>")))
    shown = message.blocks[0]["text"]["text"]
    assert shown == "Use &lt;!here&gt; &amp; &lt;@U1&gt; &lt;http://x|y&gt;"
    assert message.text.startswith(shown)


def test_unsafe_source_urls_are_not_made_links() -> None:
    source = Source(
        title="T|x>",
        publisher="P",
        date="2024",
        url="https://a.example/|<!channel>",
        status="secondary",
    )
    message = slack_message(AnswerReply(_answer(sources=(source,))))
    assert "<!channel>" not in _texts(message.blocks)
    assert "T|x&gt; — P, 2024" in message.blocks[1]["elements"][0]["text"]


def test_a_shared_answer_names_who_shared_it() -> None:
    message = slack_message(AnswerReply(_answer(question="<!here> q"), shared_by="U42"))
    intro = message.blocks[0]["elements"][0]["text"]
    assert intro.startswith("<@U42> shared an answer to:") and "&lt;!here&gt;" in intro


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=3000))
def test_echoed_text_can_never_be_live_markup(text: str) -> None:
    assert not LIVE.search(echo(text))
    assert "<" not in escape(text) and ">" not in escape(text)


@settings(max_examples=100, deadline=None)
@given(
    st.text(max_size=5000), st.lists(st.from_regex(r"[a-z0-9-]{1,40}", fullmatch=True), max_size=3)
)
def test_feedback_value_fits_a_button_and_round_trips(question: str, ids: list[str]) -> None:
    value = feedback_value(question, ids)
    assert len(value) <= 2000
    q, parsed = parse_feedback_value(value)
    assert question.startswith(q) and parsed == tuple(ids)


def test_a_value_that_is_not_ours_parses_to_nothing() -> None:
    assert parse_feedback_value("not json") == ("", ())
    assert parse_feedback_value("[1, 2]") == ("", ())


def test_source_dates_read_as_people_write_them() -> None:
    assert format_partial_date("2024-06-24") == "June 24, 2024"
    assert format_partial_date("2024-06") == "June 2024"
    assert format_partial_date("2024") == "2024"
    assert format_partial_date("not a date") == "not a date"


# -- handlers, on the real engine --------------------------------------------------------------


def test_question_reply_answers_and_strips_slack_markup(real_engine: Any) -> None:
    reply = question_reply(real_engine, "<@U123> <!channel> when do kaspersky updates stop?")
    assert isinstance(reply, AnswerReply)
    assert "September 29, 2024" in reply.answer.text
    assert reply.question == "when do kaspersky updates stop?"
    assert slack_message(reply).question == "when do kaspersky updates stop?"


def test_an_empty_question_gets_a_prompt_not_an_answer(real_engine: Any) -> None:
    for text in ("", "   ", "<@U123>"):
        reply = question_reply(real_engine, text)
        assert isinstance(reply, PromptReply)
        message = slack_message(reply)
        assert message.question is None and "Ask me anything" in message.text
    assert "Usage: /ban-ask QUESTION" in slack_message(ask_reply(real_engine, "")).text


def test_deadlines_lead_with_the_key_dates_with_standing(real_engine: Any) -> None:
    now = real_engine.clock()
    key = slack_message(deadlines_reply(real_engine.timeline, now))
    assert "the key dates" in key.blocks[0]["text"]["text"]
    assert "September 29, 2024" in key.text and "(2 years ago)" in key.text
    assert "2017" not in key.text.split("more dates")[0]
    actions = [b for b in key.blocks if b["type"] == "actions"]
    assert actions and actions[0]["elements"][0]["action_id"] == "deadlines_history"
    history = slack_message(deadlines_reply(real_engine.timeline, now, "history"))
    assert len(history.blocks) > len(key.blocks) and len(history.blocks) <= 50
    assert "December 12, 2017" in history.text
    updates = slack_message(deadlines_reply(real_engine.timeline, now, "updates"))
    assert "September 29, 2024" in updates.text and "Dates that mention" in _texts(updates.blocks)


def test_deadline_words_match_whole_words(real_engine: Any) -> None:
    far = deadlines_reply(real_engine.timeline, real_engine.clock(), "far")
    assert far.events and all("FAR" in e.title + e.what for e in far.events)  # not "farewell"
    assert not any("farewell" in (e.title + e.what).lower() for e in far.events)


def test_every_message_has_a_plain_text_fallback_within_slack_limits(real_engine: Any) -> None:
    now = real_engine.clock()
    replies = [
        question_reply(real_engine, "why was kaspersky banned?"),
        question_reply(real_engine, "best pizza near the office?"),
        question_reply(real_engine, "which dates matter in this ban?"),
        question_reply(real_engine, "hi"),
        ask_reply(real_engine, "what is ultraav?"),
        deadlines_reply(real_engine.timeline, now),
        deadlines_reply(real_engine.timeline, now, "history"),
        deadlines_reply(real_engine.timeline, now, "nothing-matches-this"),
        help_reply(real_engine),
        run_command(real_engine, "/ban-help"),
        error_notice("abc123"),
        feedback_notice("up"),
        busy_notice(),
        rate_limited_notice(20),
    ]
    for reply in replies:
        message = slack_message(reply)
        assert message.text.strip() and render_text(reply).strip()
        assert len(message.blocks) <= 50
        for block in message.blocks:
            if block["type"] in ("section", "context"):
                texts = [block["text"]] if "text" in block else block["elements"]
                assert all(len(t["text"]) <= 3000 for t in texts)


def test_home_view_shows_key_deadlines_against_today(real_engine: Any) -> None:
    view = home_view(help_reply(real_engine))
    assert view["type"] == "home" and len(view["blocks"]) <= 100
    shown = _texts(view["blocks"])
    key = real_engine.timeline.key_events
    assert key and all(e.title.split()[0] in shown for e in key)
    assert "ago" in shown and "/ban-deadlines" in shown
    assert "greetings and thanks" not in shown  # small talk is not a topic


def test_error_notice_is_short_and_names_only_the_id() -> None:
    message = slack_message(error_notice("deadbeef"))
    assert "deadbeef" in message.text and len(message.text) < 200


def test_the_cli_and_the_chat_render_a_reply_alike(real_engine: Any) -> None:
    reply = question_reply(real_engine, "when do kaspersky updates stop?")
    chat, cli = render_text(reply), render_text(reply, commands=CLI_COMMANDS)
    assert chat == cli  # an answer names no command
    assert "Sources:" in chat and "June 2024" in chat and "2024-06" not in chat
    assert dt.date(2024, 6, 1).strftime("%B %Y") in chat
