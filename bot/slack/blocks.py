"""Block Kit rendering: every ``Reply`` (bot/reply.py) as blocks plus a plain ``text`` fallback.

Anything that did not come from ban-bot's own templates (what a user typed, and the knowledge
text too) goes through ``escape`` so it can never become ``<!channel>``, a mention or a link.
This module formats; it never decides what the answer is.

Usage::

    message = slack_message(question_reply(engine, "when do updates stop?"))
    client.chat_postMessage(channel=channel, **message.as_kwargs())
    client.views_publish(user_id=user, view=home_view(help_reply(engine)))
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
    ContextBlock,
    DividerBlock,
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
    PromptReply,
    Reply,
    logged,
)
from bot.timeline import format_partial_date

__all__ = [
    "ASK",
    "COMMANDS",
    "DEADLINES",
    "HELP",
    "Message",
    "echo",
    "escape",
    "home_view",
    "slack_message",
]

# Action ids: the listeners in bot/slack/listeners/actions.py match on these.
FEEDBACK_UP = "feedback_up"
FEEDBACK_DOWN = "feedback_down"
SHARE_ANSWER = "share_answer"
SHOW_HISTORY = "deadlines_history"
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


def feedback_value(question: str, entry_ids: Sequence[str]) -> str:
    """What a 👍/👎 button carries back: the question and the answering entry ids (JSON)."""
    ids, q = list(entry_ids), question[:1500]
    value = json.dumps({"q": q, "e": ids}, ensure_ascii=False)
    while len(value) > _BUTTON_VALUE:  # JSON escapes can lengthen the question
        q = q[:-100]
        value = json.dumps({"q": q, "e": ids}, ensure_ascii=False)
    return value


def parse_feedback_value(value: str) -> tuple[str, tuple[str, ...]]:
    """The inverse of ``feedback_value``; tolerant of a value that is not ours."""
    try:
        data = json.loads(value)
        return str(data.get("q", "")), tuple(str(e) for e in data.get("e", []))
    except (ValueError, AttributeError, TypeError):
        return "", ()


def _message(reply: Reply, blocks: list[Block], text: str) -> Message:
    record = logged(reply)
    if record is None:
        return Message(text=text, blocks=_render(blocks))
    return Message(
        text=text,
        blocks=_render(blocks),
        question=record.question,
        entry_ids=record.entry_ids,
        declined=record.declined,
        score=record.score,
    )


def _examples_line(examples: Sequence[str]) -> str:
    return " / ".join(f"“{escape(q)}”" for q in examples)


def _answer_blocks(reply: AnswerReply) -> tuple[list[Block], list[str]]:
    answer = reply.answer
    blocks: list[Block] = []
    lines: list[str] = []
    if reply.shared_by:
        blocks.append(
            _context(f"<@{reply.shared_by}> shared an answer to: “{echo(answer.question)}”")
        )
        lines.append(f"Shared answer to: “{echo(answer.question)}”")
    numbered = answer.kind == "overview"
    number = {s: i for i, s in enumerate(answer.sources, 1)}

    def cite(sources: Sequence[Source]) -> str:
        return " " + "".join(f"[{number[s]}]" for s in sources) if numbered and sources else ""

    if answer.parts:
        body = escape(answer.parts[0].text) + cite(answer.parts[0].sources)
        body += "".join(f"\n• {escape(p.text)}{cite(p.sources)}" for p in answer.parts[1:])
    else:
        body = escape(answer.text)
    blocks.append(_mrkdwn(body))
    lines.append(body)
    if answer.kind == "decline" or answer.kind == "out-of-scope":
        hint = f"Try `{DEADLINES}` for the key dates, or `{HELP}` for what I cover."
        if answer.examples:
            hint = f"For example: {_examples_line(answer.examples)}. " + hint
        blocks.append(_context(hint))
        lines.append(hint.replace("`", ""))
    elif answer.kind == "smalltalk" and answer.examples:
        examples = "\n".join(f"• “{escape(q)}”" for q in answer.examples)
        blocks.append(_mrkdwn("*For example*\n" + examples))
        lines.append("For example: " + _examples_line(answer.examples))
    if answer.sources:
        listed = [_source_line(s) for s in answer.sources]
        if numbered:
            listed = [f"[{i}] {line}" for i, line in enumerate(listed, 1)]
        blocks.append(_context("*Sources*\n" + "\n".join(listed)))
        lines.append("Sources: " + "; ".join(_source_plain(s) for s in answer.sources))
    follow_ups = list(answer.follow_ups)[:2]
    if follow_ups:
        blocks.append(
            ActionsBlock(
                block_id="follow_ups",
                elements=[
                    _button(f"↪ {f.question}", f"{FOLLOW_UP_PREFIX}{i}", f.question)
                    for i, f in enumerate(follow_ups)
                ],
            )
        )
        lines.append("Related: " + " / ".join(escape(f.question) for f in follow_ups))
    if answer.answered:
        value = feedback_value(answer.question, answer.entry_ids)
        buttons = [
            _button("👍 Helpful", FEEDBACK_UP, value),
            _button("👎 Not helpful", FEEDBACK_DOWN, value),
        ]
        if reply.share:
            buttons.append(_button("Share in channel", SHARE_ANSWER, answer.question, "primary"))
        blocks.append(ActionsBlock(block_id="feedback", elements=buttons))
    return blocks, lines


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


def slack_message(reply: Reply) -> Message:
    """Any reply as a Slack message: Block Kit and its plain-text fallback."""
    if isinstance(reply, AnswerReply):
        blocks, lines = _answer_blocks(reply)
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
    return _message(reply, blocks, "\n".join(lines))


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
