"""What the Slack listeners work with: the settings, the engine, the store, the answering and
notice threads and the per-user rate limit.

Each listeners module's ``register`` is handed the one ``Services``; it never travels through
bolt's context, which bolt copies for every request.

Usage::

    services = build_services(settings, engine, store)
    services.answers.submit(job)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.config import Settings
from bot.ratelimit import UserRateLimit
from bot.slack.workers import WorkerPool
from bot.store import Store

if TYPE_CHECKING:
    from bot.answer import Engine

# "Try again" and "slow down" notices: one thread is plenty (a notice is one short post), and
# when this many are waiting Slack itself is not keeping up, so further ones are only logged.
NOTICE_WORKERS = 1
NOTICE_QUEUE = 1000


@dataclass(frozen=True)
class Services:
    """The settings, engine and store, and the threads and rate limit every listener shares."""

    settings: Settings
    engine: Engine
    store: Store
    answers: WorkerPool
    notices: WorkerPool
    limiter: UserRateLimit


def build_services(settings: Settings, engine: Engine, store: Store) -> Services:
    """The answering threads (``BAN_BOT_WORKERS``) behind a queue of ``BAN_BOT_QUEUE_SIZE``, the
    notice thread and the per-user rate limit (``BAN_BOT_RATE_LIMIT``)."""
    return Services(
        settings=settings,
        engine=engine,
        store=store,
        answers=WorkerPool(workers=settings.workers, queue_size=settings.queue_size, name="answer"),
        notices=WorkerPool(workers=NOTICE_WORKERS, queue_size=NOTICE_QUEUE, name="notice"),
        limiter=UserRateLimit(per_minute=settings.rate_limit_per_minute),
    )
