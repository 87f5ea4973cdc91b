"""What every kind of listener shares: the apology on failure, the 👀 reaction, the question log.

Usage::

    with working_reaction(client, channel, ts, after=1.0, logger=logger):
        message, seconds = timed(lambda: question_message(engine, text))
        say(**message.as_kwargs())
    record_question(services, "slack:dm", message, user_id, seconds)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack
from slack_sdk.errors import SlackApiError

from bot import metrics
from bot.handlers import Message, error_message, new_error_id
from bot.slack import log

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from bot.slack.app import Services

WORKING_REACTION = "eyes"


def ack_now(ack: Ack) -> None:
    """Acknowledge at once; the work follows in a lazy listener, after Slack has its answer."""
    ack()


def apologize(
    where: str,
    logger: logging.Logger,
    reply: Callable[[Message], Any],
    *,
    event_id: str | None = None,
) -> str:
    """Log the current exception with a fresh error id and tell the user only that id.

    Call from an ``except`` block; returns the error id.
    """
    error_id = new_error_id()
    extra = {"event_id": event_id, "error_id": error_id}
    logger.exception(log.error_answering(where, error_id), extra=extra)
    try:
        reply(error_message(error_id))
    except Exception:
        logger.exception(log.error_replying(where, error_id), extra=extra)
    return error_id


@contextmanager
def working_reaction(
    client: WebClient, channel: str, ts: str, *, after: float, logger: logging.Logger
) -> Iterator[None]:
    """Add 👀 to the message if the work inside takes longer than ``after`` seconds; remove it
    when done. A reaction that cannot be added or removed is logged, never fatal."""
    added = threading.Event()

    def add() -> None:
        try:
            client.reactions_add(channel=channel, timestamp=ts, name=WORKING_REACTION)
            added.set()
        except SlackApiError as e:
            logger.warning(log.reaction_failed(WORKING_REACTION, str(e.response.get("error"))))

    timer = threading.Timer(after, add)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()  # if the reaction is being added right now, remove it only afterwards
        if added.is_set():
            try:
                client.reactions_remove(channel=channel, timestamp=ts, name=WORKING_REACTION)
            except SlackApiError as e:
                logger.warning(log.reaction_failed(WORKING_REACTION, str(e.response.get("error"))))


def timed(build: Callable[[], Message]) -> tuple[Message, float]:
    """Build a reply and measure how long it took (the answer latency metric)."""
    started = time.perf_counter()
    message = build()
    return message, time.perf_counter() - started


def record_question(
    services: Services, surface: str, message: Message, user_id: str | None, seconds: float
) -> None:
    """Log an answered question and count it in the metrics; a prompt or an error message has
    no question and is skipped."""
    if message.question is None:
        return
    metrics.observe_answer(surface, message, seconds)
    services.store.log_question(
        surface=surface,
        question=message.question,
        entry_ids=message.entry_ids,
        declined=message.declined,
        score=message.score,
        user_id=user_id,
    )
