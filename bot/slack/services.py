"""What the Slack listeners work with: the settings, the engine, the store, the answering and
notice threads, the per-user rate limit and which optional Slack features this workspace has.

Each listeners module's ``register`` is handed the one ``Services``; it never travels through
bolt's context, which bolt copies for every request.

Usage::

    services = build_services(settings, engine, store)
    services.answers.submit(job)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.config import ConfigError, Settings
from bot.ratelimit import UserRateLimit
from bot.slack.features import OptionalFeatures
from bot.slack.workers import WorkerPool
from bot.store import Store

if TYPE_CHECKING:
    from bot.answer import Engine

# "Try again" and "slow down" notices: one thread is plenty (a notice is one short post), and
# when this many are waiting Slack itself is not keeping up, so further ones are only logged.
NOTICE_WORKERS = 1
NOTICE_QUEUE = 1000
# Channel ids (public C..., private G...) and user group ids (S...), as Slack shows them under a
# channel's or a group's details.
_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")
_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")


@dataclass(frozen=True)
class Services:
    """The settings, engine and store, and the threads and rate limit every listener shares."""

    settings: Settings
    engine: Engine
    store: Store
    answers: WorkerPool
    notices: WorkerPool
    limiter: UserRateLimit
    features: OptionalFeatures

    @property
    def experts(self) -> bool:
        """Can a question be sent to the experts (``BAN_BOT_EXPERTS_CHANNEL``)?"""
        return self.settings.experts_channel is not None


def check_slack_settings(settings: Settings) -> None:
    """Raise ``ConfigError`` (one sentence naming the variable) for an experts or help channel
    setting that cannot be right."""
    channel, group = settings.experts_channel, settings.experts_group
    if channel is not None and not _CHANNEL_ID.match(channel):
        raise ConfigError(
            f"BAN_BOT_EXPERTS_CHANNEL must be a channel id such as C0123ABCD (in Slack: the "
            f"channel's name -> About), got {channel!r}."
        )
    if group is not None and not _GROUP_ID.match(group):
        raise ConfigError(
            "BAN_BOT_EXPERTS_GROUP must be a user group id such as S0123ABCD (in Slack: the "
            f"group's menu -> Copy group ID), got {group!r}."
        )
    if group is not None and channel is None:
        raise ConfigError(
            "BAN_BOT_EXPERTS_GROUP is set but BAN_BOT_EXPERTS_CHANNEL is not: set the channel "
            "where the group is asked."
        )
    for help_channel in settings.help_channels:
        if not _CHANNEL_ID.match(help_channel):
            raise ConfigError(
                "BAN_BOT_HELP_CHANNELS must be channel ids such as C0123ABCD, separated by "
                f"commas, got {help_channel!r}."
            )


def build_services(settings: Settings, engine: Engine, store: Store) -> Services:
    """The answering threads (``BAN_BOT_WORKERS``) behind a queue of ``BAN_BOT_QUEUE_SIZE``, the
    notice thread and the per-user rate limit (``BAN_BOT_RATE_LIMIT``).

    Raises ``ConfigError`` for a bad ``BAN_BOT_EXPERTS_*`` or ``BAN_BOT_HELP_CHANNELS``.
    """
    check_slack_settings(settings)
    return Services(
        settings=settings,
        engine=engine,
        store=store,
        answers=WorkerPool(workers=settings.workers, queue_size=settings.queue_size, name="answer"),
        notices=WorkerPool(workers=NOTICE_WORKERS, queue_size=NOTICE_QUEUE, name="notice"),
        limiter=UserRateLimit(per_minute=settings.rate_limit_per_minute),
        features=OptionalFeatures(),
    )
