"""Slash commands: ``/ban-ask`` (acknowledged at once, answered on an answering thread through
``response_url``), and ``/ban-deadlines`` and ``/ban-help`` (no engine search: answered in the
ack itself). Each listener is a plain function of the ``Services`` and what bolt passes.

Usage::

    commands.register(app, services)
    deadlines(services, ack=ack, command={"text": "updates"}, logger=logger)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, Respond

from bot.handlers import ask_reply, deadlines_reply, help_reply
from bot.slack import log
from bot.slack.blocks import ASK, DEADLINES, HELP, Message, slack_message
from bot.slack.listeners.common import (
    admit,
    apologize,
    bind,
    record_question,
    send_answer,
    timed,
)
from bot.slack.retries import ResponseUrl
from bot.slack.services import Services

if TYPE_CHECKING:
    from slack_bolt import App


def register(app: App, services: Services) -> None:
    app.command(ASK)(bind(ask, services))
    app.command(DEADLINES)(bind(deadlines, services))
    app.command(HELP)(bind(help_, services))


def ask(
    services: Services,
    ack: Ack,
    command: dict[str, Any],
    respond: Respond,
    logger: logging.Logger,
) -> None:
    """``/ban-ask QUESTION``: an empty ack now, the private answer through ``response_url``."""
    ack()
    user_id = command.get("user_id")
    reply_url = ResponseUrl(respond)  # bolt's respond would not notice a failed reply
    if not reply_url.usable:
        logger.warning(log.no_response_url(ASK))
        return

    def reply(message: Message) -> None:
        reply_url(response_type="ephemeral", replace_original=False, **message.as_kwargs())

    def answer() -> None:
        try:
            text = command.get("text", "")
            answer, seconds = timed(lambda: ask_reply(services.engine, text))
            # Private and of no message: nothing to link for the experts, so no button.
            message = send_answer(services, reply, answer, logger=logger)
            record_question(services, "slack:/ban-ask", message, user_id, seconds)
        except Exception:
            apologize(ASK, logger, reply)

    admit(services, answer, where=ASK, logger=logger, user_id=user_id, notify=reply)


def deadlines(
    services: Services, ack: Ack, command: dict[str, Any], logger: logging.Logger
) -> None:
    """``/ban-deadlines [word]``: the key dates (or all, or those matching a word), in the ack."""
    engine = services.engine
    _ack_with(
        ack,
        DEADLINES,
        logger,
        lambda: slack_message(
            deadlines_reply(engine.timeline, engine.clock(), command.get("text"))
        ),
    )


def help_(services: Services, ack: Ack, logger: logging.Logger) -> None:
    """``/ban-help``: what the bot knows and how to ask, in the ack."""
    _ack_with(ack, HELP, logger, lambda: slack_message(help_reply(services.engine)))


def _ack_with(ack: Ack, where: str, logger: logging.Logger, build: Callable[[], Message]) -> None:
    """Reply in the ack itself (visible only to the caller); an apology if building fails."""

    def reply(message: Message) -> None:
        ack(response_type="ephemeral", **message.as_kwargs())

    try:
        message = build()
    except Exception:
        apologize(where, logger, reply)
        return
    reply(message)
