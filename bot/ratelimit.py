"""Per-user rate limit on questions, so one person (or a loop between integrations posting as
people) cannot flood the bot or, through it, Slack's API.

A moving window from the ``limits`` library, in memory: each replica counts the questions it
answers itself. A user over the limit is told once per window; the questions after that notice
are dropped silently, so that the notices themselves cannot become the flood.

Usage::

    limiter = UserRateLimit(per_minute=settings.rate_limit_per_minute)
    verdict = limiter.check("U123")
    if verdict is Verdict.ALLOW: answer()
    elif verdict is Verdict.NOTIFY: tell_the_user_to_slow_down()
    # Verdict.SILENT: already told in this window; drop
"""

from __future__ import annotations

import enum

from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


class Verdict(enum.Enum):
    """What to do with one question."""

    ALLOW = "allow"
    NOTIFY = "notify"  # over the limit: drop it, and tell the user (first time in the window)
    SILENT = "silent"  # over the limit and already told


class UserRateLimit:
    """At most ``per_minute`` questions per user in any ``window`` seconds (60 by default);
    ``per_minute`` 0 or less turns the limit off."""

    def __init__(self, *, per_minute: int, window: int = 60) -> None:
        self.per_minute = per_minute
        self.window = window
        storage = MemoryStorage()
        self._limiter = MovingWindowRateLimiter(storage)
        self._questions = RateLimitItemPerSecond(max(per_minute, 1), window, namespace="question")
        self._notices = RateLimitItemPerSecond(1, window, namespace="notice")

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def check(self, user: str) -> Verdict:
        """Count one question by ``user`` and say whether to answer it."""
        if not self.enabled or self._limiter.hit(self._questions, user):
            return Verdict.ALLOW
        return Verdict.NOTIFY if self._limiter.hit(self._notices, user) else Verdict.SILENT
