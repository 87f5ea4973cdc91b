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
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
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


def _haystack(event: TimelineEvent) -> str:
    return " ".join([event.id, event.title, event.what, *event.keywords, format_date(event)])


def _stemmer() -> Callable[[str], str]:
    """A Snowball stem function, safe to call from several threads."""
    import snowballstemmer

    stemmer = snowballstemmer.stemmer("english")
    lock = threading.Lock()  # Slack answers commands on several threads; a stemmer has state

    def stem(word: str) -> str:
        with lock:
            return str(stemmer.stemWord(word))

    return stem


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


def format_partial_date(date: str) -> str:
    """A ``YYYY[-MM[-DD]]`` date as people write it: "June 24, 2024", "June 2024", "2024"."""
    try:
        y, m, d = _parts(date)
        if m is None:
            return str(y)
        if d is None:
            return f"{MONTHS[m - 1]} {y}"
        return f"{MONTHS[m - 1]} {d}, {y}"
    except (ValueError, IndexError):
        return date


def format_date(event: TimelineEvent) -> str:
    """The event's date as people write it: "September 29, 2024, 12:00 a.m. EDT", "August 2021"."""
    text = format_partial_date(event.date)
    instant = event_instant(event)
    if instant is not None:
        hour = instant.hour % 12 or 12
        suffix = "a.m." if instant.hour < 12 else "p.m."
        text += f", {hour}:{instant.minute:02d} {suffix} {instant.tzname()}"
    return text


# Words that ask for every date, the background history included, rather than a search.
HISTORY_WORDS = frozenset({"history", "all", "full", "everything", "timeline"})
_WORD = re.compile(r"[a-z0-9]+(?:[.-][a-z0-9]+)*")
_MONTH_ABBREVIATIONS = {m[:3].lower(): m.lower() for m in MONTHS} | {"sept": "september"}


@dataclass(frozen=True)
class Selection:
    """Which events a deadlines view shows. ``scope`` is ``key`` (the ban's own deadlines, the
    default), ``all`` (every date, asked for with a word such as ``history``) or ``match``
    (the dates that mention the word); ``hidden`` counts the dates the key view leaves out."""

    events: tuple[TimelineEvent, ...]
    scope: str
    word: str = ""
    hidden: int = 0


class Timeline:
    """The ban's dated events in order, with filtering and their standing against a clock."""

    def __init__(self, events: Iterable[TimelineEvent]) -> None:
        self.events: tuple[TimelineEvent, ...] = tuple(
            sorted(events, key=lambda e: (event_day(e), e.time or ""))
        )
        self._stem = _stemmer()
        self._words = {e.id: self._stems(_haystack(e)) for e in self.events}

    @property
    def key_events(self) -> tuple[TimelineEvent, ...]:
        return tuple(e for e in self.events if e.key)

    def _stems(self, text: str) -> frozenset[str]:
        words = (_MONTH_ABBREVIATIONS.get(w, w) for w in _WORD.findall(text.lower()))
        return frozenset(self._stem(w) for w in words)

    def filter(self, word: str | None) -> tuple[TimelineEvent, ...]:
        """Events whose title, text, keywords, id or date mention every word of ``word`` as a
        whole word (any case, any inflection: "update" finds "updates", "far" not "farewell")."""
        wanted = self._stems(word or "")
        if not wanted:
            return self.events
        return tuple(e for e in self.events if wanted <= self._words[e.id])

    def select(self, word: str | None) -> Selection:
        """What ``/ban-deadlines [word]`` shows: the key deadlines by default, everything for a
        word such as ``history``, else the dates that mention the word."""
        word = " ".join((word or "").split())
        if not word:
            shown = self.key_events or self.events
            return Selection(shown, "key", hidden=len(self.events) - len(shown))
        if word.lower() in HISTORY_WORDS:
            return Selection(self.events, "all", word)
        return Selection(self.filter(word), "match", word)

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
