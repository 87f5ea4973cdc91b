"""The local console, on exactly the handlers the Slack surfaces use.

Each line is a question, or a slash command as Slack would run it (``/ban-deadlines updates``,
``/ban-ask ...``, ``/ban-help``). The previous lines are the conversation's context, kept the way
Slack's threads keep it (``bot.conversation``), so "why?" after an answer is a follow-up. Replies
are rendered by the plain-text renderer the CLI uses too.

Usage::

    echo "when do updates stop?" | ban-bot chat
    run_chat(settings, engine, stdin=io.StringIO("/ban-help\\n"), stdout=out)
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, TextIO

from bot.config import Settings
from bot.handlers import converse, error_notice, new_error_id, run_command
from bot.render import BOLD, render_text
from bot.reply import COMMANDS, NoticeReply, Reply
from bot.slack import log
from bot.turns import Conversations, MemoryConversations

if TYPE_CHECKING:
    from bot.answer import Engine

logger = logging.getLogger("bot.chat")
PROMPT = "you> "
BANNER = (
    "ban-bot: ask about the 2024 US ban on Kaspersky software. "
    "/ban-help lists what I know; Ctrl-D quits."
)
SESSION = "chat"  # the one conversation of a chat session
_ECHO_CHARS = 40


def _shortened(text: str, limit: int = _ECHO_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def reply_to(engine: Engine, line: str, conversations: Conversations | None = None) -> Reply:
    """What the bot says to one line: a slash command as Slack would run it, else a question
    in the session's conversation."""
    if line.startswith("/"):
        name, _, rest = line.partition(" ")
        try:
            return run_command(engine, name.lower(), rest)
        except KeyError:
            known = ", ".join(c for c, _, _ in COMMANDS)
            # Shortened: the whole line would otherwise come back, however long it is.
            return NoticeReply(
                "unknown-command", f"Unknown command {_shortened(name)}. Try {known}."
            )
    return converse(
        engine, conversations or MemoryConversations(), SESSION, line, now=engine.clock()
    )


def run_chat(
    settings: Settings,
    engine: Engine | None = None,
    *,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
) -> int:
    """Answer ``stdin`` line by line until end of input; returns the exit status."""
    if engine is None:
        from bot.answer import Engine

        engine = Engine.load(settings)
    conversations = MemoryConversations()
    interactive = stdin.isatty()
    bold = BOLD if interactive and stdout.isatty() else None  # never into a pipe or a file
    if interactive:
        print(BANNER, file=stdout)

    def prompt() -> None:
        if interactive:
            print(PROMPT, end="", file=stdout, flush=True)

    prompt()
    try:
        for raw in stdin:
            line = raw.strip()
            if line:
                try:
                    reply = reply_to(engine, line, conversations)
                except Exception:
                    error_id = new_error_id()
                    logger.exception(log.error_answering("chat", error_id))
                    reply = error_notice(error_id)
                print(render_text(reply, bold=bold), file=stdout)
                print(file=stdout, flush=True)
            prompt()
    except KeyboardInterrupt:
        print(file=stdout)
        return 130
    return 0
