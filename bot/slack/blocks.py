"""Block Kit rendering: every ``Reply`` (bot/reply.py) as blocks plus a plain ``text`` fallback.

Anything that did not come from ban-bot's own templates (what a user typed, what an expert
replied, and the knowledge text too) goes through ``escape`` so it can never become
``<!channel>``, a mention or a link. This module formats; it never decides what the answer is.

Answers carry Slack's feedback element (a ``context_actions`` block) or, where a workspace
refuses it, classic 👍/👎 buttons (``feedback_element=False``). With ``ask_experts`` (the
question's escalation key), a decline offers "Ask the experts" at once and an answer after a 👎.

Usage::

    message = slack_message(question_reply(engine, "when do updates stop?"))
    client.chat_postMessage(channel=channel, **message.as_kwargs())
    client.views_publish(user_id=user, view=home_view(help_reply(engine)))
    client.chat_postMessage(channel=experts, **experts_post(escalation, ...).as_kwargs())
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextActionsBlock,
    ContextBlock,
    DividerBlock,
    FeedbackButtonObject,
    FeedbackButtonsElement,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.knowledge import Source
from bot.reply import (
    ASK,
    COMMANDS,
    DEADLINES,
    HELP,
    AnswerReply,
    DatedEvent,
    DeadlinesReply,
    HelpReply,
    NoticeReply,
    PromptReply,
    Reply,
    cited_parts,
    logged,
)
from bot.store import Escalation, ExpertReply, Vote
from bot.text import slack_to_plain
from bot.timeline import format_partial_date

__all__ = [
    "ASK",
    "COMMANDS",
    "DEADLINES",
    "HELP",
    "FeedbackValue",
    "Message",
    "echo",
    "escape",
    "experts_post",
    "home_view",
    "slack_message",
]

# Action ids: the listeners in bot/slack/listeners/actions.py match on these.
FEEDBACK = "feedback"  # Slack's feedback element: the value says which of its two was clicked
FEEDBACK_UP = "feedback_up"  # the classic buttons, where a workspace lacks the element
FEEDBACK_DOWN = "feedback_down"
ASK_EXPERTS = "ask_experts"
MARK_ANSWER = "mark_answer"
SHARE_ANSWER = "share_answer"
SHOW_HISTORY = "deadlines_history"
ASK_ALONE = "ask_alone"  # under a follow-up read in context: the same question, on its own
FOLLOW_UP_PREFIX = "follow_up_"  # follow_up_0, follow_up_1 (ids must differ within a block)
FOLLOW_UP_PATTERN = re.compile(rf"^{FOLLOW_UP_PREFIX}\d+$")

# Slack's limits: button text 75, button value 2000, section text 3000, header 150 characters.
_BUTTON_TEXT = 75
_BUTTON_VALUE = 2000
_SECTION_TEXT = 3000
_HEADER_TEXT = 150
_ECHO_CHARS = 300  # how much of a user's question is ever quoted back
_MAX_BLOCKS = 50
_SAFE_URL = re.compile(r"^https?://[^\s<>|]+$")
# Slack ids as the templates below may write them into markup: a user, a channel, a user group.
_USER_ID = re.compile(r"^[UW][A-Z0-9]+$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]+$")
_GROUP_ID = re.compile(r"^S[A-Z0-9]+$")
# The answer kinds a person may know better: the bot found nothing, or was told it is not its
# subject (product support). Small talk and empty questions are nothing to escalate.
ESCALATED_DECLINES = frozenset({"decline", "out-of-scope"})


@dataclass(frozen=True)
class Message:
    """A Slack message: Block Kit ``blocks`` and a plain ``text`` fallback (always set).

    ``text`` is Slack-safe (escaped) plain text; ``question``, ``entry_ids``, ``declined`` and
    ``score`` carry what the surface logs, never what it shows.
    """

    text: str
    blocks: list[dict[str, Any]]
    question: str | None = None
    entry_ids: tuple[str, ...] = ()
    declined: bool = False
    score: float | None = None
    # The escalation key the message offers "Ask the experts" for (now, or after a 👎).
    escalation: str | None = None
    feedback_element: bool = False  # does it carry Slack's feedback element?

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``chat_postMessage``, ``say``, ``respond`` and friends."""
        return {"text": self.text, "blocks": self.blocks}


def escape(text: str) -> str:
    """Escape Slack's three control characters so typed text is shown, never interpreted."""
    return html.escape(text, quote=False)


def echo(text: str, limit: int = _ECHO_CHARS) -> str:
    """A user's text, shortened and escaped, for quoting it back."""
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return escape(text)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _render(blocks: Iterable[Block]) -> list[dict[str, Any]]:
    # to_dict() runs slack_sdk's validators: a block over Slack's limits fails here, not in Slack.
    return [b.to_dict() for b in blocks]


def _mrkdwn(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=_clip(text, _SECTION_TEXT)))


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=_clip(text, _SECTION_TEXT))])


def _header(text: str) -> HeaderBlock:
    return HeaderBlock(text=PlainTextObject(text=_clip(text, _HEADER_TEXT), emoji=True))


def _button(text: str, action_id: str, value: str, style: str | None = None) -> ButtonElement:
    return ButtonElement(
        text=PlainTextObject(text=_clip(text, _BUTTON_TEXT), emoji=True),
        action_id=action_id,
        value=value[:_BUTTON_VALUE],
        style=style,
    )


def _link(url: str | None, label: str) -> str:
    """``<url|label>`` when the URL is a plain http(s) address, else the escaped label alone."""
    if url and _SAFE_URL.match(url):
        return f"<{url.replace('&', '&amp;')}|{escape(label)}>"
    return escape(label)


def _source_line(source: Source) -> str:
    line = f"{_link(source.url, source.title)} — {escape(source.publisher)}, "
    line += format_partial_date(source.date)
    if source.status == "unconfirmed":
        line += " · _unconfirmed_"
    return line


def _source_plain(source: Source) -> str:
    text = f"{source.title} ({source.publisher}, {format_partial_date(source.date)})"
    if source.status == "unconfirmed":
        text += " [unconfirmed]"
    if source.url:
        text += f" {source.url}"
    return escape(text)


@dataclass(frozen=True)
class FeedbackValue:
    """What a 👍/👎 carries back. ``vote`` is in the value on Slack's feedback element (one
    action for both); ``escalation`` names the question for "Ask the experts" after a 👎. Like
    any button value it comes from the client: nothing in it is trusted."""

    question: str
    entry_ids: tuple[str, ...]
    vote: Vote | None = None
    escalation: str | None = None


def feedback_value(
    question: str,
    entry_ids: Sequence[str],
    *,
    vote: str | None = None,
    escalation: str | None = None,
) -> str:
    """A 👍/👎 value: the question, the answering entry ids and the rest, as JSON."""
    extra: dict[str, str] = {}
    if vote:
        extra["v"] = vote
    if escalation:
        extra["m"] = escalation[:200]
    ids, q = list(entry_ids), question[:1500]
    value = json.dumps({"q": q, "e": ids, **extra}, ensure_ascii=False)
    while len(value) > _BUTTON_VALUE:  # JSON escapes can lengthen the question
        q = q[:-100]
        value = json.dumps({"q": q, "e": ids, **extra}, ensure_ascii=False)
    return value


def parse_feedback_value(value: str) -> FeedbackValue:
    """The inverse of ``feedback_value``; tolerant of a value that is not ours."""
    try:
        data = json.loads(value)
        key = data.get("m")
        votes: dict[object, Vote] = {"up": "up", "down": "down"}
        vote = votes.get(data.get("v"))
        return FeedbackValue(
            question=str(data.get("q", "")),
            entry_ids=tuple(str(e) for e in data.get("e", [])),
            vote=vote,
            escalation=key if isinstance(key, str) and key else None,
        )
    except (ValueError, AttributeError, TypeError):
        return FeedbackValue("", ())


def _message(
    reply: Reply, blocks: list[Block], text: str, escalation: str | None = None
) -> Message:
    record = logged(reply)
    rendered = _render(blocks)
    element = any(b["type"] == "context_actions" for b in rendered)
    if record is None:
        return Message(text=text, blocks=rendered, escalation=escalation)
    return Message(
        text=text,
        blocks=rendered,
        question=record.question,
        entry_ids=record.entry_ids,
        declined=record.declined,
        score=record.score,
        escalation=escalation,
        feedback_element=element,
    )


def _examples_line(examples: Sequence[str]) -> str:
    return " / ".join(f"“{escape(q)}”" for q in examples)


def escalation_offered(reply: Reply) -> bool:
    """Could the asker send this to the experts: a decline at once, an answer after a 👎."""
    return isinstance(reply, AnswerReply) and (
        reply.answer.answered or reply.answer.kind in ESCALATED_DECLINES
    )


def _ask_experts_block(key: str) -> ActionsBlock:
    return ActionsBlock(
        block_id="experts", elements=[_button("🙋 Ask the experts", ASK_EXPERTS, key)]
    )


def _feedback_blocks(
    answer_question: str, entry_ids: Sequence[str], escalation: str | None, element: bool
) -> tuple[Block | None, list[ButtonElement]]:
    """Slack's feedback element (its own block), or the classic buttons to put in a row."""
    if element:
        up = feedback_value(answer_question, entry_ids, vote="up", escalation=escalation)
        down = feedback_value(answer_question, entry_ids, vote="down", escalation=escalation)
        return ContextActionsBlock(
            block_id="feedback_element",
            elements=[
                FeedbackButtonsElement(
                    action_id=FEEDBACK,
                    positive_button=FeedbackButtonObject(
                        text="👍", value=up, accessibility_label="This answer helped"
                    ),
                    negative_button=FeedbackButtonObject(
                        text="👎", value=down, accessibility_label="This answer did not help"
                    ),
                )
            ],
        ), []
    value = feedback_value(answer_question, entry_ids, escalation=escalation)
    return None, [
        _button("👍 Helpful", FEEDBACK_UP, value),
        _button("👎 Not helpful", FEEDBACK_DOWN, value),
    ]


def _answer_blocks(
    reply: AnswerReply, escalation: str | None, feedback_element: bool
) -> tuple[list[Block], list[str]]:
    answer = reply.answer
    blocks: list[Block] = []
    lines: list[str] = []
    if reply.shared_by:
        blocks.append(
            _context(f"<@{reply.shared_by}> shared an answer to: “{echo(answer.question)}”")
        )
        lines.append(f"Shared answer to: “{echo(answer.question)}”")
    if answer.in_context and answer.topic:
        blocks.append(_context(f"↪ Following up on “{echo(answer.topic)}”"))
    pieces = [escape(text) + cite for text, cite in cited_parts(answer)]
    body = "\n• ".join(pieces)
    blocks.append(_mrkdwn(_emphasised(body, answer.emphasis)))
    lines.append(body)
    if answer.in_context and answer.topic:  # after the answer: notifications show it first
        lines.append(f"(Following up on “{echo(answer.topic)}”)")
    if answer.kind in ESCALATED_DECLINES:
        hint = f"Try `{DEADLINES}` for the key dates, or `{HELP}` for what I cover."
        if answer.examples:
            hint = f"For example: {_examples_line(answer.examples)}. " + hint
        if escalation:
            hint += " Or ask the people who know: the button sends your question to the experts."
        blocks.append(_context(hint))
        lines.append(hint.replace("`", ""))
        if escalation:
            blocks.append(_ask_experts_block(escalation))
    elif answer.kind == "smalltalk" and answer.examples:
        examples = "\n".join(f"• “{escape(q)}”" for q in answer.examples)
        blocks.append(_mrkdwn("*For example*\n" + examples))
        lines.append("For example: " + _examples_line(answer.examples))
    if answer.sources:
        listed = [_source_line(s) for s in answer.sources]
        if answer.kind == "overview":
            listed = [f"[{i}] {line}" for i, line in enumerate(listed, 1)]
        blocks.append(_context("*Sources*\n" + "\n".join(listed)))
        lines.append("Sources: " + "; ".join(_source_plain(s) for s in answer.sources))
    follow_ups = list(answer.follow_ups)[:2]
    next_questions = [
        _button(f"↪ {f.question}", f"{FOLLOW_UP_PREFIX}{i}", f.question)
        for i, f in enumerate(follow_ups)
    ]
    if answer.alone_differs:
        # Read as a follow-up, while on its own it has another answer: one click asks it alone.
        next_questions.append(_button("Ask it on its own instead", ASK_ALONE, answer.question))
    if next_questions:
        blocks.append(ActionsBlock(block_id="follow_ups", elements=next_questions))
    if follow_ups:
        lines.append("Related: " + " / ".join(escape(f.question) for f in follow_ups))
    if answer.answered:
        element, buttons = _feedback_blocks(
            answer.question, answer.entry_ids, escalation, feedback_element
        )
        if reply.share:
            buttons.append(_button("Share in channel", SHARE_ANSWER, answer.question, "primary"))
        if buttons:
            blocks.append(ActionsBlock(block_id="feedback", elements=buttons))
        if element is not None:
            blocks.append(element)
    return blocks, lines


def _emphasised(body: str, sentences: Sequence[str]) -> str:
    """``body`` (escaped mrkdwn) with each of ``sentences`` in bold: what the question asked
    for ("when", "how many") stands out of the answer around it."""
    for sentence in sentences:
        shown = escape(sentence)
        if shown and not any(c in shown for c in "*_~`"):  # those would unbalance the markup
            body = body.replace(shown, f"*{shown}*", 1)
    return body


def _prompt_text(reply: PromptReply) -> str:
    how = f"Usage: `{reply.command} QUESTION`. " if reply.command else ""
    example = f", for example: “{escape(reply.examples[0])}”" if reply.examples else ""
    return (
        f"{how}Ask me anything about the 2024 US ban on Kaspersky software{example}. "
        f"`{HELP}` lists what I know."
    )


def _event_section(event: DatedEvent) -> str:
    text = f"*{escape(event.when)}* ({event.standing})\n*{escape(event.title)}*\n"
    text += escape(event.what)
    if event.sources:
        text += "\n_Source:_ " + "; ".join(_source_line(s) for s in event.sources[:2])
    return text


def _deadlines_blocks(reply: DeadlinesReply) -> tuple[list[Block], list[str]]:
    title = "Kaspersky ban: the key dates" if reply.scope == "key" else "Kaspersky ban timeline"
    # What the user typed goes only into mrkdwn (escaped), never into the plain_text header.
    blocks: list[Block] = [_header(title)]
    if not reply.events:
        text = (
            f"No date in the timeline mentions “{echo(reply.word, 80)}”. Try `{DEADLINES}` on "
            f"its own for the key dates, or `{DEADLINES} history` for all of them."
        )
        return [*blocks, _mrkdwn(text)], [text.replace("`", "")]
    if reply.scope == "match":
        blocks.append(_context(f"Dates that mention “{echo(reply.word, 80)}”"))
    shown = list(reply.events)[: _MAX_BLOCKS - 5]
    blocks += [_mrkdwn(_event_section(e)) for e in shown]
    lines = [escape(f"{e.when} ({e.standing}): {e.title}. {e.what}") for e in shown]
    if len(shown) < len(reply.events):
        blocks.append(
            _context(f"… and {len(reply.events) - len(shown)} more; add a word to narrow.")
        )
    if reply.hidden:
        more = (
            f"{reply.hidden} more dates, the 2017-2022 history among them: "
            f"`{DEADLINES} history`, or a word such as `{DEADLINES} lawsuit`."
        )
        blocks.append(_context(more))
        blocks.append(
            ActionsBlock(
                block_id="deadlines",
                elements=[_button("Show the full history", SHOW_HISTORY, "history")],
            )
        )
        lines.append(more.replace("`", ""))
    blocks.append(_context(f"Dates as of {reply.as_of.isoformat()}."))
    return blocks, lines


def _topic_lines(topics: Sequence[str]) -> str:
    return "\n".join(f"• {escape(t)}" for t in topics)


def _example_lines(examples: Sequence[str]) -> str:
    return "\n".join(f"• “{escape(q)}”" for q in examples)


def _how_to_ask() -> str:
    commands = "\n".join(
        f"• `{name}{' ' + args if args else ''}`: {what}" for name, args, what in COMMANDS
    )
    return (
        "Mention me in a channel (I answer in the thread, and keep answering follow-ups there, "
        "no mention needed), or send me a direct message.\n" + commands
    )


def _help_blocks(reply: HelpReply) -> tuple[list[Block], list[str]]:
    blocks: list[Block] = [
        _header("What I know about the 2024 US ban on Kaspersky software"),
        _mrkdwn("*I can answer questions about*\n" + _topic_lines(reply.topics)),
        _mrkdwn("*For example*\n" + _example_lines(reply.examples)),
        _mrkdwn("*How to ask*\n" + _how_to_ask()),
    ]
    text = (
        "I answer questions about the 2024 US ban on Kaspersky software: "
        + "; ".join(escape(t) for t in reply.topics)
        + f". Commands: {ASK} QUESTION, {DEADLINES} [word], {HELP}."
    )
    return blocks, [text]


def slack_message(
    reply: Reply, *, ask_experts: str | None = None, feedback_element: bool = True
) -> Message:
    """Any reply as a Slack message: Block Kit and its plain-text fallback.

    ``ask_experts`` is the escalation key of the question (when the experts can be asked):
    a decline gets the "Ask the experts" button, an answer's 👎 carries the key, and a 👎's
    thanks gets the button. ``feedback_element=False`` gives classic 👍/👎 buttons instead of
    Slack's feedback element.
    """
    escalation = None
    if ask_experts and escalation_offered(reply):
        escalation = ask_experts
    if isinstance(reply, AnswerReply):
        blocks, lines = _answer_blocks(reply, escalation, feedback_element)
    elif isinstance(reply, PromptReply):
        text = _prompt_text(reply)
        blocks, lines = [_mrkdwn(text)], [text.replace("`", "")]
    elif isinstance(reply, DeadlinesReply):
        blocks, lines = _deadlines_blocks(reply)
    elif isinstance(reply, HelpReply):
        blocks, lines = _help_blocks(reply)
    else:
        text = escape(reply.text)
        block: Block = _context(text) if reply.kind == "feedback" else _mrkdwn(text)
        blocks, lines = [block], [text]
        if ask_experts and _thanks_for_a_down_vote(reply):
            escalation = ask_experts
            blocks.append(_mrkdwn("Would the experts know better? I can send them your question."))
            blocks.append(_ask_experts_block(ask_experts))
    return _message(reply, blocks, "\n".join(lines), escalation)


def _thanks_for_a_down_vote(reply: NoticeReply) -> bool:
    return reply.kind == "feedback" and reply.vote == "down"


def home_view(reply: HelpReply) -> dict[str, Any]:
    """The App Home tab: key deadlines against today, what the bot answers, how to ask."""
    deadlines = "\n".join(
        f"• *{escape(e.when)}* ({e.standing}): {escape(e.title)}" for e in reply.key_events
    )
    as_of = reply.as_of.isoformat() if reply.as_of else ""
    blocks: list[Block] = [
        _header("ban-bot: the 2024 US ban on Kaspersky software"),
        _mrkdwn("*Key deadlines*\n" + (deadlines or "No key deadlines in the knowledge set.")),
        _context(
            f"As of {as_of}. `{DEADLINES}` explains each date; `{DEADLINES} history` shows the "
            "full timeline, 2017 on."
        ),
        DividerBlock(),
        _mrkdwn("*What I can answer*\n" + _topic_lines(reply.topics)),
        _mrkdwn("*For example*\n" + _example_lines(reply.examples)),
        DividerBlock(),
        _mrkdwn("*How to ask*\n" + _how_to_ask()),
    ]
    return {"type": "home", "blocks": _render(blocks)}


# -- asking the experts ------------------------------------------------------------------------
# Slack-only messages (the experts' channel, notices about an escalation): built here so that
# everything a person typed is escaped in one place. Ids are written into markup only when they
# have the shape of a Slack id.


def _notice(text: str, *extra: Block) -> Message:
    return Message(text=text, blocks=_render([_mrkdwn(text), *extra]))


def _channel_ref(channel: str) -> str:
    if channel.startswith("D") or not _CHANNEL_ID.match(channel):
        return "in a direct message with me"
    return f"in <#{channel}>"


def experts_post(
    escalation: Escalation,
    *,
    asker: str,
    group: str | None,
    permalink: str | None,
) -> Message:
    """The question as posted in the experts' channel: the user group mentioned, who asked and
    where, the question quoted (escaped: no mass mention or ping survives), a link to it."""
    ping = f"<!subteam^{group}> " if group and _GROUP_ID.match(group) else ""
    who = f"<@{asker}>" if _USER_ID.match(asker) else "Someone"
    what = "I could not answer" if escalation.declined else "I answered, and they found unhelpful"
    head = f"{ping}{who} asked {_channel_ref(escalation.channel)} a question {what}:"
    quote = "> " + echo(escalation.question, 2800)
    notes = []
    if permalink:
        notes.append(_link(permalink, "Open the original message"))
    if not escalation.declined and escalation.entry_ids:
        notes.append(f"My answer came from `{escape(escalation.entry_ids[0])}`.")
    notes.append(
        "Reply in this thread (or in the original one): I keep the replies for my curators. "
        "Mark the reply that answers it with ✅, or with the button I show its author."
    )
    blocks: list[Block] = [_mrkdwn(head), _mrkdwn(quote), _context("\n".join(notes))]
    text = f"{ping}{who} asked a question {what}: “{echo(escalation.question)}”"
    return Message(text=text, blocks=_render(blocks))


def escalated_notice(experts_channel: str) -> Message:
    """What the asker is told, privately, once the experts were asked."""
    return _notice(
        f"I've asked the experts {_channel_ref(experts_channel)}. Their replies help my "
        "curators improve my answers, and when one of them is marked as the answer I'll post "
        "it here."
    )


def already_escalated_notice() -> Message:
    return _notice("That question was already sent to the experts: it goes to them only once.")


def not_the_asker_notice() -> Message:
    return _notice("Only the person who asked can send that question to the experts.")


def escalation_unknown_notice() -> Message:
    return _notice(
        "I can't send that question to the experts: it is not (or no longer) in my records."
    )


def reply_recorded_notice(reply_id: int, retention_days: int) -> Message:
    """What someone who replied in an escalated thread sees, privately, with the button that
    marks their reply as the answer."""
    button = _button("✅ Mark as the answer", MARK_ANSWER, str(reply_id), "primary")
    return _notice(
        f"Thanks: I've kept your reply for my curators (for {retention_days} days). If it "
        "answers the question, mark it, or add ✅ to it.",
        ActionsBlock(block_id="expert_reply", elements=[button]),
    )


def answer_marked_notice(first: bool) -> Message:
    if not first:
        return _notice("That reply is the marked answer now; the curators will see it.")
    return _notice(
        "Marked as the answer. My curators will see it in their report and can turn it into "
        "one of my answers once they have checked it against a source."
    )


def asker_cannot_mark_notice() -> Message:
    return _notice("The answer is marked by the people who answered, not by the one who asked.")


def reply_unknown_notice() -> Message:
    return _notice("I can't mark that as the answer: it is not (or no longer) in my records.")


def expert_answer_message(reply: ExpertReply) -> Message:
    """An answer the experts gave in their own thread, posted where the question was asked."""
    quote = "> " + echo(slack_to_plain(reply.text), 2800)
    note = (
        "From a person, not from my sources: my curators check it before it becomes one of "
        "my answers."
    )
    blocks: list[Block] = [_mrkdwn("*The experts answered your question:*"), _mrkdwn(quote)]
    blocks.append(_context(note))
    return Message(
        text=f"The experts answered your question: “{echo(slack_to_plain(reply.text))}”",
        blocks=_render(blocks),
    )


# Slack shows at most four suggested prompts; a prompt's title is what the button says.
_MAX_PROMPTS = 4
_PROMPT_TITLE = 75


def suggested_prompts(examples: Sequence[str]) -> list[dict[str, str]]:
    """Example questions as ``assistant.threads.setSuggestedPrompts`` takes them: plain text,
    since Slack shows a prompt's title as it is and sends its message as the user's."""
    return [{"title": _clip(q, _PROMPT_TITLE), "message": q} for q in list(examples)[:_MAX_PROMPTS]]
