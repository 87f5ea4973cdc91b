"""Buttons: 👍/👎 feedback (stored, thanked), "Share in channel" and the follow-up suggestions.
Each click is acknowledged at once and handled on an answering thread.

Usage::

    actions.register(app, services)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from slack_bolt import Ack, Respond

from bot import metrics
from bot.handlers import Message, ask_command, feedback_thanks, question_message, shared_answer
from bot.slack import log
from bot.slack.blocks import (
    FEEDBACK_DOWN,
    FEEDBACK_UP,
    FOLLOW_UP_PATTERN,
    SHARE_ANSWER,
    parse_feedback_value,
)
from bot.slack.listeners.common import ack_now, admit, apologize, record_question, timed
from bot.slack.retries import ResponseUrl

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.slack.app import Services


Work = Callable[[dict[str, Any], dict[str, Any], "WebClient", ResponseUrl, logging.Logger], None]


def register(app: App, services: Services) -> None:
    def queued(where: str, work: Work, *, rate_limited: bool) -> Callable[..., None]:
        """A listener that acknowledges the click and admits ``work`` to an answering thread."""

        def listener(
            ack: Ack,
            body: dict[str, Any],
            action: dict[str, Any],
            client: WebClient,
            respond: Respond,
            logger: logging.Logger,
        ) -> None:
            ack_now(ack)
            # Slack's clicks always name the user, and the channel of a message in one; a body
            # without them (fuzzing found such) cannot be answered, stored or apologised to.
            if not _id_of(body, "user") or (not _is_private(body) and not _id_of(body, "channel")):
                logger.warning(log.click_without_user_or_channel(where))
                return
            reply_url = ResponseUrl(respond)  # bolt's respond would not notice a failed reply
            if _is_private(body) and not reply_url.usable:
                logger.warning(log.no_response_url(where))
                return
            admit(
                services,
                lambda: work(body, action, client, reply_url, logger),
                where=where,
                logger=logger,
                user_id=(body.get("user") or {}).get("id"),
                notify=_private_reply(body, client, reply_url),
                rate_limited=rate_limited,
            )

        return listener

    def feedback(vote: Literal["up", "down"]) -> Callable[..., None]:
        def on_feedback(
            body: dict[str, Any],
            action: dict[str, Any],
            client: WebClient,
            respond: ResponseUrl,
            logger: logging.Logger,
        ) -> None:
            reply = _private_reply(body, client, respond)
            try:
                question, entry_ids = parse_feedback_value(action.get("value", ""))
                services.store.record_feedback(
                    user_id=body["user"]["id"], question=question, entry_ids=entry_ids, vote=vote
                )
                metrics.count_feedback(vote)
                reply(feedback_thanks(vote))
            except Exception:
                apologize(f"feedback {vote}", logger, reply)

        return on_feedback

    # A vote is not a question: never rate limited.
    app.action(FEEDBACK_UP)(queued("feedback up", feedback("up"), rate_limited=False))
    app.action(FEEDBACK_DOWN)(queued("feedback down", feedback("down"), rate_limited=False))

    def share(
        body: dict[str, Any],
        action: dict[str, Any],
        client: WebClient,
        respond: ResponseUrl,
        logger: logging.Logger,
    ) -> None:
        try:
            message = shared_answer(services.engine, action.get("value", ""), body["user"]["id"])
            # response_url works in any channel the command was used in, member or not.
            respond(response_type="in_channel", replace_original=False, **message.as_kwargs())
            respond(delete_original=True)
        except Exception:
            apologize("share", logger, _private_reply(body, client, respond))

    app.action(SHARE_ANSWER)(queued("share", share, rate_limited=True))

    def follow_up(
        body: dict[str, Any],
        action: dict[str, Any],
        client: WebClient,
        respond: ResponseUrl,
        logger: logging.Logger,
    ) -> None:
        question = action.get("value", "")
        try:
            if _is_private(body):
                # A private /ban-ask answer: the follow-up stays private, shareable.
                message, seconds = timed(lambda: ask_command(services.engine, question))
                respond(response_type="ephemeral", replace_original=False, **message.as_kwargs())
            else:
                channel = body["channel"]["id"]
                original = body["message"]
                thread_ts = original.get("thread_ts") or original["ts"]
                message, seconds = timed(lambda: question_message(services.engine, question))
                client.chat_postMessage(channel=channel, thread_ts=thread_ts, **message.as_kwargs())
                services.store.mark_bot_thread(channel, thread_ts)
            user = body["user"]["id"]
            record_question(services, "slack:follow-up-button", message, user, seconds)
        except Exception:
            apologize("follow-up", logger, _private_reply(body, client, respond))

    app.action(FOLLOW_UP_PATTERN)(queued("follow-up", follow_up, rate_limited=True))


def _id_of(body: dict[str, Any], key: str) -> str | None:
    """``body[key]["id"]`` when it is a non-empty string (user, channel), else ``None``."""
    part = body.get(key)
    value = part.get("id") if isinstance(part, dict) else None
    return value if isinstance(value, str) and value else None


def _is_private(body: dict[str, Any]) -> bool:
    """Was the clicked button on a message only this user sees (a /ban-ask answer)?"""
    container = body.get("container") or {}
    return bool(container.get("is_ephemeral")) or not body.get("message")


def _private_reply(
    body: dict[str, Any], client: WebClient, respond: ResponseUrl
) -> Callable[[Message], None]:
    """A reply only the clicking user sees: in the thread of a channel message, or through
    ``response_url`` for a message that is itself private."""
    original = body.get("message") or {}

    def reply(message: Message) -> None:
        if _is_private(body):
            respond(response_type="ephemeral", replace_original=False, **message.as_kwargs())
            return
        client.chat_postEphemeral(
            channel=body["channel"]["id"],
            user=body["user"]["id"],
            thread_ts=original.get("thread_ts"),
            **message.as_kwargs(),
        )

    return reply
