"""Plain-text rendering of a ``Reply`` (bot/reply.py): one renderer for the local chat and the
CLI, so ``ban-bot ask`` and ``ban-bot chat`` show an answer the same way.

Usage::

    print(render_text(question_reply(engine, "when do updates stop?")))
    print(render_text(reply, commands=CLI_COMMANDS))   # hints name `ban-bot deadlines`
"""

from __future__ import annotations

from collections.abc import Sequence

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
    cited_parts,
)
from bot.timeline import format_partial_date

# How each surface spells the deadlines and help commands in its hints.
CHAT_COMMANDS = {"ask": ASK, "deadlines": DEADLINES, "help": HELP}
CLI_COMMANDS = {"ask": "ban-bot ask", "deadlines": "ban-bot deadlines", "help": "ban-bot --help"}
RULE_WIDTH = 78
_RETYPE_CHARS = 80


def source_text(source: Source) -> str:
    """A source as one line: "Title, Publisher, June 24, 2024 [unconfirmed] https://..."."""
    text = f"{source.title}, {source.publisher}, {format_partial_date(source.date)}"
    if source.status == "unconfirmed":
        text += " [unconfirmed]"
    if source.url:
        text += f" {source.url}"
    return text


def _examples(examples: Sequence[str]) -> list[str]:
    return [f"  • “{q}”" for q in examples]


def _answer(reply: AnswerReply, commands: dict[str, str]) -> list[str]:
    answer = reply.answer
    lines: list[str] = []
    if reply.shared_by:
        lines.append(f"Shared answer to: “{answer.question}”")
    if answer.in_context and answer.topic:
        lines.append(f"↪ Following up on “{answer.topic}”")
    (first, cite), *points = cited_parts(answer)
    lines.append(first + cite)
    lines += [f"  • {text}{cite}" for text, cite in points]
    numbered = answer.kind == "overview"
    if answer.kind in ("decline", "out-of-scope"):
        if answer.examples:
            lines.append("For example: " + " / ".join(f"“{q}”" for q in answer.examples))
        lines.append(
            f"Try {commands['deadlines']} for the key dates, or {commands['help']} for what I cover."
        )
    elif answer.kind == "smalltalk" and answer.examples:
        lines += ["For example:", *_examples(answer.examples)]
    if answer.sources:
        lines.append("Sources:")
        for i, s in enumerate(answer.sources, 1):
            lines.append(f"  [{i}] {source_text(s)}" if numbered else f"  - {source_text(s)}")
    if answer.follow_ups:
        lines += [f"  ↪ you could also ask: {f.question}" for f in answer.follow_ups[:2]]
    if answer.alone_differs:
        # The question itself where it is short enough to retype, else a placeholder.
        asked = answer.question if len(answer.question) <= _RETYPE_CHARS else "QUESTION"
        lines.append(f"Not what you meant? {commands['ask']} {asked} asks it on its own.")
    return lines


def _event(event: DatedEvent) -> list[str]:
    mark = "*" if event.key else " "
    return [f"{mark} {event.when} ({event.standing}): {event.title}", f"    {event.what}"]


def _deadlines(reply: DeadlinesReply, commands: dict[str, str]) -> list[str]:
    if not reply.events:
        return [
            f"No date in the timeline mentions “{reply.word}”. Try {commands['deadlines']} on its "
            f"own for the key dates, or {commands['deadlines']} history for all of them."
        ]
    title = "Kaspersky ban: the key dates" if reply.scope == "key" else "Kaspersky ban timeline"
    if reply.scope == "match":
        title += f" (dates that mention “{reply.word}”)"
    lines = [title, "=" * min(len(title), RULE_WIDTH)]
    for e in reply.events:
        lines += _event(e)
    if reply.hidden:
        lines.append(
            f"{reply.hidden} more dates, the 2017-2022 history among them: "
            f"{commands['deadlines']} history, or a word such as {commands['deadlines']} lawsuit."
        )
    if any(e.key for e in reply.events) and reply.scope != "key":
        lines.append("* = a key deadline")
    lines.append(f"Dates as of {reply.as_of.isoformat()}.")
    return lines


def _help(reply: HelpReply, commands: dict[str, str]) -> list[str]:
    title = "What I know about the 2024 US ban on Kaspersky software"
    lines = [title, "=" * min(len(title), RULE_WIDTH), "I can answer questions about:"]
    lines += [f"  • {t}" for t in reply.topics]
    lines += ["For example:", *_examples(reply.examples)]
    if commands is CHAT_COMMANDS:
        lines.append("Commands:")
        lines += [f"  {name}{' ' + args if args else ''}: {what}" for name, args, what in COMMANDS]
    return lines


# How a terminal sets off the sentences an answer emphasises: ANSI bold (only on a terminal).
BOLD = ("\033[1m", "\033[0m")


def render_text(
    reply: Reply, *, commands: dict[str, str] = CHAT_COMMANDS, bold: tuple[str, str] | None = None
) -> str:
    """A reply as terminal text; ``commands`` says how hints name the deadlines and help, and
    ``bold`` (``BOLD`` on a terminal) how the sentences an answer emphasises are set off."""
    if isinstance(reply, AnswerReply):
        lines = _answer(reply, commands)
        if bold is not None and reply.answer.emphasis:
            text = "\n".join(lines)
            for sentence in reply.answer.emphasis:
                text = text.replace(sentence, f"{bold[0]}{sentence}{bold[1]}", 1)
            lines = [text]
    elif isinstance(reply, PromptReply):
        how = f"Usage: {reply.command} QUESTION. " if reply.command else ""
        example = f", for example: “{reply.examples[0]}”" if reply.examples else ""
        lines = [
            f"{how}Ask me anything about the 2024 US ban on Kaspersky software{example}. "
            f"{commands['help']} lists what I know."
        ]
    elif isinstance(reply, DeadlinesReply):
        lines = _deadlines(reply, commands)
    elif isinstance(reply, HelpReply):
        lines = _help(reply, commands)
    else:
        lines = [reply.text]
    return "\n".join(lines)


__all__ = ["BOLD", "CHAT_COMMANDS", "CLI_COMMANDS", "render_text", "source_text"]
