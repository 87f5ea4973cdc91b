"""The bolt app factory: one ``App`` with the listeners registered by kind, and the answering
threads, queue and rate limit they share.

Usage::

    store = Store.open(settings)
    bot = build_bot(settings, Engine.load(settings), store=store)
    SocketModeHandler(bot.app, settings.slack_app_token).connect()
    ...
    bot.shutdown(timeout=10.0)   # finish the answers in flight
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from slack_bolt import App
from slack_bolt.error import BoltError
from slack_sdk import WebClient

from bot import metrics
from bot.config import ConfigError, Settings
from bot.slack import listeners
from bot.slack.retries import retry_handlers
from bot.slack.services import Services, build_services
from bot.store import Store

if TYPE_CHECKING:
    from bot.answer import Engine

SLACK_API_URL = WebClient.BASE_URL  # "https://slack.com/api/"


@dataclass(frozen=True)
class Bot:
    """The bolt app and the services its listeners share."""

    app: App
    services: Services

    def shutdown(self, timeout: float) -> bool:
        """Finish the accepted answers, then the notices, within ``timeout`` seconds in all.

        Call once no new events can arrive; returns ``True`` when nothing was abandoned.
        """
        deadline = time.monotonic() + timeout
        answered = self.services.answers.drain(timeout)
        notified = self.services.notices.drain(max(deadline - time.monotonic(), 0.1))
        return answered and notified


def build_client(settings: Settings) -> WebClient:
    """A ``WebClient`` on ``SLACK_API_URL``, retrying rate limits, 5xx and dropped connections."""
    base_url = settings.slack_api_url or SLACK_API_URL
    return WebClient(
        token=settings.slack_bot_token,
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        retry_handlers=retry_handlers(),
    )


def build_bot(
    settings: Settings, engine: Engine, *, store: Store, client: WebClient | None = None
) -> Bot:
    """The bolt ``App`` with every ban-bot listener, and the services they share.

    Needs ``SLACK_BOT_TOKEN`` (or ``client``). Calls ``auth.test`` once, so a wrong token fails
    here with a clear error.
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
    services = build_services(settings, engine, store)
    listeners.register(app, services)
    metrics.set_index(engine.index.build_id)
    return Bot(app=app, services=services)


def _bolt_app(settings: Settings, client: WebClient) -> App:
    return App(
        client=client,
        # HttpSurface checks every signature before the body is read (bolt's check would come
        # after); Socket Mode has none to check. "" rather than None: bolt would otherwise read
        # SLACK_SIGNING_SECRET behind Settings' back.
        signing_secret=settings.slack_signing_secret or "",
        request_verification_enabled=False,
        name="ban-bot",
        logger=logging.getLogger("bot.slack.bolt"),
        # Listeners run before the response is sent, on the thread that received the request,
        # and only admit work to Services.answers: acknowledging never waits for an answer, and
        # an event Slack got a 200 for is either answered or its user told to try again.
        process_before_response=True,
        # Runs nothing of ours (no lazy listeners); bolt wants one all the same.
        listener_executor=ThreadPoolExecutor(max_workers=1, thread_name_prefix="ban-bot-bolt"),
    )
