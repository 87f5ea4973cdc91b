"""Block Kit builders and the surface-neutral handlers: shapes, limits, escaping."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.answer import Answer, FollowUp
from bot.handlers import (
    ask_command,
    deadlines_command,
    help_message,
    home_view,
    question_message,
    run_command,
)
from bot.knowledge import Source
from bot.slack import blocks
from bot.slack.blocks import (
    answer_message,
    echo,
    escape,
    feedback_value,
    parse_feedback_value,
    source_date,
)

LIVE = re.compile(r"<[!@#]|<https?:")


def _answer(**fields: Any) -> Answer:
    base: dict[str, Any] = {
        "question": "q",
        "text": "Updates stopped on September 29, 2024.",
        "declined": False,
        "score": 0.9,
        "entry_ids": ("updates-cutoff", "new-sales-ban"),
        "sources": (
            Source(
                "Final Determination",
                "Federal Register",
                "2024-06-24",
                "https://a.example/?a=1&b=2",
                "primary",
            ),
            Source("A rumour", "Some blog", "2024-09", None, "unconfirmed"),
        ),
        "follow_ups": (
            FollowUp("new-sales-ban", "When did new sales stop?"),
            FollowUp("ofac", "Did OFAC sanction Kaspersky?"),
            FollowUp("third", "A third one?"),
        ),
    }
    return Answer(**{**base, **fields})


def _texts(message_blocks: list[dict[str, Any]]) -> str:
    return json.dumps(message_blocks, ensure_ascii=False)


def test_answer_message_has_text_sources_with_dates_follow_ups_and_feedback() -> None:
    message = answer_message(_answer(), question="when?")
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


def test_a_declined_answer_has_no_sources_but_can_still_be_rated() -> None:
    message = answer_message(_answer(declined=True, sources=(), follow_ups=()), question="pizza?")
    assert [b["type"] for b in message.blocks] == ["section", "actions"]
    assert message.declined


def test_ask_answer_has_a_share_button() -> None:
    message = answer_message(_answer(), question="when?", share=True)
    ids = [e["action_id"] for e in message.blocks[-1]["elements"]]
    assert ids == ["feedback_up", "feedback_down", "share_answer"]
    assert message.blocks[-1]["elements"][-1]["value"] == "when?"


def test_knowledge_text_is_escaped_too() -> None:
    message = answer_message(_answer(text="Use <!here> & <@U1> <http://x|y>"), question="q")
    shown = message.blocks[0]["text"]["text"]
    assert shown == "Use &lt;!here&gt; &amp; &lt;@U1&gt; &lt;http://x|y&gt;"
    assert message.text.startswith(shown)


def test_unsafe_source_urls_are_not_made_links() -> None:
    source = Source("T|x>", "P", "2024", "https://a.example/|<!channel>", "secondary")
    message = answer_message(_answer(sources=(source,)), question="q")
    assert "<!channel>" not in _texts(message.blocks)
    assert "T|x&gt; — P, 2024" in message.blocks[1]["elements"][0]["text"]


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
    assert source_date("2024-06-24") == "June 24, 2024"
    assert source_date("2024-06") == "June 2024"
    assert source_date("2024") == "2024"


# -- handlers, on the real engine --------------------------------------------------------------


def test_question_message_answers_and_strips_slack_markup(real_engine: Any) -> None:
    message = question_message(real_engine, "<@U123> <!channel> when do kaspersky updates stop?")
    assert "September 29, 2024" in message.text
    assert message.question == "when do kaspersky updates stop?"


def test_an_empty_question_gets_a_prompt_not_an_answer(real_engine: Any) -> None:
    for text in ("", "   ", "<@U123>"):
        message = question_message(real_engine, text)
        assert message.question is None and "Ask me anything" in message.text
    assert "Usage: /ban-ask QUESTION" in ask_command(real_engine, "").text


def test_deadlines_filtered_by_word_with_standing(real_engine: Any) -> None:
    message = deadlines_command(real_engine, "updates")
    assert "September 29, 2024" in message.text and "(2 years ago)" in message.text
    assert len(deadlines_command(real_engine, None).blocks) > len(message.blocks)
    assert len(deadlines_command(real_engine, "").blocks) <= 50


def test_every_message_has_a_plain_text_fallback_within_slack_limits(real_engine: Any) -> None:
    messages = [
        question_message(real_engine, "why was kaspersky banned?"),
        question_message(real_engine, "best pizza near the office?"),
        ask_command(real_engine, "what is ultraav?"),
        deadlines_command(real_engine, None),
        deadlines_command(real_engine, "nothing-matches-this"),
        help_message(real_engine),
        run_command(real_engine, "/ban-help"),
        blocks.error_message("abc123"),
        blocks.feedback_thanks("up"),
    ]
    for message in messages:
        assert message.text.strip()
        assert len(message.blocks) <= 50
        for block in message.blocks:
            if block["type"] in ("section", "context"):
                texts = [block["text"]] if "text" in block else block["elements"]
                assert all(len(t["text"]) <= 3000 for t in texts)


def test_home_view_shows_key_deadlines_against_today(real_engine: Any) -> None:
    view = home_view(real_engine)
    assert view["type"] == "home" and len(view["blocks"]) <= 100
    shown = _texts(view["blocks"])
    key = [e for e in real_engine.timeline.events if e.key]
    assert key and all(e.title.split()[0] in shown for e in key)
    assert "ago" in shown and "/ban-deadlines" in shown


def test_error_message_is_short_and_names_only_the_id() -> None:
    message = blocks.error_message("deadbeef")
    assert "deadbeef" in message.text and len(message.text) < 200
