"""Deadlines and where they stand against today.

Usage::

    tl = Timeline(knowledge.timeline)
    for ev in tl.filter("updates"):
        print(format_date(ev), tl.standing(ev, now))
        # "September 29, 2024, 12:00 a.m. EDT", "2 years ago"
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from zoneinfo import ZoneInfo

from bot.knowledge import TimelineEvent

Clock = Callable[[], dt.datetime]
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_FULL_DATE = re.compile(rf"\b({'|'.join(MONTHS)}) (\d{{1,2}}), (\d{{4}})\b")


def utc_now() -> dt.datetime:
    """The real clock (aware, UTC); tests inject their own."""
    return dt.datetime.now(dt.UTC)


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}{'' if n == 1 else 's'}"


def relative_phrase(when: dt.date, today: dt.date) -> str:
    """Where ``when`` stands against ``today``: "today", "in 3 days", "2 years ago"."""
    days = (when - today).days
    if days == 0:
        return "today"
    if days == 1:
        return "tomorrow"
    if days == -1:
        return "yesterday"
    n = abs(days)
    if n < 31:
        span = _plural(n, "day")
    else:
        # Count whole months between the two dates, earlier to later.
        early, late = sorted((when, today))
        months = (late.year - early.year) * 12 + (late.month - early.month)
        if late.day < early.day:
            months -= 1
        months = max(months, 1)
        span = _plural(months, "month") if months < 12 else _plural(months // 12, "year")
    return f"in {span}" if days > 0 else f"{span} ago"


def annotate_dates(text: str, today: dt.date) -> str:
    """Append where each full date stands: "September 29, 2024 (2 years ago)"."""

    def repl(m: re.Match[str]) -> str:
        try:
            when = dt.date(int(m.group(3)), MONTHS.index(m.group(1)) + 1, int(m.group(2)))
        except ValueError:
            return m.group(0)
        return f"{m.group(0)} ({relative_phrase(when, today)})"

    return _FULL_DATE.sub(repl, text)


def _parts(date: str) -> tuple[int, int | None, int | None]:
    bits = [int(b) for b in date.split("-")]
    return bits[0], (bits[1] if len(bits) > 1 else None), (bits[2] if len(bits) > 2 else None)


def event_instant(event: TimelineEvent) -> dt.datetime | None:
    """The exact instant of an event with a time and zone, else ``None``."""
    if event.time is None or event.zone is None:
        return None
    y, m, d = _parts(event.date)
    hh, mm = (int(x) for x in event.time.split(":"))
    return dt.datetime(y, m or 1, d or 1, hh, mm, tzinfo=ZoneInfo(event.zone))


def event_day(event: TimelineEvent) -> dt.date:
    """The day an event falls on; a partial date counts from its first day (for sorting)."""
    y, m, d = _parts(event.date)
    return dt.date(y, m or 1, d or 1)


def format_date(event: TimelineEvent) -> str:
    """The event's date as people write it: "September 29, 2024, 12:00 a.m. EDT", "August 2021"."""
    y, m, d = _parts(event.date)
    if m is None:
        return str(y)
    if d is None:
        return f"{MONTHS[m - 1]} {y}"
    text = f"{MONTHS[m - 1]} {d}, {y}"
    instant = event_instant(event)
    if instant is not None:
        hour = instant.hour % 12 or 12
        suffix = "a.m." if instant.hour < 12 else "p.m."
        text += f", {hour}:{instant.minute:02d} {suffix} {instant.tzname()}"
    return text


class Timeline:
    """The ban's dated events in order, with filtering and their standing against a clock."""

    def __init__(self, events: Iterable[TimelineEvent]) -> None:
        self.events: tuple[TimelineEvent, ...] = tuple(
            sorted(events, key=lambda e: (event_day(e), e.time or ""))
        )

    @property
    def key_events(self) -> tuple[TimelineEvent, ...]:
        return tuple(e for e in self.events if e.key)

    def filter(self, word: str | None) -> tuple[TimelineEvent, ...]:
        """Events whose title, text, keywords or id mention every word of ``word`` (any case)."""
        words = [w for w in re.split(r"\W+", (word or "").lower()) if w]
        if not words:
            return self.events

        def haystack(e: TimelineEvent) -> str:
            return " ".join([e.id, e.title, e.what, *e.keywords, format_date(e)]).lower()

        return tuple(e for e in self.events if all(w in haystack(e) for w in words))

    def standing(self, event: TimelineEvent, now: dt.datetime) -> str:
        """Where the event stands against ``now``: "2 years ago", "in 3 days", "today"."""
        instant = event_instant(event)
        if instant is not None:
            local_today = now.astimezone(instant.tzinfo).date()
            if instant <= now and instant.date() == local_today:
                return "today"
            return relative_phrase(instant.date(), local_today)
        y, m, d = _parts(event.date)
        today = now.date()
        ref = dt.date(y, m or 1, d or 1)
        # A month or a year only: no false precision about the day.
        if d is None and ref <= today:
            if m is not None and (y, m) == (today.year, today.month):
                return "this month"
            if m is None and y == today.year:
                return "this year"
        return relative_phrase(ref, today)

    def is_past(self, event: TimelineEvent, now: dt.datetime) -> bool:
        instant = event_instant(event)
        if instant is not None:
            return instant <= now
        return event_day(event) <= now.date()
