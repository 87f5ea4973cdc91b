"""App Home: publish the Home tab (key deadlines, what the bot answers, how to ask) on open,
on an answering thread.

Usage::

    home.register(app, services)
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bot.handlers import help_reply, new_error_id
from bot.slack import log
from bot.slack.blocks import home_view
from bot.slack.listeners.common import admit, bind
from bot.slack.services import Services

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient


def register(app: App, services: Services) -> None:
    app.event("app_home_opened")(bind(on_home_opened, services))


def on_home_opened(
    services: Services, event: dict[str, Any], client: WebClient, logger: logging.Logger
) -> None:
    """The Home tab was opened: publish it on an answering thread."""
    if event.get("tab", "home") != "home":
        return  # the Messages tab needs nothing published
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
