"""Asking the experts (``BAN_BOT_EXPERTS_CHANNEL``, optionally ``BAN_BOT_EXPERTS_GROUP``): the
"Ask the experts" click, the replies people give in an escalated thread, and marking one of them
as the answer (its button, or ✅ on it).

Nothing a button carries is trusted: its value only names an escalation or a reply, which is
looked up in the store; only the asker may send their question, once, and only someone other
than the asker may mark an answer.

Usage::

    experts.register(app, services)            # the ✅ reaction
    experts.ask_experts(click)                 # what the "Ask the experts" button runs
    if experts.capture_reply(services, client, event, logger=logger):
        return                                 # an expert's reply: kept, not answered
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.slack import log
from bot.slack.blocks import (
    Message,
    already_escalated_notice,
    answer_marked_notice,
    asker_cannot_mark_notice,
    escalated_notice,
    escalation_unknown_notice,
    expert_answer_message,
    experts_post,
    not_the_asker_notice,
    reply_recorded_notice,
    reply_unknown_notice,
)
from bot.slack.features import slack_error
from bot.slack.listeners.common import Click, admit, apologize, bind
from bot.slack.services import Services
from bot.store import Escalation, ExpertReply
from bot.text import slack_to_plain

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

# ✅ and its look-alikes mark a reply as the answer.
ANSWER_REACTIONS = frozenset({"white_check_mark", "heavy_check_mark", "ballot_box_with_check"})
_KEY = re.compile(r"^([CGD][A-Z0-9]{1,30}):(\d{1,12}\.\d{1,9})$")
_REPLY_ID = re.compile(r"^\d{1,15}$")


def register(app: App, services: Services) -> None:
    app.event("reaction_added")(bind(on_reaction_added, services))


def offer(
    services: Services,
    message: Message,
    channel: str,
    ts: str,
    thread_ts: str | None,
    user: str,
) -> None:
    """Remember the question ``message`` answers, so that its asker can send it to the experts
    (a decline's button, a 👎's thanks): before the message is posted, since a click can follow
    at once."""
    services.store.offer_escalation(
        channel=channel,
        message_ts=ts,
        thread_ts=thread_ts,
        user_id=user,
        question=message.question or "",
        entry_ids=message.entry_ids,
        declined=message.declined,
    )


def _named(services: Services, key: str | None) -> Escalation | None:
    """The escalation a button's value names, looked up; ``None`` for anything else."""
    found = _KEY.match(key or "")
    return services.store.escalation(found.group(1), found.group(2)) if found else None


def offer_after_down_vote(services: Services, key: str | None, user: str) -> str | None:
    """The escalation key to offer with a 👎's thanks: only to the asker, only if unsent."""
    if not services.experts:
        return None
    escalation = _named(services, key)
    if escalation is None or escalation.sent or not services.store.is_asker(escalation, user):
        return None
    return escalation.key


def ask_experts(click: Click) -> None:
    """ "Ask the experts": post the question in the experts' channel, once, for its asker."""
    services, store, user = click.services, click.services.store, click.user_id
    assert user is not None  # on_click drops clicks without a user
    try:
        escalation = _named(services, click.value) if services.experts else None
        if escalation is None:
            click.logger.warning(log.escalation_refused("unknown", store.hash_user(user)))
            click.reply_privately(escalation_unknown_notice())
            return
        if not store.is_asker(escalation, user):
            click.logger.warning(log.escalation_refused("not the asker", store.hash_user(user)))
            click.reply_privately(not_the_asker_notice())
            return
        if escalation.sent or not store.claim_escalation(escalation.id):
            click.reply_privately(already_escalated_notice())
            return
        channel = services.settings.experts_channel
        assert channel is not None
        try:
            permalink = _permalink(click.client, escalation, click.logger)
            post = experts_post(
                escalation, asker=user, group=services.settings.experts_group, permalink=permalink
            )
            response = click.client.chat_postMessage(
                channel=channel, unfurl_links=False, unfurl_media=False, **post.as_kwargs()
            )
        except Exception as e:
            store.release_escalation(escalation.id)  # so that the asker can try again
            click.logger.error(log.experts_post_failed(channel, slack_error(e) or type(e).__name__))
            raise
        store.escalation_sent(
            escalation.id,
            experts_channel=channel,
            experts_ts=str(response["ts"]),
            permalink=permalink,
        )
        click.reply_privately(escalated_notice(channel))
    except Exception:
        apologize("ask the experts", click.logger, click.reply_privately)


def _permalink(client: WebClient, escalation: Escalation, logger: logging.Logger) -> str | None:
    try:
        response = client.chat_getPermalink(
            channel=escalation.channel, message_ts=escalation.message_ts
        )
    except Exception as e:
        logger.warning(log.permalink_failed(slack_error(e) or type(e).__name__))
        return None
    link = response.get("permalink")
    return link if isinstance(link, str) else None


def capture_reply(
    services: Services, client: WebClient, event: dict[str, Any], *, logger: logging.Logger
) -> bool:
    """Keep a reply in an escalated thread by someone other than the asker, and tell them
    privately, with the button that marks it as the answer. Returns whether it was such a
    reply (then it is not answered as a follow-up)."""
    channel, thread_ts, user = event["channel"], event.get("thread_ts"), event["user"]
    if not services.experts or not thread_ts:
        return False
    escalation = services.store.escalation_in_thread(channel, thread_ts)
    if escalation is None or services.store.is_asker(escalation, user):
        return False
    text = event.get("text") or ""

    def keep() -> None:
        def tell(message: Message) -> None:
            client.chat_postEphemeral(
                channel=channel, user=user, thread_ts=thread_ts, **message.as_kwargs()
            )

        try:
            if not slack_to_plain(text):
                return  # a file or an emoji alone: nothing a curator could use
            reply_id = services.store.record_expert_reply(
                escalation.id, channel=channel, message_ts=event["ts"], user_id=user, text=text
            )
            if reply_id is not None:  # None: this message was kept before
                tell(reply_recorded_notice(reply_id, services.settings.retention_days))
        except Exception:
            apologize("expert reply", logger, tell)

    admit(
        services,
        keep,
        where="expert reply",
        logger=logger,
        user_id=user,
        notify=None,
        rate_limited=False,
    )
    return True


def mark_answer(click: Click) -> None:
    """ "Mark as the answer" under the acknowledgement of a reply."""
    store, user = click.services.store, click.user_id
    assert user is not None
    try:
        found = _REPLY_ID.match(click.value)
        reply = store.expert_reply(int(click.value)) if found else None
        _mark(click.services, click.client, reply, user, click.reply_privately, click.logger)
    except Exception:
        apologize("mark the answer", click.logger, click.reply_privately)


def on_reaction_added(
    services: Services, event: dict[str, Any], client: WebClient, logger: logging.Logger
) -> None:
    """✅ on a kept reply marks it as the answer; every other reaction is none of ours."""
    item, user, reaction = event.get("item"), event.get("user"), event.get("reaction")
    if (
        not services.experts
        or not isinstance(reaction, str)  # a signed but malformed event must not crash us
        or reaction not in ANSWER_REACTIONS
        or not isinstance(item, dict)
        or item.get("type") != "message"
        or not isinstance(user, str)
        or not user
    ):
        return
    channel, ts = item.get("channel"), item.get("ts")
    if not isinstance(channel, str) or not isinstance(ts, str):
        return

    def mark() -> None:
        reply = services.store.expert_reply_at(channel, ts)
        if reply is None:
            return  # ✅ on some other message

        def tell(message: Message) -> None:
            escalation = services.store.escalation_by_id(reply.escalation_id)
            client.chat_postEphemeral(
                channel=channel,
                user=user,
                thread_ts=_thread_of(reply, escalation),
                **message.as_kwargs(),
            )

        try:
            _mark(services, client, reply, user, tell, logger)
        except Exception:
            apologize("mark the answer", logger, tell)

    admit(
        services,
        mark,
        where="answer reaction",
        logger=logger,
        user_id=user,
        notify=None,
        rate_limited=False,
    )


def _thread_of(reply: ExpertReply, escalation: Escalation | None) -> str | None:
    """The thread a kept reply was written in: the experts' post's, or the original one."""
    if escalation is None:
        return None
    if reply.channel == escalation.experts_channel and escalation.channel != reply.channel:
        return escalation.experts_ts
    return escalation.thread_ts


def _mark(
    services: Services,
    client: WebClient,
    reply: ExpertReply | None,
    user: str,
    tell: Callable[[Message], Any],
    logger: logging.Logger,
) -> None:
    store = services.store
    escalation = store.escalation_by_id(reply.escalation_id) if reply is not None else None
    if reply is None or escalation is None:
        logger.warning(log.escalation_refused("no such reply", store.hash_user(user)))
        tell(reply_unknown_notice())
        return
    if store.is_asker(escalation, user):
        logger.warning(log.escalation_refused("the asker marking", store.hash_user(user)))
        tell(asker_cannot_mark_notice())
        return
    marked = store.mark_answer(reply)
    tell(answer_marked_notice(first=marked == "first"))
    # The first answer from the experts' own thread reaches the asker where they asked; one in
    # the original thread they have seen already.
    if marked == "first" and _thread_of(reply, escalation) == escalation.experts_ts:
        client.chat_postMessage(
            channel=escalation.channel,
            thread_ts=escalation.thread_ts,
            **expert_answer_message(reply).as_kwargs(),
        )
