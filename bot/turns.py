"""Conversations: the turns the bot answered, kept per thread, DM or chat session, so that a
follow-up is read in their context. Bounded: the last few turns, each question capped, so a
thread of 1,000 turns or junk in the store never slows or breaks an answer.

Usage::

    conversations = MemoryConversations()          # the local chat; Slack uses the Store
    conversations.record("chat", answer.turn, now=now)
    engine.answer("why?", context=conversations.context("chat", now=now))
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Turn:
    """One earlier question of a conversation and the entries it was answered with (best
    first; none when it was declined or small talk)."""

    question: str
    entry_ids: tuple[str, ...] = ()


# Context is bounded: only the last few turns, each question capped, so a long thread or junk in
# the store never slows an answer down.
MAX_TURNS = 4
MAX_TURN_CHARS = 500


class Conversations(Protocol):
    """Where the turns of conversations are kept: the store (Slack, shared by replicas) or
    memory (the local chat). ``key`` names a conversation: a thread, a DM, a chat session."""

    def context(
        self, key: str, *, now: dt.datetime, gap: dt.timedelta | None = None
    ) -> list[Turn]: ...

    def record(
        self, key: str, turn: Turn, *, now: dt.datetime, user_id: str | None = None
    ) -> None: ...


def recent(
    turns: Sequence[tuple[dt.datetime, Turn]], now: dt.datetime, gap: dt.timedelta | None
) -> list[Turn]:
    """The last ``MAX_TURNS`` turns (oldest first) since the latest quiet ``gap``, if any."""
    out: list[Turn] = []
    later = now
    for when, turn in sorted(turns, key=lambda t: t[0], reverse=True)[:MAX_TURNS]:
        if gap is not None and later - when > gap:
            break
        out.append(turn)
        later = when
    return out[::-1]


class MemoryConversations:
    """Conversations kept in this process (the local chat: the previous lines are the context)."""

    def __init__(self) -> None:
        self._turns: dict[str, list[tuple[dt.datetime, Turn]]] = {}

    def context(self, key: str, *, now: dt.datetime, gap: dt.timedelta | None = None) -> list[Turn]:
        return recent(self._turns.get(key, []), now, gap)

    def record(self, key: str, turn: Turn, *, now: dt.datetime, user_id: str | None = None) -> None:
        turns = self._turns.setdefault(key, [])
        turns.append((now, Turn(turn.question[:MAX_TURN_CHARS], turn.entry_ids)))
        del turns[:-MAX_TURNS]
