"""The curation report: what people asked that the knowledge set did not answer well.

Every question the bot declined (the question log) or whose answer got a 👎 (the feedback) is
embedded with the index's ONNX query encoder and grouped by meaning (SciPy's average-linkage
clustering on cosine distance). Each group shows how often it came up, a few of its phrasings and the
nearest knowledge entry, so curators can see what to add or rewrite next.

Usage::

    report = build_report(Settings.from_env(), since_days=30)
    print(render_text(report))          # or json.dumps([g.to_json() for g in report.groups])
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from bot.config import Settings
from bot.store import Feedback, LoggedQuestion, Store
from bot.text import clean_question

# all-MiniLM-L6-v2 puts paraphrases of one question at 0.8-0.95 cosine and related but distinct
# questions (the ban in Canada vs. refunds) near 0.6: 0.75 keeps the one together, the other apart.
GROUP_THRESHOLD = 0.75
MAX_EXAMPLES = 3

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
class CurationReport:
    """The groups, most asked first, and what the report covered."""

    groups: tuple[Group, ...]
    since_days: int | None
    retention_days: int
    question_log: bool

    @property
    def signals(self) -> int:
        return sum(g.count for g in self.groups)


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
    finally:
        store.close()
    groups = (
        _group_signals(settings, signals, GROUP_THRESHOLD if threshold is None else threshold)
        if signals
        else []
    )
    return CurationReport(
        groups=tuple(groups),
        since_days=since_days,
        retention_days=settings.retention_days,
        question_log=settings.question_log,
    )


def _group_signals(settings: Settings, signals: list[Signal], threshold: float) -> list[Group]:
    from bot.answer import load_query_encoder
    from bot.index import load_index

    # One row per distinct phrasing, weighted by how often it came up.
    by_key: dict[str, list[Signal]] = {}
    for s in signals:
        by_key.setdefault(_key(s.question), []).append(s)
    keys = list(by_key)
    loaded = load_index(settings.index_dir)
    encoder = load_query_encoder(loaded, settings.encoder_threads)
    vectors = np.asarray(encoder.encode([clean_question(k) for k in keys]), dtype=np.float32)
    weights = [len(by_key[k]) for k in keys]

    row_entries = [r.entry_id for r in loaded.rows]
    entries = loaded.knowledge.by_id
    factual_rows = np.array([entries[e].factual for e in row_entries], dtype=bool)
    groups: list[Group] = []
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
        groups.append(
            Group(
                count=len(member_signals),
                declined=len(member_signals) - len(downs),
                downvoted=len(downs),
                examples=tuple(spelled[k] for k in ordered[:MAX_EXAMPLES]),
                nearest=Nearest(
                    entry_id, float(row_sims[best_row]), entries[entry_id].questions[0]
                ),
                answered_with=tuple(
                    e for e, _ in Counter(s.entry_id for s in downs if s.entry_id).most_common()
                ),
                first_seen=min(s.created_at for s in member_signals),
                last_seen=max(s.created_at for s in member_signals),
            )
        )
    groups.sort(key=lambda g: (-g.count, -g.last_seen.timestamp()))
    return groups


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
    if not report.groups:
        lines.append(f"Nothing to report: no question was declined or got a 👎 {window}.")
        return "\n".join(lines)
    lines.append(
        f"{report.signals} questions declined or answered with a 👎 {window}, "
        f"in {len(report.groups)} groups, most asked first:"
    )
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
    return "\n".join(lines)
