"""The curation report: what people asked that the knowledge set did not answer well, and what
the experts answered when they were asked.

Every question the bot declined (the question log) or whose answer got a 👎 (the feedback) is
embedded with the index's ONNX query encoder and grouped by meaning (SciPy's average-linkage
clustering on cosine distance). Each group shows how often it came up, a few of its phrasings and the
nearest knowledge entry, so curators can see what to add or rewrite next. Beside the groups: the
questions sent to the experts whose answer was marked, each of which ``write_drafts`` turns into
a draft entry (its phrasings, the expert's text, a category guess, no sources: so it cannot go
live until a curator sources it).

Usage::

    report = build_report(Settings.from_env(), since_days=30)
    print(render_text(report))          # or json.dumps(report.to_json())
    write_drafts(report, Path("drafts"))
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import yaml

from bot.config import Settings
from bot.knowledge import UNSOURCED_CATEGORIES
from bot.store import ExpertAnswer, Feedback, LoggedQuestion, Store
from bot.text import clean_question, slack_to_plain

if TYPE_CHECKING:
    from bot.embedding import Embedder
    from bot.index import LoadedIndex

# all-MiniLM-L6-v2 puts paraphrases of one question at 0.8-0.95 cosine and related but distinct
# questions (the ban in Canada vs. refunds) near 0.6: 0.75 keeps the one together, the other apart.
GROUP_THRESHOLD = 0.75
MAX_EXAMPLES = 3
MAX_DRAFT_QUESTIONS = 6
# A draft's category is guessed from the nearest entry that a plain sourced answer could be:
# not an overview (it needs points), not small talk or an out-of-scope reply (they take no
# sources, which would let a draft go live unsourced).
_NOT_DRAFTABLE = UNSOURCED_CATEGORIES | {"overview"}

Kind = Literal["declined", "down"]
FloatMatrix = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Signal:
    """One question worth a curator's look: a decline, or a 👎 on the answer given."""

    question: str
    created_at: dt.datetime
    kind: Kind
    entry_id: str | None  # for a 👎: the entry the answer came from


@dataclass(frozen=True)
class Nearest:
    """The knowledge entry closest to a group, and how close (cosine, best row of the entry)."""

    entry_id: str
    similarity: float
    question: str  # the entry's first phrasing, so a reader sees what it is about


@dataclass(frozen=True)
class Group:
    """Questions that mean the same thing, with what the knowledge set has nearest to them."""

    count: int  # declines + 👎 votes
    declined: int
    downvoted: int
    examples: tuple[str, ...]  # up to MAX_EXAMPLES phrasings, most frequent first
    nearest: Nearest
    answered_with: tuple[str, ...]  # entries whose answers got the 👎 votes
    first_seen: dt.datetime
    last_seen: dt.datetime

    def to_json(self) -> dict[str, Any]:
        """The ``ban-bot report --json`` record."""
        return {
            "count": self.count,
            "declined": self.declined,
            "downvoted": self.downvoted,
            "examples": list(self.examples),
            "nearest": {
                "entry_id": self.nearest.entry_id,
                "similarity": round(self.nearest.similarity, 3),
                "question": self.nearest.question,
            },
            "answered_with": list(self.answered_with),
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
        }


@dataclass(frozen=True)
class AnsweredByExperts:
    """A question sent to the experts whose answer was marked: the makings of a draft entry."""

    escalation_id: int
    question: str
    answer: str  # the marked reply, as plain text
    declined: bool  # declined by the bot; else its answer got a 👎
    asked_at: dt.datetime
    answered_at: dt.datetime
    replies: int
    phrasings: tuple[str, ...]  # the question, then its group's other phrasings
    nearest: Nearest
    category: str  # the guess for the draft: the nearest draftable entry's

    @property
    def draft_id(self) -> str:
        """The draft entry's id: ``draft-`` and the question's words, unique per escalation."""
        words = "-".join(re.findall(r"[a-z0-9]+", self.question.casefold()))[:48].strip("-")
        digest = hashlib.sha256(str(self.escalation_id).encode()).hexdigest()[:6]
        return f"draft-{words or 'question'}-{digest}"

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "declined": self.declined,
            "asked_at": self.asked_at.isoformat(),
            "answered_at": self.answered_at.isoformat(),
            "replies": self.replies,
            "phrasings": list(self.phrasings),
            "nearest": {
                "entry_id": self.nearest.entry_id,
                "similarity": round(self.nearest.similarity, 3),
                "question": self.nearest.question,
            },
            "category": self.category,
            "draft_id": self.draft_id,
        }


@dataclass(frozen=True)
class CurationReport:
    """The groups, most asked first, the experts' answers, and what the report covered."""

    groups: tuple[Group, ...]
    since_days: int | None
    retention_days: int
    question_log: bool
    answered: tuple[AnsweredByExperts, ...] = ()

    @property
    def signals(self) -> int:
        return sum(g.count for g in self.groups)

    def to_json(self) -> dict[str, Any]:
        """The ``ban-bot report --json`` object."""
        return {
            "groups": [g.to_json() for g in self.groups],
            "answered_by_experts": [a.to_json() for a in self.answered],
        }


def collect_signals(
    questions: Iterable[LoggedQuestion],
    feedback: Iterable[Feedback],
    *,
    since: dt.datetime | None = None,
) -> list[Signal]:
    """Declined questions and 👎 feedback (at or after ``since``), oldest first; blanks dropped."""
    signals = [
        Signal(q.question, _parse_time(q.created_at), "declined", None)
        for q in questions
        if q.declined
    ]
    signals += [
        Signal(
            f.question, _parse_time(f.created_at), "down", f.entry_ids[0] if f.entry_ids else None
        )
        for f in feedback
        if f.vote == "down"
    ]
    signals = [s for s in signals if clean_question(s.question)]
    if since is not None:
        signals = [s for s in signals if s.created_at >= since]
    return sorted(signals, key=lambda s: s.created_at)


def _parse_time(text: str) -> dt.datetime:
    when = dt.datetime.fromisoformat(text)
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _key(question: str) -> str:
    """Phrasings that differ only in case and spacing count as one."""
    return clean_question(question).casefold()


def average_linkage(
    vectors: FloatMatrix, weights: Sequence[int], threshold: float
) -> list[list[int]]:
    """Group the rows of ``vectors`` by average-linkage clustering on cosine similarity (SciPy's
    ``linkage(..., "average", "cosine")``), merging while two groups' mean pairwise similarity
    is at least ``threshold``.

    ``weights[i]`` is how many identical items row ``i`` stands for, so the mean is over items
    (UPGMA): each row goes to SciPy that many times. Returns the groups as lists of row numbers.
    Memory is ``4 N^2`` bytes for ``N = sum(weights)``.

    Usage: ``average_linkage(encoder.encode(texts), [1] * len(texts), 0.75)``
    """
    from scipy.cluster.hierarchy import fcluster, linkage

    n = len(vectors)
    if len(weights) != n or any(w < 1 for w in weights):
        raise ValueError(f"need a weight of at least 1 for each of the {n} vectors: {weights}")
    if n < 2:
        return [[0]] if n else []
    rows = np.repeat(np.arange(n), weights)
    items = np.asarray(vectors, dtype=np.float64)[rows]
    labels = fcluster(
        linkage(items, method="average", metric="cosine"), t=1 - threshold, criterion="distance"
    )
    # Copies of one row are at distance 0, so they always share a label: take the first's.
    first_copy = np.searchsorted(rows, np.arange(n))
    groups: dict[int, list[int]] = {}
    for row in range(n):
        groups.setdefault(int(labels[first_copy[row]]), []).append(row)
    return list(groups.values())


def build_report(
    settings: Settings,
    *,
    since_days: int | None = None,
    now: dt.datetime | None = None,
    threshold: float | None = None,
) -> CurationReport:
    """Read the store, embed the declined and 👎 questions, group them and find their nearest
    entries. Loads the index only when there is something to group.

    ``threshold`` is the cosine similarity two groups need to merge (default ``GROUP_THRESHOLD``).
    Raises ``IndexLoadError`` (a clear message) when there are questions but no usable index.

    Usage: ``build_report(settings, since_days=7).groups[0].examples``
    """
    now = now or dt.datetime.now(dt.UTC)
    store = Store.open(settings)
    try:
        # Rows past BAN_BOT_RETENTION_DAYS are deleted before anything is read.
        store.prune(now=now)
        since = now - dt.timedelta(days=since_days) if since_days is not None else None
        signals = collect_signals(store.questions(), store.feedback(), since=since)
        answers = [
            a
            for a in store.expert_answers()
            if since is None or _parse_time(str(a.escalation.answered_at)) >= since
        ]
    finally:
        store.close()
    groups: list[Group] = []
    answered: list[AnsweredByExperts] = []
    if signals or answers:
        loaded, encoder = _load(settings)
        grouped = _group_signals(
            loaded,
            encoder,
            signals,
            GROUP_THRESHOLD if threshold is None else threshold,
        )
        groups = [g for g, _ in grouped]
        answered = _answered(loaded, encoder, answers, grouped)
    return CurationReport(
        groups=tuple(groups),
        since_days=since_days,
        retention_days=settings.retention_days,
        question_log=settings.question_log,
        answered=tuple(answered),
    )


def _load(settings: Settings) -> tuple[LoadedIndex, Embedder]:
    from bot.answer import load_query_encoder
    from bot.index import load_index

    loaded = load_index(settings.index_dir)
    return loaded, load_query_encoder(loaded, settings.encoder_threads)


def _group_signals(
    loaded: LoadedIndex, encoder: Embedder, signals: list[Signal], threshold: float
) -> list[tuple[Group, frozenset[str]]]:
    """The groups, each with the keys (``_key``) of the phrasings in it."""
    if not signals:
        return []
    # One row per distinct phrasing, weighted by how often it came up.
    by_key: dict[str, list[Signal]] = {}
    for s in signals:
        by_key.setdefault(_key(s.question), []).append(s)
    keys = list(by_key)
    vectors = np.asarray(encoder.encode([clean_question(k) for k in keys]), dtype=np.float32)
    weights = [len(by_key[k]) for k in keys]

    row_entries = [r.entry_id for r in loaded.rows]
    entries = loaded.knowledge.by_id
    factual_rows = np.array([entries[e].factual for e in row_entries], dtype=bool)
    groups: list[tuple[Group, frozenset[str]]] = []
    for members in average_linkage(vectors, weights, threshold):
        member_signals = [s for m in members for s in by_key[keys[m]]]
        # The group's direction: the mean of its questions (each counted as often as asked).
        centroid = np.average(vectors[members], axis=0, weights=[weights[m] for m in members])
        centroid /= np.linalg.norm(centroid) or 1.0
        # Nearest among the entries that state facts: what a curator would extend or rewrite
        # (small talk and out-of-scope replies are not).
        row_sims = np.where(factual_rows, loaded.embeddings @ centroid, -np.inf)
        best_row = int(np.argmax(row_sims))
        entry_id = row_entries[best_row]
        phrasings = Counter(_key(s.question) for s in member_signals)
        # Each phrasing as it was last written (signals are oldest first, so the last one wins),
        # most frequent first, then most recent.
        latest = {_key(s.question): s.created_at for s in member_signals}
        spelled = {_key(s.question): clean_question(s.question) for s in member_signals}
        ordered = sorted(phrasings, key=lambda k: (-phrasings[k], -latest[k].timestamp()))
        downs = [s for s in member_signals if s.kind == "down"]
        group = Group(
            count=len(member_signals),
            declined=len(member_signals) - len(downs),
            downvoted=len(downs),
            examples=tuple(spelled[k] for k in ordered[:MAX_EXAMPLES]),
            nearest=Nearest(entry_id, float(row_sims[best_row]), entries[entry_id].questions[0]),
            answered_with=tuple(
                e for e, _ in Counter(s.entry_id for s in downs if s.entry_id).most_common()
            ),
            first_seen=min(s.created_at for s in member_signals),
            last_seen=max(s.created_at for s in member_signals),
        )
        groups.append((group, frozenset(keys[m] for m in members)))
    groups.sort(key=lambda pair: (-pair[0].count, -pair[0].last_seen.timestamp()))
    return groups


def _answered(
    loaded: LoadedIndex,
    encoder: Embedder,
    answers: list[ExpertAnswer],
    grouped: list[tuple[Group, frozenset[str]]],
) -> list[AnsweredByExperts]:
    if not answers:
        return []
    entries = loaded.knowledge.by_id
    row_entries = [r.entry_id for r in loaded.rows]
    draftable = np.array([entries[e].category not in _NOT_DRAFTABLE for e in row_entries])
    vectors = np.asarray(
        encoder.encode([clean_question(a.escalation.question) or "?" for a in answers]),
        dtype=np.float32,
    )
    out: list[AnsweredByExperts] = []
    for answer, vector in zip(answers, vectors, strict=True):
        e = answer.escalation
        sims = np.where(draftable, loaded.embeddings @ vector, -np.inf)
        best = int(np.argmax(sims))
        entry = entries[row_entries[best]]
        question = clean_question(e.question)
        phrasings = [question]
        for group, keys in grouped:
            if _key(question) in keys:
                phrasings += [q for q in group.examples if _key(q) != _key(question)]
        out.append(
            AnsweredByExperts(
                escalation_id=e.id,
                question=question,
                answer=slack_to_plain(answer.answer.text),
                declined=e.declined,
                asked_at=_parse_time(e.created_at),
                answered_at=_parse_time(str(e.answered_at)),
                replies=answer.replies,
                phrasings=tuple(phrasings[:MAX_DRAFT_QUESTIONS]),
                nearest=Nearest(entry.id, float(sims[best]), entry.questions[0]),
                category=entry.category,
            )
        )
    return out


def render_text(report: CurationReport) -> str:
    """The report as a curator reads it in a terminal."""
    window = (
        f"in the last {report.since_days} days"
        if report.since_days is not None
        else f"in the {report.retention_days} days kept"
    )
    lines: list[str] = []
    if not report.question_log:
        lines.append(
            "Note: the question log is off (BAN_BOT_QUESTION_LOG=false), so declined questions "
            "are not recorded; only 👎 feedback is shown."
        )
    if not report.groups and not report.answered:
        lines.append(f"Nothing to report: no question was declined or got a 👎 {window}.")
        return "\n".join(lines)
    if report.groups:
        lines.append(
            f"{report.signals} questions declined or answered with a 👎 {window}, "
            f"in {len(report.groups)} groups, most asked first:"
        )
    else:
        lines.append(f"No question was declined or got a 👎 {window}.")
    for n, g in enumerate(report.groups, 1):
        parts = [f"{g.declined} declined"] if g.declined else []
        parts += [f"{g.downvoted} 👎"] if g.downvoted else []
        times = "once" if g.count == 1 else f"{g.count} times"
        lines.append("")
        lines.append(f"{n}. asked {times} ({', '.join(parts)}), last {g.last_seen:%Y-%m-%d}")
        lines.extend(f"   “{q}”" for q in g.examples)
        lines.append(
            f"   nearest entry: {g.nearest.entry_id} (similarity {g.nearest.similarity:.2f}): "
            f"“{g.nearest.question}”"
        )
        if g.answered_with:
            lines.append(f"   👎 answers came from: {', '.join(g.answered_with)}")
    if report.answered:
        lines.append("")
        lines.append(
            f"{len(report.answered)} questions answered by the experts {window} "
            "(`ban-bot report --drafts DIR` writes each as a draft entry to source and edit):"
        )
    for n, a in enumerate(report.answered, 1):
        how = "declined" if a.declined else "answered with a 👎"
        replies = "1 reply" if a.replies == 1 else f"{a.replies} replies"
        lines.append("")
        lines.append(
            f"{n}. “{a.question}” ({how} {a.asked_at:%Y-%m-%d}, answered "
            f"{a.answered_at:%Y-%m-%d}, {replies})"
        )
        lines.append(f"   the experts' answer: “{_shorten(a.answer, 300)}”")
        lines.append(
            f"   nearest entry: {a.nearest.entry_id} (similarity {a.nearest.similarity:.2f}); "
            f"draft: {a.draft_id}.yaml, category {a.category} (a guess)"
        )
    return "\n".join(lines)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


_DRAFT_HEADER = """\
# DRAFT from the experts' answer to a question ban-bot could not answer well. It is not live,
# and cannot be: it has no sources, so `ban-bot index build` refuses it until a curator
#   - checks the answer against a citable source and rewrites it to the knowledge set's rules
#     (1-4 sentences, standing alone, dates written in full),
#   - adds `sources:` (title, publisher, date, url, status; see docs/DESIGN.md),
#   - checks the category (a guess) and the questions, and renames the id.
# Asked {asked} ({how}); answered {answered} ({replies}). Nearest entry: {nearest}
# (similarity {similarity:.2f}).
"""


def draft_yaml(answer: AnsweredByExperts) -> str:
    """One draft entry, as the YAML a curator edits into ``knowledge/``."""
    entry = {
        "id": answer.draft_id,
        "category": answer.category,
        "answer": answer.answer,
        "questions": list(answer.phrasings),
    }
    header = _DRAFT_HEADER.format(
        asked=f"{answer.asked_at:%Y-%m-%d}",
        how="declined" if answer.declined else "answered with a 👎",
        answered=f"{answer.answered_at:%Y-%m-%d}",
        replies="1 reply" if answer.replies == 1 else f"{answer.replies} replies",
        nearest=answer.nearest.entry_id,
        similarity=answer.nearest.similarity,
    )
    body = yaml.safe_dump(
        {"entries": [entry]}, sort_keys=False, allow_unicode=True, width=96, default_style=None
    )
    return header + body


def write_drafts(report: CurationReport, directory: Path) -> list[Path]:
    """Write one ``<draft id>.yaml`` per question the experts answered into ``directory``
    (created if needed; a draft written before for the same question is replaced)."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for answer in report.answered:
        path = directory / f"{answer.draft_id}.yaml"
        path.write_text(draft_yaml(answer), encoding="utf-8")
        written.append(path)
    return written
