"""Buttons: 👍/👎 feedback (stored, thanked), "Share in channel" and the follow-up suggestions.

Every click goes through one listener, ``on_click``: it acknowledges at once and admits the
button's work to an answering thread. The work is a plain function of one ``Click``.

Usage::

    actions.register(app, services)
    share(Click(services, body, client, ResponseUrl(respond), logger))   # what a click runs
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from slack_bolt import Ack, Respond

from bot import metrics
from bot.handlers import ask_reply, converse, deadlines_reply, feedback_notice, shared_reply
from bot.slack import log
from bot.slack.blocks import (
    FEEDBACK_DOWN,
    FEEDBACK_UP,
    FOLLOW_UP_PATTERN,
    SHARE_ANSWER,
    SHOW_HISTORY,
    Message,
    parse_feedback_value,
    slack_message,
)
from bot.slack.listeners.common import (
    admit,
    apologize,
    bind,
    conversation_key,
    record_question,
    timed,
)
from bot.slack.retries import ResponseUrl
from bot.slack.services import Services

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient


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
        return _id_of(self.body, "user")

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


Work = Callable[[Click], None]


def feedback_up(click: Click) -> None:
    """👍: stored and thanked."""
    _vote(click, "up")


def feedback_down(click: Click) -> None:
    """👎: stored (the curation report reads it) and thanked."""
    _vote(click, "down")


def _vote(click: Click, vote: Literal["up", "down"]) -> None:
    try:
        question, entry_ids = parse_feedback_value(click.value)
        click.services.store.record_feedback(
            user_id=click.body["user"]["id"], question=question, entry_ids=entry_ids, vote=vote
        )
        metrics.count_feedback(vote)
        click.reply_privately(slack_message(feedback_notice(vote)))
    except Exception:
        apologize(f"feedback {vote}", click.logger, click.reply_privately)


def share(click: Click) -> None:
    """ "Share in channel" under a private /ban-ask answer: post it for everyone, drop the
    private one."""
    try:
        engine, user = click.services.engine, click.body["user"]["id"]
        message = slack_message(shared_reply(engine, click.value, user))
        # response_url works in any channel the command was used in, member or not.
        click.respond(response_type="in_channel", replace_original=False, **message.as_kwargs())
        click.respond(delete_original=True)
    except Exception:
        apologize("share", click.logger, click.reply_privately)


def follow_up(click: Click) -> None:
    """A suggested follow-up question: answered in the thread (privately under a private
    answer, shareable)."""
    services, question = click.services, click.value
    try:
        if click.private:
            message, seconds = timed(lambda: slack_message(ask_reply(services.engine, question)))
            click.respond(response_type="ephemeral", replace_original=False, **message.as_kwargs())
        else:
            channel = click.body["channel"]["id"]
            original = click.body["message"]
            thread_ts = original.get("thread_ts") or original["ts"]
            key = conversation_key(channel, thread_ts)
            message, seconds = timed(
                lambda: slack_message(
                    converse(
                        services.engine,
                        services.store,
                        key,
                        question,
                        now=services.engine.clock(),
                        user_id=click.user_id,
                    )
                )
            )
            services.store.mark_bot_thread(channel, thread_ts)  # before posting, as events do
            click.client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, **message.as_kwargs()
            )
        record_question(services, "slack:follow-up-button", message, click.user_id, seconds)
    except Exception:
        apologize("follow-up", click.logger, click.reply_privately)


def show_history(click: Click) -> None:
    """ "Show the full history" under the key dates: the whole timeline, in place of them."""
    try:
        engine = click.services.engine
        message = slack_message(deadlines_reply(engine.timeline, engine.clock(), "history"))
        if click.private:
            click.respond(replace_original=True, **message.as_kwargs())
        else:
            click.reply_privately(message)
    except Exception:
        apologize("deadlines history", click.logger, click.reply_privately)


# Each button's action id, its work, and whether a click counts against the per-user rate limit
# (a vote is not a question: never).
BUTTONS: tuple[tuple[str | re.Pattern[str], Work, bool], ...] = (
    (FEEDBACK_UP, feedback_up, False),
    (FEEDBACK_DOWN, feedback_down, False),
    (SHARE_ANSWER, share, True),
    (FOLLOW_UP_PATTERN, follow_up, True),
    (SHOW_HISTORY, show_history, False),
)


def register(app: App, services: Services) -> None:
    for action_id, work, rate_limited in BUTTONS:
        listener = bind(
            on_click, services, name=work.__name__, work=work, rate_limited=rate_limited
        )
        app.action(action_id)(listener)


def on_click(
    services: Services,
    ack: Ack,
    body: dict[str, Any],
    client: WebClient,
    respond: Respond,
    logger: logging.Logger,
    *,
    work: Work,
    rate_limited: bool,
) -> None:
    """Acknowledge the click and admit ``work`` to an answering thread."""
    ack()
    where = work.__name__.replace("_", " ")
    # Slack's clicks always name the user, and the channel of a message in one; a body
    # without them (fuzzing found such) cannot be answered, stored or apologised to.
    click = Click(services, body, client, ResponseUrl(respond), logger)
    if not click.user_id or (not click.private and not _id_of(body, "channel")):
        logger.warning(log.click_without_user_or_channel(where))
        return
    if click.private and not click.respond.usable:
        logger.warning(log.no_response_url(where))
        return
    admit(
        services,
        lambda: work(click),
        where=where,
        logger=logger,
        user_id=click.user_id,
        notify=click.reply_privately,
        rate_limited=rate_limited,
    )


def _id_of(body: dict[str, Any], key: str) -> str | None:
    """``body[key]["id"]`` when it is a non-empty string (user, channel), else ``None``."""
    part = body.get(key)
    value = part.get("id") if isinstance(part, dict) else None
    return value if isinstance(value, str) and value else None
