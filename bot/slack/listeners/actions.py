"""Buttons: 👍/👎 feedback (Slack's feedback element, or the classic buttons; stored, thanked),
"Share in channel", the follow-up suggestions, "Ask it on its own instead" (under a follow-up
read in context), the full history, and the experts' two buttons ("Ask the experts", "Mark as
the answer": ``listeners/experts.py``).

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
from typing import TYPE_CHECKING, Any, Literal

from slack_bolt import Ack, Respond

from bot import metrics
from bot.handlers import ask_reply, converse, deadlines_reply, feedback_notice, shared_reply
from bot.slack import log
from bot.slack.blocks import (
    ASK_ALONE,
    ASK_EXPERTS,
    FEEDBACK,
    FEEDBACK_DOWN,
    FEEDBACK_UP,
    FOLLOW_UP_PATTERN,
    MARK_ANSWER,
    SHARE_ANSWER,
    SHOW_HISTORY,
    Message,
    parse_feedback_value,
    slack_message,
)
from bot.slack.listeners import experts
from bot.slack.listeners.common import (
    Click,
    admit,
    apologize,
    bind,
    conversation_key,
    id_of,
    record_question,
    send_answer,
    timed,
)
from bot.slack.retries import ResponseUrl
from bot.slack.services import Services

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient


Work = Callable[[Click], None]


def feedback(click: Click) -> None:
    """Slack's feedback element: one action for 👍 and 👎, the value says which."""
    vote = parse_feedback_value(click.value).vote
    if vote is None:
        click.logger.warning(log.click_without_vote())
        return
    _vote(click, vote)


def feedback_up(click: Click) -> None:
    """👍 (classic button): stored and thanked."""
    _vote(click, "up")


def feedback_down(click: Click) -> None:
    """👎 (classic button): stored (the curation report reads it) and thanked; its asker is
    offered to ask the experts."""
    _vote(click, "down")


def _vote(click: Click, vote: Literal["up", "down"]) -> None:
    try:
        value = parse_feedback_value(click.value)
        user = click.body["user"]["id"]
        click.services.store.record_feedback(
            user_id=user, question=value.question, entry_ids=value.entry_ids, vote=vote
        )
        metrics.count_feedback(vote)
        offer = experts.offer_after_down_vote(click.services, value.escalation, user)
        notice = feedback_notice(vote)
        click.reply_privately(slack_message(notice, ask_experts=offer if vote == "down" else None))
    except Exception:
        apologize(f"feedback {vote}", click.logger, click.reply_privately)


def share(click: Click) -> None:
    """ "Share in channel" under a private /ban-ask answer: post it for everyone, drop the
    private one."""
    try:
        engine, user = click.services.engine, click.body["user"]["id"]

        def post(message: Message) -> None:
            # response_url works in any channel the command was used in, member or not.
            click.respond(response_type="in_channel", replace_original=False, **message.as_kwargs())

        send_answer(
            click.services, post, shared_reply(engine, click.value, user), logger=click.logger
        )
        click.respond(delete_original=True)
    except Exception:
        apologize("share", click.logger, click.reply_privately)


def follow_up(click: Click) -> None:
    """A suggested follow-up question: answered in the thread (privately under a private
    answer, shareable)."""
    services, question = click.services, click.value
    try:
        if click.private:
            reply, seconds = timed(lambda: ask_reply(services.engine, question))

            def answer_privately(message: Message) -> None:
                click.respond(
                    response_type="ephemeral", replace_original=False, **message.as_kwargs()
                )

            message = send_answer(services, answer_privately, reply, logger=click.logger)
        else:
            channel = click.body["channel"]["id"]
            original = click.body["message"]
            thread_ts = original.get("thread_ts") or original["ts"]
            key = conversation_key(channel, thread_ts)
            reply, seconds = timed(
                lambda: converse(
                    services.engine,
                    services.store,
                    key,
                    question,
                    now=services.engine.clock(),
                    user_id=click.user_id,
                )
            )

            def post(message: Message) -> None:
                click.client.chat_postMessage(
                    channel=channel, thread_ts=thread_ts, **message.as_kwargs()
                )

            services.store.mark_bot_thread(channel, thread_ts)  # before posting, as events do
            message = send_answer(services, post, reply, logger=click.logger)
        record_question(services, "slack:follow-up-button", message, click.user_id, seconds)
    except Exception:
        apologize("follow-up", click.logger, click.reply_privately)


def ask_alone(click: Click) -> None:
    """ "Ask it on its own instead", under an answer that read a question as a follow-up: the
    same question answered without the conversation before it, posted where the answer is (its
    thread, or a DM's main view), and recorded as the conversation's latest turn, so the next
    follow-up is read about this answer."""
    services, question = click.services, click.value
    try:
        channel = click.body["channel"]["id"]
        thread_ts = click.body["message"].get("thread_ts")  # none in a DM's main view
        reply, seconds = timed(
            lambda: converse(
                services.engine,
                services.store,
                conversation_key(channel, thread_ts),
                question,
                now=services.engine.clock(),
                user_id=click.user_id,
                alone=True,
            )
        )

        def post(message: Message) -> None:
            click.client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, **message.as_kwargs()
            )

        message = send_answer(services, post, reply, logger=click.logger)
        record_question(services, "slack:ask-alone-button", message, click.user_id, seconds)
    except Exception:
        apologize("ask alone", click.logger, click.reply_privately)


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
    (FEEDBACK, feedback, False),
    (FEEDBACK_UP, feedback_up, False),
    (FEEDBACK_DOWN, feedback_down, False),
    (SHARE_ANSWER, share, True),
    (FOLLOW_UP_PATTERN, follow_up, True),
    (ASK_ALONE, ask_alone, True),
    (SHOW_HISTORY, show_history, False),
    (ASK_EXPERTS, experts.ask_experts, False),
    (MARK_ANSWER, experts.mark_answer, False),
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
    if not click.user_id or (not click.private and not id_of(body, "channel")):
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
