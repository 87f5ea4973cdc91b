"""Surface-neutral handlers: every surface (Slack events, slash commands, App Home, the local
chat, the CLI) calls these. They ask the engine and return a ``Reply``; they never decide an
answer, and they never format one (``bot/slack/blocks.py`` and ``bot/render.py`` do).

Usage::

    engine = Engine.load(settings)
    reply = question_reply(engine, "<@U123> when do updates stop?")
    print(render_text(reply))
    reply = converse(engine, conversations, "C1:1712.0001", "why?", now=now)  # with context
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.knowledge import CATEGORY_LABELS
from bot.reply import (
    ASK,
    DEADLINES,
    HELP,
    AnswerReply,
    DatedEvent,
    DeadlinesReply,
    HelpReply,
    NoticeReply,
    PromptReply,
    Reply,
)
from bot.text import clean_question
from bot.timeline import Timeline, format_date

if TYPE_CHECKING:
    from bot.answer import Engine
    from bot.knowledge import TimelineEvent
    from bot.turns import Conversations, Turn

__all__ = [
    "ask_reply",
    "busy_notice",
    "converse",
    "deadlines_reply",
    "error_notice",
    "feedback_notice",
    "help_reply",
    "new_error_id",
    "question_reply",
    "rate_limited_notice",
    "run_command",
    "shared_reply",
]

_EXAMPLES = 4  # the engine's picks: one each of deadline, scope, alternative, reason


def question_reply(engine: Engine, text: str, context: Sequence[Turn] = ()) -> Reply:
    """Answer a question typed in a mention, a DM, a thread or the local chat; ``context`` is
    the conversation so far (oldest first)."""
    answer = engine.answer(text, context)
    if answer.kind == "empty":
        return PromptReply(examples=answer.examples)
    return AnswerReply(answer)


def converse(
    engine: Engine,
    conversations: Conversations,
    key: str,
    text: str,
    *,
    now: dt.datetime,
    gap: dt.timedelta | None = None,
    user_id: str | None = None,
    alone: bool = False,
) -> Reply:
    """Answer ``text`` in the conversation ``key`` (a thread, a DM, the chat session) and
    record the turn, so that the next follow-up is read in its context. With ``gap`` (DMs), the
    turns before a quiet gap that long are not context any more. With ``alone`` ("Ask it on its
    own instead"), the question is read without the context, and its turn is still recorded."""
    context = () if alone else conversations.context(key, now=now, gap=gap)
    reply = question_reply(engine, text, context)
    if isinstance(reply, AnswerReply):
        conversations.record(key, reply.answer.turn, now=now, user_id=user_id)
    return reply


def ask_reply(engine: Engine, text: str) -> Reply:
    """``/ban-ask QUESTION``: a private answer with a "Share in channel" button; one question,
    no context."""
    answer = engine.answer(text)
    if answer.kind == "empty":
        return PromptReply(examples=answer.examples, command=ASK)
    return AnswerReply(answer, share=answer.answered)


def shared_reply(engine: Engine, question: str, user_id: str) -> Reply:
    """The answer to a ``/ban-ask`` question, as posted when its asker shares it."""
    answer = engine.answer(question)
    if answer.kind == "empty":
        return PromptReply(examples=answer.examples)
    return AnswerReply(answer, shared_by=user_id)


def dated(
    timeline: Timeline, now: dt.datetime, events: Sequence[TimelineEvent]
) -> tuple[DatedEvent, ...]:
    """Timeline events as shown: written-out dates and where each stands against ``now``."""
    return tuple(
        DatedEvent(
            when=format_date(e),
            standing=timeline.standing(e, now),
            title=e.title,
            what=e.what,
            sources=e.sources,
            key=e.key,
        )
        for e in events
    )


def deadlines_reply(
    timeline: Timeline, now: dt.datetime, word: str | None = None
) -> DeadlinesReply:
    """``/ban-deadlines [word]``: the ban's key deadlines, all dates (``history``), or the dates
    that mention ``word``, each against ``now``."""
    selection = timeline.select(clean_question(word))
    return DeadlinesReply(
        events=dated(timeline, now, selection.events),
        scope=selection.scope,
        as_of=now.date(),
        word=selection.word,
        hidden=selection.hidden,
    )


def help_reply(engine: Engine) -> HelpReply:
    """``/ban-help`` and App Home: what the bot covers, example questions, the key deadlines."""
    timeline, now = engine.timeline, engine.clock()
    return HelpReply(
        topics=tuple(CATEGORY_LABELS[c] for c in engine.knowledge.categories),
        examples=tuple(engine.example_questions(_EXAMPLES)),
        key_events=dated(timeline, now, timeline.key_events),
        as_of=now.date(),
    )


def run_command(engine: Engine, command: str, text: str = "") -> Reply:
    """Run a slash command by name (``/ban-ask``, ``/ban-deadlines``, ``/ban-help``), as the
    local chat does; raises ``KeyError`` for any other name."""
    if command == ASK:
        return ask_reply(engine, text)
    if command == DEADLINES:
        return deadlines_reply(engine.timeline, engine.clock(), text)
    if command == HELP:
        return help_reply(engine)
    raise KeyError(command)


def new_error_id() -> str:
    """A short id that ties a user's apology to the traceback in the log."""
    return secrets.token_hex(4)


def error_notice(error_id: str) -> NoticeReply:
    """The short apology with an error id; never the exception text."""
    return NoticeReply(
        "error",
        "Sorry, something went wrong on my side and I could not answer that. "
        f"If it keeps happening, tell the people who run me: error id {error_id}.",
        error_id=error_id,
    )


def busy_notice() -> NoticeReply:
    """What a user is told when every answering thread is busy and the queue is full."""
    return NoticeReply(
        "busy",
        "Sorry, I'm answering a lot of questions right now and could not take this one. "
        "Please try again in a minute.",
    )


def rate_limited_notice(per_minute: int) -> NoticeReply:
    """What a user over the per-user rate limit is told (once per minute)."""
    return NoticeReply(
        "rate-limited",
        f"You have asked me more than {per_minute} questions in the last minute, which is as "
        "many as I answer for one person. Please wait a minute and ask again.",
    )


def feedback_notice(vote: str) -> NoticeReply:
    """The visible acknowledgement of a 👍/👎 click."""
    if vote == "up":
        text = "Thanks for the feedback: glad it helped. 👍"
    else:
        text = "Thanks for the feedback: noted, it helps improve the answers. 👎"
    return NoticeReply("feedback", text, vote=vote)
