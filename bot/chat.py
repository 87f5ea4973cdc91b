"""The local console, on exactly the handlers the Slack surfaces use.

Each line is a question, or a slash command as Slack would run it (``/ban-deadlines updates``,
``/ban-ask ...``, ``/ban-help``). Block Kit replies are rendered as terminal text.

Usage::

    echo "when do updates stop?" | ban-bot chat
    run_chat(settings, engine, stdin=io.StringIO("/ban-help\\n"), stdout=out)
"""

from __future__ import annotations

import html
import logging
import re
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TextIO

from bot.config import Settings
from bot.handlers import Message, error_message, new_error_id, question_message, run_command
from bot.slack import log
from bot.slack.blocks import COMMANDS, FOLLOW_UP_PATTERN, echo

if TYPE_CHECKING:
    from bot.answer import Engine

logger = logging.getLogger("bot.chat")
PROMPT = "you> "
BANNER = (
    "ban-bot: ask about the 2024 US ban on Kaspersky software. "
    "/ban-help lists what I know; Ctrl-D quits."
)

_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)\|([^>]+)>")
_BARE_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)>")
_MENTION = re.compile(r"<@([A-Z0-9]+)>")
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_([^_\n]+)_(?![\w_])")
_CODE = re.compile(r"`([^`\n]+)`")


def mrkdwn_to_text(text: str) -> str:
    """Slack mrkdwn as terminal text: links as "label (url)", emphasis dropped, entities decoded."""
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1).replace('&amp;', '&')})", text)
    text = _BARE_LINK.sub(lambda m: m.group(1).replace("&amp;", "&"), text)
    text = _MENTION.sub(r"@\1", text)
    text = _CODE.sub(r"\1", _ITALIC.sub(r"\1", _BOLD.sub(r"\1", text)))
    return html.unescape(text)


def _block_lines(block: dict[str, Any]) -> Iterable[str]:
    kind = block.get("type")
    if kind == "header":
        title = block["text"]["text"]
        yield from (title, "=" * min(len(title), 78))
    elif kind == "section":
        yield mrkdwn_to_text(block["text"]["text"])
    elif kind == "context":
        for element in block.get("elements", []):
            if "text" in element:
                yield mrkdwn_to_text(element["text"])
    elif kind == "divider":
        yield ""
    elif kind == "actions":
        # Feedback and share buttons mean nothing here; follow-ups become questions to type.
        for element in block.get("elements", []):
            if FOLLOW_UP_PATTERN.match(element.get("action_id", "")):
                yield f"  ↪ you could also ask: {element['value']}"


def render(message: Message) -> str:
    """A Block Kit message as terminal text (the ``text`` fallback when there are no blocks)."""
    if not message.blocks:
        return html.unescape(message.text)
    return "\n".join(line for block in message.blocks for line in _block_lines(block))


def reply_to(engine: Engine, line: str) -> Message:
    """What the bot says to one line: a slash command as Slack would run it, else a question."""
    if line.startswith("/"):
        name, _, rest = line.partition(" ")
        try:
            return run_command(engine, name.lower(), rest)
        except KeyError:
            known = ", ".join(c for c, _, _ in COMMANDS)
            # Shortened: the whole line would otherwise come back, however long it is.
            return Message(text=f"Unknown command {echo(name, 40)}. Try {known}.", blocks=[])
    return question_message(engine, line)


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
    interactive = stdin.isatty()
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
                    message = reply_to(engine, line)
                except Exception:
                    error_id = new_error_id()
                    logger.exception(log.error_answering("chat", error_id))
                    message = error_message(error_id)
                print(render(message), file=stdout)
                print(file=stdout, flush=True)
            prompt()
    except KeyboardInterrupt:
        print(file=stdout)
        return 130
    return 0
