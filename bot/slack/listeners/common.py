"""What every kind of listener shares: admission to the answering threads (with the rate limit
and the "try again" notice), the apology on failure, the 👀 reaction, the question log.

Usage::

    def job() -> None:
        with working_reaction(client, channel, ts, after=1.0, logger=logger):
            message, seconds = timed(lambda: slack_message(question_reply(engine, text)))
            say(**message.as_kwargs())
        record_question(services, "slack:dm", message, user_id, seconds)

    admit(services, job, where="dm", logger=logger, user_id=user_id, notify=say_message)
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError

from bot import metrics
from bot.handlers import busy_notice, error_notice, new_error_id, rate_limited_notice
from bot.ratelimit import Verdict
from bot.slack import log
from bot.slack.blocks import Message, slack_message
from bot.slack.services import Services

if TYPE_CHECKING:
    from slack_sdk import WebClient

WORKING_REACTION = "eyes"


def conversation_key(channel: str, thread_ts: str | None) -> str:
    """Which conversation a message belongs to: its thread, or a DM's main view (no thread)."""
    return f"{channel}:{thread_ts or ''}"


def bind(
    listener: Callable[..., Any], services: Services, *, name: str | None = None, **options: Any
) -> Callable[..., Any]:
    """``listener`` with ``services`` (and ``options``) filled in, for ``app.event(...)`` and the
    like: bolt passes the other arguments by the names in the signature, which the partial keeps.

    The partial is named ``name`` (default: the listener's), which bolt's log shows.
    Usage: ``app.event("app_mention")(bind(on_mention, services))``
    """
    bound = functools.partial(listener, services, **options)
    bound.__name__ = name or listener.__name__  # type: ignore[attr-defined]
    return bound


def admit(
    services: Services,
    job: Callable[[], None],
    *,
    where: str,
    logger: logging.Logger,
    user_id: str | None,
    notify: Callable[[Message], Any] | None,
    event_id: str | None = None,
    rate_limited: bool = True,
) -> bool:
    """Hand ``job`` to an answering thread, without waiting; returns whether it was taken.

    Not taken when ``user_id`` is over the per-user rate limit (with ``rate_limited``) or when
    every answering thread is busy and the queue is full: then ``notify`` (if given) tells the
    user, on the notice thread, to slow down or to try again, and the refusal is logged.
    """
    extra = {"event_id": event_id}
    if rate_limited and user_id:
        verdict = services.limiter.check(user_id)
        if verdict is not Verdict.ALLOW:
            told = verdict is Verdict.NOTIFY
            user_hash = services.store.hash_user(user_id)
            logger.info(log.rate_limited(where, user_hash, told), extra=extra)
            if told and notify is not None:
                message = slack_message(rate_limited_notice(services.limiter.per_minute))
                _notify(services, notify, message, where=where, logger=logger, event_id=event_id)
            return False
    if services.answers.submit(job):
        return True
    logger.warning(log.busy(where, services.answers.pending), extra=extra)
    if notify is not None:
        _notify(
            services,
            notify,
            slack_message(busy_notice()),
            where=where,
            logger=logger,
            event_id=event_id,
        )
    return False


def _notify(
    services: Services,
    notify: Callable[[Message], Any],
    message: Message,
    *,
    where: str,
    logger: logging.Logger,
    event_id: str | None,
) -> None:
    """Send a notice on the notice thread, so that the caller (acknowledging) never waits."""
    extra = {"event_id": event_id}

    def send() -> None:
        try:
            notify(message)
        except Exception:
            logger.exception(log.notice_failed(where), extra=extra)

    if not services.notices.submit(send):
        logger.warning(log.notice_dropped(where), extra=extra)


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
        reply(slack_message(error_notice(error_id)))
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
        except Exception as e:  # cosmetic: Slack refusing or unreachable must not kill a thread
            logger.warning(log.reaction_failed(WORKING_REACTION, _reason(e)))

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
            except Exception as e:
                logger.warning(log.reaction_failed(WORKING_REACTION, _reason(e)))


def _reason(error: Exception) -> str:
    """Slack's error code for an API refusal, else the kind of failure (connection, timeout)."""
    if isinstance(error, SlackApiError):
        return str(error.response.get("error"))
    return type(error).__name__


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
