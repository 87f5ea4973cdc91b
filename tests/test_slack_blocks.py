"""Block Kit rendering of the reply model, and the surface-neutral handlers: shapes, limits,
escaping, and the same reply rendered the same way as text for the chat and the CLI."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import replace
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
    FeedbackValue,
    echo,
    escape,
    expert_answer_message,
    experts_post,
    feedback_value,
    home_view,
    parse_feedback_value,
    slack_message,
    suggested_prompts,
)
from bot.store import Escalation, ExpertReply
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
    assert kinds == ["section", "context", "actions", "context_actions"]
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
    # Slack's own feedback element: one action, the vote in each button's value.
    [element] = message.blocks[3]["elements"]
    assert (element["type"], element["action_id"]) == ("feedback_buttons", "feedback")
    up = parse_feedback_value(element["positive_button"]["value"])
    down = parse_feedback_value(element["negative_button"]["value"])
    assert (up.vote, down.vote) == ("up", "down")
    assert up.question == "when?" and down.entry_ids == ("updates-cutoff", "new-sales-ban")
    assert message.feedback_element and message.escalation is None
    assert message.entry_ids == ("updates-cutoff", "new-sales-ban")
    assert message.question == "when?"


def test_the_classic_feedback_buttons_where_the_element_is_refused() -> None:
    message = slack_message(AnswerReply(_answer(question="when?")), feedback_element=False)
    assert [b["type"] for b in message.blocks] == ["section", "context", "actions", "actions"]
    feedback = [b["action_id"] for b in message.blocks[3]["elements"]]
    assert feedback == ["feedback_up", "feedback_down"]
    assert parse_feedback_value(message.blocks[3]["elements"][0]["value"]).vote is None
    assert not message.feedback_element


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
    [row] = [b for b in message.blocks if b.get("block_id") == "feedback"]
    assert [e["action_id"] for e in row["elements"]] == ["share_answer"]
    assert row["elements"][-1]["value"] == "when?"
    assert message.blocks[-1]["type"] == "context_actions"
    classic = slack_message(
        AnswerReply(_answer(question="when?"), share=True), feedback_element=False
    )
    ids = [e["action_id"] for e in classic.blocks[-1]["elements"]]
    assert ids == ["feedback_up", "feedback_down", "share_answer"]


def test_a_follow_up_names_its_topic_and_offers_the_question_on_its_own() -> None:
    answer = _answer(
        question="and <!here> on macs?",
        in_context=True,
        topic="What is <UltraAV>?",
        alone_differs=True,
        follow_ups=(),
    )
    message = slack_message(AnswerReply(answer))
    assert [b["type"] for b in message.blocks] == [
        "context",
        "section",
        "context",
        "actions",
        "context_actions",
    ]
    assert (
        message.blocks[0]["elements"][0]["text"] == "↪ Following up on “What is &lt;UltraAV&gt;?”"
    )
    [button] = message.blocks[3]["elements"]
    assert (button["action_id"], button["value"]) == ("ask_alone", "and <!here> on macs?")
    assert button["text"]["text"] == "Ask it on its own instead"
    # The fallback text leads with the answer (what a notification shows).
    assert message.text.startswith("Updates stopped")
    assert "(Following up on “What is &lt;UltraAV&gt;?”)" in message.text
    text = render_text(AnswerReply(answer))
    assert text.startswith("↪ Following up on “What is <UltraAV>?”\nUpdates stopped")
    assert text.endswith("Not what you meant? /ban-ask and <!here> on macs? asks it on its own.")
    # Read in context, but alone it has no other answer: no button, no hint.
    same = slack_message(AnswerReply(_answer(in_context=True, topic="T?", follow_ups=())))
    assert "ask_alone" not in _texts(same.blocks)
    assert "Not what you meant" not in render_text(
        AnswerReply(_answer(in_context=True, topic="T?"))
    )
    cli = render_text(AnswerReply(answer), commands=CLI_COMMANDS)
    assert "Not what you meant? ban-bot ask and <!here> on macs? asks it on its own." in cli
    long = render_text(AnswerReply(replace(answer, question="and on macs " + "x" * 200)))
    assert long.endswith("Not what you meant? /ban-ask QUESTION asks it on its own.")


def test_the_sentences_a_question_asked_for_are_in_bold_in_the_blocks_only() -> None:
    text = "Sales stopped on July 20, 2024. Use <b> & more. Nobody was fined."
    answer = _answer(text=text, emphasis=("Sales stopped on July 20, 2024.", "Use <b> & more."))
    message = slack_message(AnswerReply(answer))
    shown = message.blocks[0]["text"]["text"]
    assert (
        shown == "*Sales stopped on July 20, 2024.* *Use &lt;b&gt; &amp; more.* Nobody was fined."
    )
    assert message.text.startswith("Sales stopped on July 20, 2024. Use &lt;b&gt;")  # plain
    assert render_text(AnswerReply(answer)).startswith(text)  # the chat shows the text as is
    # A sentence with mrkdwn's own marks is left as it is rather than unbalance the markup.
    odd = slack_message(AnswerReply(_answer(text="A *b* c. D.", emphasis=("A *b* c.",))))
    assert odd.blocks[0]["text"]["text"] == "A *b* c. D."


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
    st.text(max_size=5000),
    st.lists(st.from_regex(r"[a-z0-9-]{1,40}", fullmatch=True), max_size=3),
    st.sampled_from([None, "up", "down"]),
    st.one_of(st.none(), st.from_regex(r"C[A-Z0-9]{1,20}:\d{10}\.\d{6}", fullmatch=True)),
)
def test_feedback_value_fits_a_button_and_round_trips(
    question: str, ids: list[str], vote: str | None, key: str | None
) -> None:
    value = feedback_value(question, ids, vote=vote, escalation=key)
    assert len(value) <= 2000
    parsed = parse_feedback_value(value)
    assert question.startswith(parsed.question) and parsed.entry_ids == tuple(ids)
    assert (parsed.vote, parsed.escalation) == (vote, key)


def test_a_value_that_is_not_ours_parses_to_nothing() -> None:
    assert parse_feedback_value("not json") == FeedbackValue("", ())
    assert parse_feedback_value("[1, 2]") == FeedbackValue("", ())
    assert parse_feedback_value('{"v": "sideways", "m": 7}') == FeedbackValue("", ())


def _decline(kind: str = "decline") -> Answer:
    return _answer(kind=kind, text="I don't know.", sources=(), follow_ups=(), entry_ids=())


def test_ask_the_experts_is_offered_on_declines_only_when_the_experts_can_be_asked() -> None:
    def buttons(message_blocks: list[dict[str, Any]]) -> dict[str, str]:
        return {
            e["action_id"]: e.get("value", "")
            for b in message_blocks
            if b["type"] == "actions"
            for e in b["elements"]
        }

    key = "C0GENERAL:1710000000.000001"
    for kind in ("decline", "out-of-scope"):
        offered = slack_message(AnswerReply(_decline(kind)), ask_experts=key)
        assert buttons(offered.blocks) == {"ask_experts": key} and offered.escalation == key
        assert "ask the people who know" in offered.text
    for kind in ("smalltalk", "empty"):
        none = slack_message(AnswerReply(_decline(kind)), ask_experts=key)
        assert "ask_experts" not in buttons(none.blocks) and none.escalation is None
    assert "ask_experts" not in buttons(slack_message(AnswerReply(_decline())).blocks)

    # An answer offers it after a 👎: the key rides in the feedback values, on both renderings.
    answered = slack_message(AnswerReply(_answer()), ask_experts=key)
    assert answered.escalation == key and "ask_experts" not in buttons(answered.blocks)
    element = answered.blocks[-1]["elements"][0]
    assert parse_feedback_value(element["negative_button"]["value"]).escalation == key
    classic = slack_message(AnswerReply(_answer()), ask_experts=key, feedback_element=False)
    assert parse_feedback_value(buttons(classic.blocks)["feedback_down"]).escalation == key

    thanks_down = slack_message(feedback_notice("down"), ask_experts=key)
    assert buttons(thanks_down.blocks) == {"ask_experts": key}
    assert buttons(slack_message(feedback_notice("up"), ask_experts=key).blocks) == {}
    assert buttons(slack_message(feedback_notice("down")).blocks) == {}


HOSTILE = (
    "<!channel> <!here> <!everyone> <!subteam^S0EVIL> <@U0EVE> <#C0SECRET|secret> "
    "<https://evil.example|click me> &lt;!channel&gt; *bold* ```code``` "
)


def _escalation(question: str, **fields: Any) -> Escalation:
    base: dict[str, Any] = {
        "id": 1,
        "created_at": "2026-11-26T15:00:00+00:00",
        "channel": "C0GENERAL",
        "message_ts": "1710000000.000001",
        "thread_ts": "1710000000.000001",
        "asker_hash": "h",
        "question": question,
        "entry_ids": (),
        "declined": True,
    }
    return Escalation(**{**base, **fields})


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=2000))
def test_the_experts_post_never_carries_live_markup_from_the_question(text: str) -> None:
    permalink = "https://example.slack.com/archives/C0GENERAL/p1710000000000001"
    post = experts_post(
        _escalation(HOSTILE + text), asker="U0ALICE", group="S0EXPERTS", permalink=permalink
    )
    ours = ("<!subteam^S0EXPERTS>", "<@U0ALICE>", f"<{permalink}|", "<#C0GENERAL>")
    shown = _texts(post.blocks) + post.text
    for markup in ours:
        shown = shown.replace(markup, "")
    assert not LIVE.search(shown), shown[:300]
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in post.blocks)
    assert post.text.startswith("<!subteam^S0EXPERTS> <@U0ALICE> asked")


def test_the_experts_post_writes_only_ids_shaped_like_slack_ids() -> None:
    post = experts_post(
        _escalation("q", channel="D0ALICE", declined=False, entry_ids=("updates-cutoff",)),
        asker="<!channel>",
        group="<!here>",
        permalink="javascript:alert(1)",
    )
    shown = _texts(post.blocks)
    assert "<!" not in shown and "javascript" not in shown
    assert "Someone asked in a direct message with me" in shown
    assert "`updates-cutoff`" in shown and "found unhelpful" in shown


def test_an_experts_answer_is_quoted_back_escaped() -> None:
    reply = ExpertReply(
        1, 1, "t", "C0EXPERTS", "9.9", "h", HOSTILE + "See <https://x.gov/r|the rule>."
    )
    message = expert_answer_message(reply)
    shown = _texts(message.blocks) + message.text
    assert not LIVE.search(shown)
    assert "the rule (https://x.gov/r)" in shown


def test_suggested_prompts_are_at_most_four_plain_questions() -> None:
    examples = ["When do updates stop?", "x" * 200, "a", "b", "c"]
    prompts = suggested_prompts(examples)
    assert len(prompts) == 4 and prompts[0] == {
        "title": "When do updates stop?",
        "message": "When do updates stop?",
    }
    assert len(prompts[1]["title"]) <= 75 and prompts[1]["message"] == "x" * 200


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
