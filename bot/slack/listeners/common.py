"""What every kind of listener shares: admission to the answering threads (with the rate limit
and the "try again" notice), the apology on failure, the "looking that up" status or the 👀
reaction, sending an answer with Slack's feedback element (or the classic buttons), the
question log.

Usage::

    def job() -> None:
        with working_indicator(services, client, channel, ts, thread_ts, logger=logger):
            reply, seconds = timed(lambda: question_reply(engine, text))
            message = send_answer(services, say_message, reply, logger=logger)
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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from slack_sdk.errors import SlackApiError

from bot import metrics
from bot.handlers import busy_notice, error_notice, new_error_id, rate_limited_notice
from bot.ratelimit import Verdict
from bot.reply import Reply
from bot.slack import log
from bot.slack.blocks import Message, slack_message
from bot.slack.features import FEEDBACK_ELEMENT, STATUS, OptionalFeatures
from bot.slack.retries import ResponseUrl
from bot.slack.services import Services

if TYPE_CHECKING:
    from slack_sdk import WebClient

T = TypeVar("T")
WORKING_REACTION = "eyes"
WORKING_STATUS = "is looking that up…"


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
def working_indicator(
    client: WebClient,
    channel: str,
    ts: str,
    *,
    after: float,
    logger: logging.Logger,
    thread_ts: str | None = None,
    features: OptionalFeatures | None = None,
) -> Iterator[None]:
    """If the work inside takes longer than ``after`` seconds, show that the bot is on it: in a
    thread (``thread_ts``), Slack's loading status "is looking that up…" where the workspace
    has it (``features``), else 👀 on the message ``ts``. Cleared when done. Slack refusing or
    being unreachable is logged, never fatal: it is cosmetic."""
    shown: list[str] = []

    def show() -> None:
        if thread_ts and features is not None and features.available(STATUS):
            try:
                client.assistant_threads_setStatus(
                    channel_id=channel, thread_ts=thread_ts, status=WORKING_STATUS
                )
                shown.append("status")
                return
            except Exception as e:
                features.refused(STATUS, e, logger)  # logged; the reaction stands in
        try:
            client.reactions_add(channel=channel, timestamp=ts, name=WORKING_REACTION)
            shown.append("reaction")
        except Exception as e:
            logger.warning(log.reaction_failed(WORKING_REACTION, _reason(e)))

    timer = threading.Timer(after, show)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()  # if the indicator is being shown right now, clear it only afterwards
        try:
            if "status" in shown and thread_ts:
                # A reply in the thread clears it too; nothing was posted after a quiet decline.
                client.assistant_threads_setStatus(
                    channel_id=channel, thread_ts=thread_ts, status=""
                )
            elif "reaction" in shown:
                client.reactions_remove(channel=channel, timestamp=ts, name=WORKING_REACTION)
        except Exception as e:
            logger.warning(log.indicator_failed(shown[0], _reason(e)))


def send_answer(
    services: Services,
    send: Callable[[Message], Any],
    reply: Reply,
    *,
    logger: logging.Logger,
    ask_experts: str | None = None,
) -> Message:
    """Render ``reply`` with Slack's feedback element and send it; where the workspace refuses
    the element (``invalid_blocks``) send it again with the classic 👍/👎 buttons, and keep to
    those from then on. Returns the message sent."""
    features = services.features
    message = slack_message(
        reply, ask_experts=ask_experts, feedback_element=features.available(FEEDBACK_ELEMENT)
    )
    try:
        send(message)
        return message
    except Exception as e:
        if not message.feedback_element or not features.refused(FEEDBACK_ELEMENT, e, logger):
            raise
    message = slack_message(reply, ask_experts=ask_experts, feedback_element=False)
    send(message)
    return message


def _reason(error: Exception) -> str:
    """Slack's error code for an API refusal, else the kind of failure (connection, timeout)."""
    if isinstance(error, SlackApiError):
        return str(error.response.get("error"))
    return type(error).__name__


def timed(build: Callable[[], T]) -> tuple[T, float]:
    """Build a reply and measure how long it took (the answer latency metric)."""
    started = time.perf_counter()
    result = build()
    return result, time.perf_counter() - started


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


@dataclass(frozen=True)
class Click:
    """One button click, as the work behind it sees it on an answering thread."""

    services: Services
    body: dict[str, Any]
    client: WebClient
    respond: ResponseUrl  # bolt's respond would not notice a failed reply
    logger: logging.Logger

    @property
    def value(self) -> str:
        """The clicked button's value."""
        value = (self.body.get("actions") or [{}])[0].get("value")
        return value if isinstance(value, str) else ""

    @property
    def user_id(self) -> str | None:
        return id_of(self.body, "user")

    @property
    def private(self) -> bool:
        """Was the button on a message only this user sees (a /ban-ask answer)?"""
        container = self.body.get("container") or {}
        return bool(container.get("is_ephemeral")) or not self.body.get("message")

    def reply_privately(self, message: Message) -> None:
        """A reply only the clicking user sees: in the thread of a channel message, or through
        ``response_url`` for a message that is itself private."""
        if self.private:
            self.respond(response_type="ephemeral", replace_original=False, **message.as_kwargs())
            return
        self.client.chat_postEphemeral(
            channel=self.body["channel"]["id"],
            user=self.body["user"]["id"],
            thread_ts=(self.body.get("message") or {}).get("thread_ts"),
            **message.as_kwargs(),
        )


def id_of(body: dict[str, Any], key: str) -> str | None:
    """``body[key]["id"]`` when it is a non-empty string (user, channel), else ``None``."""
    part = body.get(key)
    value = part.get("id") if isinstance(part, dict) else None
    return value if isinstance(value, str) and value else None
