"""What the bot says, before any surface formats it: one reply model for every surface.

Handlers (``bot/handlers.py``) return one of these; ``bot/slack/blocks.py`` renders it as Block
Kit, ``bot/render.py`` as plain text for the local chat and the CLI. A reply holds plain text and
structure (sources, follow-ups, dates), never a surface's markup, and no renderer parses another
renderer's output.

Usage::

    reply = question_reply(engine, "when do updates stop?")
    print(render_text(reply))                     # the chat and the CLI
    client.chat_postMessage(channel=c, **slack_message(reply).as_kwargs())   # Slack
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from bot.answer import Answer
    from bot.knowledge import Source

# The slash commands, as slack-manifest.yaml declares them: name, usage hint, what it does. The
# local chat runs the same commands; the CLI has ``ban-bot deadlines`` instead.
ASK, DEADLINES, HELP = "/ban-ask", "/ban-deadlines", "/ban-help"
COMMANDS = (
    (ASK, "QUESTION", "a private answer, with a button to share it in the channel"),
    (DEADLINES, "[word]", "the key dates and where each stands today (`history` for all)"),
    (HELP, "", "what I know, example questions and these commands"),
)


@dataclass(frozen=True)
class AnswerReply:
    """An answer (or a decline, small talk, an out-of-scope reply) to a question.

    ``share`` offers to post a private ``/ban-ask`` answer in the channel; ``shared_by`` is the
    user who did. ``question`` is the cleaned question the answer is for.
    """

    answer: Answer
    share: bool = False
    shared_by: str | None = None

    @property
    def question(self) -> str:
        return self.answer.question


def cited_parts(answer: Answer) -> list[tuple[str, str]]:
    """An answer's pieces as (text, citation): an overview cites each piece's sources by their
    number in ``answer.sources`` (" [1][2]"); a single entry's answer needs no numbers. An
    answer without parts (declines, small talk) is its text alone."""
    if not answer.parts:
        return [(answer.text, "")]
    number = {s: i for i, s in enumerate(answer.sources, 1)}
    numbered = answer.kind == "overview"
    return [
        (p.text, " " + "".join(f"[{number[s]}]" for s in p.sources) if numbered else "")
        for p in answer.parts
    ]


@dataclass(frozen=True)
class PromptReply:
    """What an empty question gets: how to ask, with an example."""

    examples: tuple[str, ...]
    command: str | None = None  # the command that was used without a question


@dataclass(frozen=True)
class DatedEvent:
    """A timeline event as shown: its date written out and where it stands today."""

    when: str
    standing: str
    title: str
    what: str
    sources: tuple[Source, ...]
    key: bool = False


@dataclass(frozen=True)
class DeadlinesReply:
    """``/ban-deadlines [word]``: ``scope`` is ``key`` (the ban's own deadlines; ``hidden`` more
    are in the history), ``all`` or ``match`` (the dates that mention ``word``)."""

    events: tuple[DatedEvent, ...]
    scope: str
    as_of: dt.date
    word: str = ""
    hidden: int = 0


@dataclass(frozen=True)
class HelpReply:
    """``/ban-help`` and the App Home tab: what the bot covers, examples, the key deadlines."""

    topics: tuple[str, ...]
    examples: tuple[str, ...]
    key_events: tuple[DatedEvent, ...] = ()
    as_of: dt.date | None = None


NoticeKind = Literal["busy", "rate-limited", "error", "feedback", "unknown-command"]


@dataclass(frozen=True)
class NoticeReply:
    """A short notice: try again, slow down, an apology with an error id, thanks for feedback."""

    kind: NoticeKind
    text: str
    error_id: str | None = None
    vote: str | None = None


Reply = AnswerReply | PromptReply | DeadlinesReply | HelpReply | NoticeReply


@dataclass(frozen=True)
class Logged:
    """What a surface records of a reply (never what it shows)."""

    question: str
    entry_ids: tuple[str, ...] = field(default=())
    declined: bool = False
    score: float | None = None


def logged(reply: Reply) -> Logged | None:
    """The question log's record of a reply; ``None`` for replies that answer no question."""
    if not isinstance(reply, AnswerReply):
        return None
    a = reply.answer
    return Logged(a.question, tuple(a.entry_ids), a.declined, a.score)
