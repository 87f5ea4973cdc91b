"""The bolt app factory: one ``App`` with the listeners registered by kind.

Usage::

    store = Store.open(settings)
    app = create_app(settings, Engine.load(settings), store=store)
    SocketModeHandler(app, settings.slack_app_token).start()
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from slack_bolt import App
from slack_bolt.error import BoltError
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot import metrics
from bot.config import ConfigError, Settings
from bot.slack import listeners
from bot.store import Store

if TYPE_CHECKING:
    from bot.answer import Engine

SLACK_API_URL = WebClient.BASE_URL  # "https://slack.com/api/"
logger = logging.getLogger("bot.slack")


@dataclass(frozen=True)
class Services:
    """What the listeners work with: passed to each ``register`` (never through bolt's context,
    which lazy listeners deep-copy)."""

    settings: Settings
    engine: Engine
    store: Store


def build_client(settings: Settings) -> WebClient:
    """A ``WebClient`` on ``SLACK_API_URL``, retrying rate limits, 5xx and dropped connections."""
    base_url = settings.slack_api_url or SLACK_API_URL
    return WebClient(
        token=settings.slack_bot_token,
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        retry_handlers=[
            RateLimitErrorRetryHandler(max_retry_count=2),
            ServerErrorRetryHandler(max_retry_count=2),
            ConnectionErrorRetryHandler(max_retry_count=2),
        ],
    )


def create_app(
    settings: Settings, engine: Engine, *, store: Store, client: WebClient | None = None
) -> App:
    """The bolt ``App`` with every ban-bot listener; needs ``SLACK_BOT_TOKEN`` (or ``client``).

    Calls ``auth.test`` once, so a wrong token fails here with a clear error.
    """
    if client is None:
        settings.require("SLACK_BOT_TOKEN")
        client = build_client(settings)
    try:
        app = _bolt_app(settings, client)
    except BoltError as e:
        if "auth.test" not in str(e):
            raise
        raise ConfigError(f"SLACK_BOT_TOKEN was not accepted by Slack: {e}") from None
    listeners.register(app, Services(settings=settings, engine=engine, store=store))
    metrics.set_index(engine.index.build_id)
    return app


def _bolt_app(settings: Settings, client: WebClient) -> App:
    return App(
        client=client,
        # "" rather than None: bolt would otherwise read SLACK_SIGNING_SECRET behind Settings' back.
        signing_secret=settings.slack_signing_secret or "",
        name="ban-bot",
        logger=logging.getLogger("bot.slack.bolt"),
        # Each answer holds a worker for tens of milliseconds; Settings.workers bounds the CPU use.
        listener_executor=ThreadPoolExecutor(
            max_workers=settings.workers, thread_name_prefix="ban-bot-listener"
        ),
    )
