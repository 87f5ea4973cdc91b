"""Surface-neutral handlers: every surface (Slack events, slash commands, App Home, the local
chat) calls these. They clean the input, ask the engine and format; they never decide an answer.

Usage::

    engine = Engine.load(settings)
    message = question_message(engine, "<@U123> when do updates stop?")
    print(message.text)                      # plain fallback; message.blocks is Block Kit
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from bot.slack import blocks
from bot.slack.blocks import Message
from bot.text import clean_question

if TYPE_CHECKING:
    from bot.answer import Engine

__all__ = [
    "Message",
    "ask_command",
    "deadlines_command",
    "error_message",
    "feedback_thanks",
    "help_message",
    "home_view",
    "new_error_id",
    "question_message",
    "run_command",
    "shared_answer",
]

_EXAMPLES = 4  # the engine's picks: one each of deadline, scope, alternative, reason


def question_message(engine: Engine, text: str) -> Message:
    """Answer a question typed in a mention, a DM, a thread or the local chat."""
    question = clean_question(text)
    if not question:
        return blocks.prompt_message()
    return blocks.answer_message(engine.answer(question), question=question)


def ask_command(engine: Engine, text: str) -> Message:
    """``/ban-ask QUESTION``: a private answer with a "Share in channel" button."""
    question = clean_question(text)
    if not question:
        return blocks.prompt_message(command="/ban-ask")
    return blocks.answer_message(engine.answer(question), question=question, share=True)


def shared_answer(engine: Engine, question: str, user_id: str) -> Message:
    """The answer to a ``/ban-ask`` question, as posted when its asker shares it."""
    question = clean_question(question)
    return blocks.answer_message(engine.answer(question), question=question, shared_by=user_id)


def deadlines_command(engine: Engine, word: str | None = None) -> Message:
    """``/ban-deadlines [word]``: the timeline, filtered by a word, against the engine's clock."""
    word = clean_question(word)
    timeline = engine.timeline
    return blocks.deadlines_message(
        timeline.filter(word), timeline=timeline, now=engine.clock(), word=word
    )


def help_message(engine: Engine) -> Message:
    """``/ban-help``: what the bot knows (categories), example questions, the commands."""
    return blocks.help_message(
        categories=engine.knowledge.categories, examples=engine.example_questions(_EXAMPLES)
    )


def home_view(engine: Engine) -> dict[str, Any]:
    """The App Home tab: key deadlines against today, what the bot answers, how to ask."""
    timeline = engine.timeline
    return blocks.home_view(
        key_events=timeline.key_events,
        timeline=timeline,
        now=engine.clock(),
        categories=engine.knowledge.categories,
        examples=engine.example_questions(_EXAMPLES),
    )


def run_command(engine: Engine, command: str, text: str = "") -> Message:
    """Run a slash command by name (``/ban-ask``, ``/ban-deadlines``, ``/ban-help``), as the
    local chat does; raises ``KeyError`` for any other name."""
    if command == blocks.ASK:
        return ask_command(engine, text)
    if command == blocks.DEADLINES:
        return deadlines_command(engine, text)
    if command == blocks.HELP:
        return help_message(engine)
    raise KeyError(command)


def new_error_id() -> str:
    """A short id that ties a user's apology to the traceback in the log."""
    return secrets.token_hex(4)


def error_message(error_id: str) -> Message:
    """The short apology with an error id; never the exception text."""
    return blocks.error_message(error_id)


def feedback_thanks(vote: str) -> Message:
    """The visible acknowledgement of a 👍/👎 click."""
    return blocks.feedback_thanks(vote)
