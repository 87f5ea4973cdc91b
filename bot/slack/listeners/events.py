"""Events: @mentions (answered in the thread), DMs, follow-ups in the bot's threads, every
top-level message of a help channel (``BAN_BOT_HELP_CHANNELS``), replies in escalated threads
(kept for the curators: ``listeners/experts.py``); and the global middleware that makes sure no
event is answered twice. Each listener is a plain function of the ``Services`` and what bolt
passes; ``register`` binds them.

Usage::

    events.register(app, services)
    on_mention(services, body=body, event=body["event"], client=client, logger=logger)
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_bolt import BoltContext, BoltRequest, BoltResponse

from bot.handlers import converse
from bot.slack import log
from bot.slack.blocks import Message, slack_message
from bot.slack.listeners import experts
from bot.slack.listeners.common import (
    admit,
    apologize,
    bind,
    conversation_key,
    record_question,
    send_answer,
    timed,
    working_indicator,
)
from bot.slack.services import Services

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

# Messages a person wrote; every other subtype (edits, joins, deletions, bots...) is ignored.
_PERSON_SUBTYPES = {None, "thread_broadcast", "file_share"}


def register(app: App, services: Services) -> None:
    app.middleware(bind(drop_repeats, services))
    app.event("app_mention")(bind(on_mention, services))
    app.event("message")(bind(on_message, services))


def drop_repeats(
    services: Services,
    body: dict[str, Any],
    request: BoltRequest,
    next: Callable[[], None],
    logger: logging.Logger,
) -> BoltResponse | None:
    """Global middleware: acknowledge and drop any event id already handled, Slack's retries
    included."""
    if body.get("type") != "event_callback":
        next()
        return None
    event_id = body.get("event_id")
    # Socket Mode reports a first delivery as retry_attempt 0; HTTP sends no header at all.
    retry_num = request.headers.get("x-slack-retry-num", ["0"])[0]
    reason = request.headers.get("x-slack-retry-reason", [None])[0]
    is_retry = retry_num not in ("", "0")
    extra = {"event_id": event_id}
    # Marked before the listener admits it (and before the ack): a retry of an event being
    # answered is dropped here, while a retry of one whose first delivery never got in (a
    # 503 while the engine loaded, a replica that died before marking it) is answered.
    if event_id and not services.store.mark_event_seen(str(event_id)):
        if is_retry:
            logger.info(log.dropped_retry(retry_num, reason, str(event_id)), extra=extra)
        else:
            logger.info(log.dropped_repeat(str(event_id)), extra=extra)
        return BoltResponse(status=200, body="")
    if is_retry:
        logger.info(log.answering_retry(retry_num, reason, event_id), extra=extra)
    next()
    return None


def on_mention(
    services: Services,
    body: dict[str, Any],
    event: dict[str, Any],
    client: WebClient,
    logger: logging.Logger,
) -> None:
    """An @mention: answered in the thread of the message, or in its thread if it is in one."""
    if _not_a_person(event):
        return
    thread_ts = event.get("thread_ts") or event["ts"]
    answer_in(services, client, body, thread_ts=thread_ts, surface="mention", logger=logger)


def on_message(
    services: Services,
    body: dict[str, Any],
    event: dict[str, Any],
    client: WebClient,
    context: BoltContext,
    logger: logging.Logger,
) -> None:
    """A DM (answered in the DM); a reply in an escalated thread by someone other than the
    asker (kept for the curators); a reply in a thread the bot answered in (answered there,
    without a mention; silence rather than a decline); a top-level message in a help channel
    (answered in its thread when the bot is confident, else silence)."""
    if _not_a_person(event):
        return
    channel, thread_ts = event.get("channel", ""), event.get("thread_ts")
    if event.get("channel_type") == "im":
        answer_in(services, client, body, thread_ts=thread_ts, surface="dm", logger=logger)
        return
    mentioned = bool(context.bot_user_id) and f"<@{context.bot_user_id}" in event.get("text", "")
    if mentioned:
        return  # app_mention's to answer
    if thread_ts:
        bot_thread = services.store.is_bot_thread(channel, thread_ts)
        # An escalated thread is one the bot answered in, or the thread of its post in the
        # experts' channel: only those are looked up.
        if (bot_thread or channel == services.settings.experts_channel) and experts.capture_reply(
            services, client, event, logger=logger
        ):
            return
        if bot_thread:
            # People also talk to each other in the thread ("thanks!"): without a mention, a
            # question the bot cannot answer gets silence rather than a decline.
            answer_in(
                services,
                client,
                body,
                thread_ts=thread_ts,
                surface="follow-up",
                logger=logger,
                quiet_decline=True,
            )
        return
    if channel in services.settings.help_channels:
        # Every message there is a question, but people mostly help each other: the bot speaks
        # only when it has an answer, in the message's thread.
        answer_in(
            services,
            client,
            body,
            thread_ts=event["ts"],
            surface="help-channel",
            logger=logger,
            quiet_decline=True,
        )


def _not_a_person(event: dict[str, Any]) -> bool:
    """Other bots, anything that is not a person writing a message, and anything not shaped like
    one (Slack never sends those; a signed request still must not crash us). The bot's own
    events never get here: bolt's IgnoringSelfEvents middleware acknowledges and drops them."""
    return (
        not _shaped_like_a_message(event)
        or bool(event.get("bot_id"))
        or event.get("subtype") not in _PERSON_SUBTYPES
    )


def _shaped_like_a_message(event: dict[str, Any]) -> bool:
    required = all(isinstance(event.get(k), str) and event[k] for k in ("user", "channel", "ts"))
    optional = all(
        isinstance(event.get(k), str | None)
        for k in ("text", "thread_ts", "subtype", "channel_type")
    )
    return required and optional


def answer_in(
    services: Services,
    client: WebClient,
    body: dict[str, Any],
    *,
    thread_ts: str | None,
    surface: str,
    logger: logging.Logger,
    quiet_decline: bool = False,
) -> None:
    """Answer the event's text in its channel (in ``thread_ts`` when given), once per message,
    on an answering thread; with ``quiet_decline``, post nothing when the engine declines.

    Returns at once. A user over the rate limit, or a full queue, gets a short notice instead:
    only they see it in a channel, and it is skipped for ``quiet_decline`` follow-ups, which are
    often people talking to each other rather than to the bot.
    """
    event, event_id = body["event"], body.get("event_id")
    channel, ts, user = event["channel"], event["ts"], event.get("user")
    # The same message can arrive as app_mention and as message.channels: answer it once.
    if not services.store.mark_event_seen(f"message:{channel}:{ts}"):
        return

    def post(message: Message) -> None:
        client.chat_postMessage(channel=channel, thread_ts=thread_ts, **message.as_kwargs())

    def notify(message: Message) -> None:
        if event.get("channel_type") == "im":
            post(message)
        else:
            client.chat_postEphemeral(
                channel=channel, user=user, thread_ts=thread_ts, **message.as_kwargs()
            )

    # The conversation is the thread; a DM's main view is one conversation whose context ends
    # after a quiet gap (BAN_BOT_DM_CONTEXT_MINUTES), so tomorrow's question stands alone.
    key = conversation_key(channel, thread_ts)
    gap = None
    if surface == "dm" and not thread_ts:
        gap = dt.timedelta(minutes=services.settings.dm_context_minutes)
    # The question's own message names it, should its asker want to ask the experts.
    escalation_key = f"{channel}:{ts}" if services.experts and user else None

    def job() -> None:
        try:
            with working_indicator(
                client,
                channel,
                ts,
                after=services.settings.working_reaction_after,
                logger=logger,
                thread_ts=thread_ts,
                features=services.features,
            ):
                now = services.engine.clock()
                text = event.get("text", "")
                reply, seconds = timed(
                    lambda: converse(
                        services.engine, services.store, key, text, now=now, gap=gap, user_id=user
                    )
                )

                def send(message: Message) -> None:
                    # Both before the post: a click, or a reply in the thread, may come at once.
                    if message.escalation and user:
                        experts.offer(services, message, channel, ts, thread_ts, user)
                    if thread_ts and surface != "dm":
                        services.store.mark_bot_thread(channel, thread_ts)
                    post(message)

                if quiet_decline:
                    unsent = slack_message(reply)
                    if unsent.declined or unsent.question is None:
                        record_question(services, f"slack:{surface}", unsent, user, seconds)
                        return
                message = send_answer(
                    services, send, reply, logger=logger, ask_experts=escalation_key
                )
            record_question(services, f"slack:{surface}", message, user, seconds)
        except Exception:
            apologize(surface, logger, post, event_id=event_id)

    admit(
        services,
        job,
        where=surface,
        logger=logger,
        user_id=user,
        notify=None if quiet_decline else notify,
        event_id=event_id,
    )
