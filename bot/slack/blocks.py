"""Block Kit builders: every message ban-bot sends, as blocks plus a plain ``text`` fallback.

Anything that did not come from ban-bot's own templates (what a user typed, and the knowledge
text too) goes through ``escape`` so it can never become ``<!channel>``, a mention or a link.

Usage::

    message = answer_message(answer, question="when do updates stop?", share=True)
    client.chat_postMessage(channel=channel, **message.as_kwargs())
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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

from bot.knowledge import CATEGORY_LABELS
from bot.timeline import MONTHS, format_date

if TYPE_CHECKING:
    import datetime as dt

    from bot.answer import Answer
    from bot.knowledge import Source, TimelineEvent
    from bot.timeline import Timeline

# Action ids: the listeners in bot/slack/listeners/actions.py match on these.
FEEDBACK_UP = "feedback_up"
FEEDBACK_DOWN = "feedback_down"
SHARE_ANSWER = "share_answer"
FOLLOW_UP_PREFIX = "follow_up_"  # follow_up_0, follow_up_1 (ids must differ within a block)
FOLLOW_UP_PATTERN = re.compile(rf"^{FOLLOW_UP_PREFIX}\d+$")

# The slash commands, as slack-manifest.yaml declares them: name, usage hint, what it does.
ASK, DEADLINES, HELP = "/ban-ask", "/ban-deadlines", "/ban-help"
COMMANDS = (
    (ASK, "QUESTION", "a private answer, with a button to share it in the channel"),
    (DEADLINES, "[word]", "the timeline and where each date stands today"),
    (HELP, "", "what I know, example questions and these commands"),
)

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
    """A reply on any surface: Block Kit ``blocks`` and a plain ``text`` fallback (always set).

    ``text`` is Slack-safe (escaped) plain text; ``question`` and ``entry_ids`` carry what the
    surface logs, never what it shows.
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


def source_date(date: str) -> str:
    """A source's ``YYYY[-MM[-DD]]`` date as people write it: "June 24, 2024", "June 2024"."""
    parts = date.split("-")
    try:
        if len(parts) == 3:
            return f"{MONTHS[int(parts[1]) - 1]} {int(parts[2])}, {parts[0]}"
        if len(parts) == 2:
            return f"{MONTHS[int(parts[1]) - 1]} {parts[0]}"
    except (ValueError, IndexError):
        pass
    return date


def _link(url: str | None, label: str) -> str:
    """``<url|label>`` when the URL is a plain http(s) address, else the escaped label alone."""
    if url and _SAFE_URL.match(url):
        return f"<{url.replace('&', '&amp;')}|{escape(label)}>"
    return escape(label)


def _source_line(source: Source) -> str:
    line = f"{_link(source.url, source.title)} — {escape(source.publisher)}, "
    line += source_date(source.date)
    if source.status == "unconfirmed":
        line += " · _unconfirmed_"
    return line


def _source_plain(source: Source) -> str:
    text = f"{source.title} ({source.publisher}, {source_date(source.date)})"
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


def answer_message(
    answer: Answer, *, question: str, share: bool = False, shared_by: str | None = None
) -> Message:
    """The answer, its sources, up to two follow-ups, 👍/👎 and (for /ban-ask) a share button.

    ``shared_by`` is a Slack user id, set when someone shares a private answer in the channel.
    """
    blocks: list[Block] = []
    lines: list[str] = []
    if shared_by:
        intro = f"<@{shared_by}> shared an answer to: “{echo(question)}”"
        blocks.append(_context(intro))
        lines.append(f"Shared answer to: “{echo(question)}”")
    blocks.append(_mrkdwn(escape(answer.text)))
    lines.append(escape(answer.text))
    if answer.sources:
        blocks.append(_context("*Sources*\n" + "\n".join(_source_line(s) for s in answer.sources)))
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
    value = feedback_value(question, answer.entry_ids)
    buttons = [
        _button("👍 Helpful", FEEDBACK_UP, value),
        _button("👎 Not helpful", FEEDBACK_DOWN, value),
    ]
    if share:
        buttons.append(_button("Share in channel", SHARE_ANSWER, question, style="primary"))
    blocks.append(ActionsBlock(block_id="feedback", elements=buttons))
    return Message(
        text="\n".join(lines),
        blocks=_render(blocks),
        question=question,
        entry_ids=tuple(answer.entry_ids),
        declined=answer.declined,
        score=answer.score,
    )


def prompt_message(*, command: str | None = None) -> Message:
    """What an empty question gets: how to ask, with an example."""
    how = f"Usage: `{command} QUESTION`. " if command else ""
    text = (
        f"{how}Ask me anything about the 2024 US ban on Kaspersky software, for example: "
        "“When do Kaspersky updates stop?” `/ban-help` lists what I know."
    )
    return Message(text=text.replace("`", ""), blocks=_render([_mrkdwn(text)]))


def _event_section(event: TimelineEvent, timeline: Timeline, now: dt.datetime) -> str:
    standing = timeline.standing(event, now)
    text = f"*{escape(format_date(event))}* ({standing})\n*{escape(event.title)}*\n"
    text += escape(event.what)
    if event.sources:
        text += "\n_Source:_ " + "; ".join(_source_line(s) for s in event.sources[:2])
    return text


def _event_plain(event: TimelineEvent, timeline: Timeline, now: dt.datetime) -> str:
    return escape(
        f"{format_date(event)} ({timeline.standing(event, now)}): {event.title}. {event.what}"
    )


def deadlines_message(
    events: Sequence[TimelineEvent], *, timeline: Timeline, now: dt.datetime, word: str = ""
) -> Message:
    """The timeline (or the events matching ``word``) with where each date stands against now."""
    word = " ".join(word.split())
    # What the user typed goes only into mrkdwn (escaped), never into the plain_text header.
    blocks: list[Block] = [_header("Kaspersky ban timeline")]
    if not events:
        text = (
            f"No date in the timeline mentions “{echo(word, 80)}”. "
            "Try `/ban-deadlines` on its own to see them all."
        )
        return Message(text=text.replace("`", ""), blocks=_render([*blocks, _mrkdwn(text)]))
    if word:
        blocks.append(_context(f"Dates that mention “{echo(word, 80)}”"))
    shown = list(events)[: _MAX_BLOCKS - 4]
    blocks += [_mrkdwn(_event_section(e, timeline, now)) for e in shown]
    if len(shown) < len(events):
        blocks.append(_context(f"… and {len(events) - len(shown)} more; add a word to narrow."))
    blocks.append(_context(f"Dates as of {now.date().isoformat()}."))
    lines = [_event_plain(e, timeline, now) for e in shown]
    return Message(text="\n".join(lines), blocks=_render(blocks))


def _category_lines(categories: Sequence[str]) -> str:
    return "\n".join(f"• {escape(CATEGORY_LABELS.get(c, c))}" for c in categories)


def _example_lines(examples: Sequence[str]) -> str:
    return "\n".join(f"• “{escape(q)}”" for q in examples)


def _how_to_ask() -> str:
    commands = "\n".join(
        f"• `{name}{' ' + args if args else ''}`: {what}" for name, args, what in COMMANDS
    )
    return (
        "Mention me in a channel (I answer in the thread, and keep answering follow-ups there), "
        "or send me a direct message.\n" + commands
    )


def help_message(*, categories: Sequence[str], examples: Sequence[str]) -> Message:
    """What the bot knows (its categories), example questions, and the commands."""
    blocks: list[Block] = [
        _header("What I know about the 2024 US ban on Kaspersky software"),
        _mrkdwn("*I can answer questions about*\n" + _category_lines(categories)),
        _mrkdwn("*For example*\n" + _example_lines(examples)),
        _mrkdwn("*How to ask*\n" + _how_to_ask()),
    ]
    text = (
        "I answer questions about the 2024 US ban on Kaspersky software: "
        + ", ".join(escape(CATEGORY_LABELS.get(c, c)) for c in categories)
        + ". Commands: /ban-ask QUESTION, /ban-deadlines [word], /ban-help."
    )
    return Message(text=text, blocks=_render(blocks))


def home_view(
    *,
    key_events: Sequence[TimelineEvent],
    timeline: Timeline,
    now: dt.datetime,
    categories: Sequence[str],
    examples: Sequence[str],
) -> dict[str, Any]:
    """The App Home tab: key deadlines against today, what the bot answers, how to ask."""
    deadlines = "\n".join(
        f"• *{escape(format_date(e))}* ({timeline.standing(e, now)}): {escape(e.title)}"
        for e in key_events
    )
    blocks: list[Block] = [
        _header("ban-bot: the 2024 US ban on Kaspersky software"),
        _mrkdwn("*Key deadlines*\n" + (deadlines or "No key deadlines in the knowledge set.")),
        _context(f"As of {now.date().isoformat()}. `/ban-deadlines` shows the full timeline."),
        DividerBlock(),
        _mrkdwn("*What I can answer*\n" + _category_lines(categories)),
        _mrkdwn("*For example*\n" + _example_lines(examples)),
        DividerBlock(),
        _mrkdwn("*How to ask*\n" + _how_to_ask()),
    ]
    return {"type": "home", "blocks": _render(blocks)}


def error_message(error_id: str) -> Message:
    """The short apology a user sees on an internal error; the detail is in the log."""
    text = (
        "Sorry, something went wrong on my side and I could not answer that. "
        f"If it keeps happening, tell the people who run me: error id {error_id}."
    )
    return Message(text=text, blocks=_render([_mrkdwn(text)]))


def busy_message() -> Message:
    """What a user is told when every answering thread is busy and the queue is full."""
    text = (
        "Sorry, I'm answering a lot of questions right now and could not take this one. "
        "Please try again in a minute."
    )
    return Message(text=text, blocks=_render([_mrkdwn(text)]))


def rate_limited_message(per_minute: int) -> Message:
    """What a user over the per-user rate limit is told (once per minute)."""
    text = (
        f"You have asked me more than {per_minute} questions in the last minute, which is as many "
        "as I answer for one person. Please wait a minute and ask again."
    )
    return Message(text=text, blocks=_render([_mrkdwn(text)]))


def feedback_thanks(vote: str) -> Message:
    """The visible acknowledgement of a 👍/👎 click."""
    if vote == "up":
        text = "Thanks for the feedback: glad it helped. 👍"
    else:
        text = "Thanks for the feedback: noted, it helps improve the answers. 👎"
    return Message(text=text, blocks=_render([_context(text)]))
