"""App Home and the bot's DM: publish the Home tab (key deadlines, what the bot answers, how to
ask) on open; when the DM (the Messages tab, or an agent thread) opens, suggest the engine's
example questions as Slack's suggested prompts where the workspace has them. Both on an
answering thread.

Usage::

    home.register(app, services)
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bot.handlers import help_reply, new_error_id
from bot.slack import log
from bot.slack.blocks import home_view, suggested_prompts
from bot.slack.features import SUGGESTED_PROMPTS
from bot.slack.listeners.common import admit, bind
from bot.slack.services import Services

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

PROMPTS_TITLE = "Ask me about the 2024 US ban on Kaspersky software"


def register(app: App, services: Services) -> None:
    app.event("app_home_opened")(bind(on_home_opened, services))
    app.event("assistant_thread_started")(bind(on_assistant_thread_started, services))


def on_home_opened(
    services: Services, event: dict[str, Any], client: WebClient, logger: logging.Logger
) -> None:
    """The Home tab was opened: publish it. The Messages tab (the DM; under Slack's agent view
    its opening too): suggest questions there."""
    tab = event.get("tab", "home")
    if tab == "messages":
        # Under agent view the prompts belong to the conversation, so no thread is named.
        suggest_prompts(services, client, event.get("channel"), None, logger)
        return
    if tab != "home":
        return
    user = event.get("user")
    if not isinstance(user, str) or not user:
        return  # Slack always names the user; nobody to publish for otherwise

    def publish() -> None:
        try:
            client.views_publish(user_id=user, view=home_view(help_reply(services.engine)))
        except Exception:
            # No channel to apologize in: the log has it, and the next open tries again.
            logger.exception(log.error_answering("app home", new_error_id()))

    # Nobody to tell when the queue is full: the next open tries again.
    admit(
        services,
        publish,
        where="app home",
        logger=logger,
        user_id=None,
        notify=None,
        rate_limited=False,
    )


def on_assistant_thread_started(
    services: Services, event: dict[str, Any], client: WebClient, logger: logging.Logger
) -> None:
    """A new thread in the assistant container (apps with Slack's assistant view): suggest
    questions in it."""
    thread = event.get("assistant_thread")
    if not isinstance(thread, dict):
        return
    thread_ts = thread.get("thread_ts")
    if isinstance(thread_ts, str) and thread_ts:
        suggest_prompts(services, client, thread.get("channel_id"), thread_ts, logger)


def suggest_prompts(
    services: Services,
    client: WebClient,
    channel: object,
    thread_ts: str | None,
    logger: logging.Logger,
) -> None:
    """Set the engine's example questions as suggested prompts in ``channel`` (a DM), unless
    this workspace refused them before: then nothing, as for a classic bot."""
    features = services.features
    if not isinstance(channel, str) or not channel or not features.available(SUGGESTED_PROMPTS):
        return

    def suggest() -> None:
        prompts = suggested_prompts(help_reply(services.engine).examples)
        try:
            client.assistant_threads_setSuggestedPrompts(
                channel_id=channel, thread_ts=thread_ts, title=PROMPTS_TITLE, prompts=prompts
            )
        except Exception as e:
            features.refused(SUGGESTED_PROMPTS, e, logger)  # logged (once, if it is missing)

    admit(
        services,
        suggest,
        where="suggested prompts",
        logger=logger,
        user_id=None,
        notify=None,
        rate_limited=False,
    )
